"""What the two parts of ``Health`` share: the engine, the registry, the runtime and
the defaults that ``Health.__init__`` sets."""

from __future__ import annotations

from health_middleware.engine.engine import Engine
from health_middleware.engine.registry import Registry
from health_middleware.model.check import Check
from health_middleware.process.runtime import Runtime


class Parts:
    """The attributes ``Health.__init__`` sets, which its parts use, and the one step
    they share: registering a check."""

    engine: Engine
    registry: Registry  # what is registered: checks, endpoints
    runtime: Runtime  # this process's refresher and probe port
    interval: float  # the default seconds between the runs of a check
    timeout: float  # the default seconds a run of a check may take
    _root: str  # the full report's path, under which the probes live

    def _register(self, check: Check) -> None:
        """Add ``check``; once the set-up has been checked at start, a check added
        later is held to the same rule (``Registry.misspelt``), as a ``ValueError``."""
        if self.runtime.setup_checked:
            problem = self.registry.misspelt(check)
            if problem is not None:
                raise ValueError(problem)
        self.engine.add_check(check)

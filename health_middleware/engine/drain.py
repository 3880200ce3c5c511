"""``Drain``: whether this process drains, and why. Written by ``sharing`` (which
drains and follows the others' drains); read by ``results`` and the ``publisher``."""

from __future__ import annotations

from health_middleware.instance.master import Instance


class Drain:
    """It was drained itself (``drain()``, pre-stop, lifespan shutdown, SIGTERM),
    another worker drained the instance, or a live instance's ``drain_file`` says so."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.process = False
        self.instance = False
        self.file: Instance | None = None  # the live instance a drain_file names

    @property
    def draining(self) -> bool:
        return self.process or self.instance or self.file is not None

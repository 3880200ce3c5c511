"""The registry: what is registered. The checks (each with the state this process keeps
of it, made as it is registered), the endpoints, the pre-stop endpoint, and the
callbacks (``on_change``, ``on_run``, ``on_publish``). Validation happens here, as
things are registered; the start-time refusal of a group no check carries too.

Writes take a lock and replace whole dicts, so a reader on another thread (the
refresher under WSGI) iterates a registration-time copy.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from health_middleware.config.validation import StartError
from health_middleware.engine.snapshot import Snapshot
from health_middleware.formats import Ietf, Info, Negotiate, resolve
from health_middleware.model.check import Check, CheckState
from health_middleware.model.endpoint import (
    ALL,
    LIVE,
    READY,
    STARTED,
    Endpoint,
    normalise_path,
    status_code_map,
)
from health_middleware.model.report import Format, Service
from health_middleware.model.result import Outcome
from health_middleware.model.status import Status
from health_middleware.web.prestop import Prestop

logger = logging.getLogger("health_middleware")

# on_change callbacks: (check name, or None for the whole; old status or None; new status)
Listener = Callable[[str | None, Status | None, Status], object]
L = TypeVar("L", bound=Listener)
# on_run callbacks: every run this process made, as the refresher records it.
RunListener = Callable[[Check, Outcome], object]
# on_publish callbacks: every snapshot this process publishes, as it is swapped in.
PublishListener = Callable[[Snapshot], object]


class Registry:
    def __init__(self, *, service: Service, base_path: str, details_token: str | None) -> None:
        self.service = service
        self.base_path = base_path  # the full report's endpoint
        self.details_token = details_token
        self._states: dict[str, CheckState] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self.prestop: Prestop | None = None
        self.change_listeners: list[Listener] = []
        self.run_listeners: list[RunListener] = []
        self.publish_listeners: list[PublishListener] = []
        self._failed_listeners: set[tuple[int, type[BaseException]]] = set()
        self._lock = threading.Lock()

    # -- checks ----------------------------------------------------------------------

    def add_check(self, check: Check) -> None:
        with self._lock:
            if check.name in self._states:
                raise ValueError(f"a check named {check.name!r} is already registered")
            self._states = {**self._states, check.name: CheckState(check)}
        if LIVE in check.tags and check.component_type == "datastore":
            logger.warning(
                "check %r is a datastore check tagged 'live': when the datastore is down, "
                "every replica fails liveness and is restarted at once (a restart storm "
                "that cannot fix the datastore); tag it 'ready' instead",
                check.name,
            )

    def states(self) -> Iterator[CheckState]:
        """Every registered check's state in this process (a registration-time copy)."""
        return iter(self._states.values())

    def state(self, name: str) -> CheckState | None:
        return self._states.get(name)

    def all_reported(self) -> bool:
        """Whether every check has a result in this process."""
        return all(state.reported is not None for state in self._states.values())

    def first_round_bound(self) -> float:
        """How long the first round can take: the longest timeout, plus a margin."""
        return max((s.check.timeout for s in self._states.values()), default=0.0) + 1.0

    # -- endpoints -------------------------------------------------------------------

    def add_default_endpoints(self, format: str | Format, info: Info | None) -> str:
        """The full report at ``base_path``, the probes and the info endpoint below
        it; return the root other default paths go under."""
        if info is not None and not isinstance(info, Info):
            raise TypeError("info must be an Info(...) object")
        root = "" if self.base_path == "/" else self.base_path
        for path, group, chosen, details, drain in (
            (self.base_path, ALL, format, True, False),
            (root + "/live", LIVE, format, False, False),
            (root + "/ready", READY, format, False, True),
            (root + "/started", STARTED, format, False, False),
            (root + "/info", ALL, info or Info(), True, False),
        ):
            self.add_endpoint(
                path, group=group, format=chosen, details=details, status_codes=None, drain=drain
            )
        return root

    def add_endpoint(
        self,
        path: str,
        *,
        group: str,
        format: str | Format,
        details: bool,
        status_codes: Mapping[str, int] | None,
        drain: bool,
    ) -> None:
        chosen = resolve(format)  # an unknown format is refused now, not at a request
        ietf = isinstance(chosen, Ietf) or (
            isinstance(chosen, Negotiate)
            and any(isinstance(f, Ietf) for f in chosen.formats.values())
        )
        codes = status_code_map(status_codes, ietf=ietf)
        endpoint = Endpoint(normalise_path(path), group, chosen, details, codes, drain)
        with self._lock:
            if endpoint.path in self._endpoints or (
                self.prestop is not None and endpoint.path == self.prestop.path
            ):
                raise ValueError(f"an endpoint at {endpoint.path!r} already exists")
            self._endpoints = {**self._endpoints, endpoint.path: endpoint}

    def endpoints(self) -> Iterator[Endpoint]:
        return iter(self._endpoints.values())

    @property
    def full(self) -> Endpoint:
        """The full report's endpoint (``base_path``)."""
        return self._endpoints[self.base_path]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    def set_prestop(self, config: Prestop) -> None:
        with self._lock:
            if self.prestop is not None:
                raise ValueError(
                    f"the pre-stop endpoint is already served at {self.prestop.path!r}"
                )
            if config.path in self._endpoints:
                raise ValueError(f"an endpoint at {config.path!r} already exists")
            self.prestop = config

    def unknown_groups(self) -> list[str]:
        """What is wrong with each endpoint whose group is neither a built-in one nor
        a tag some check carries: it counts no check (and answers 503 saying so,
        ``model.endpoint.evaluate``). Asked at start, not when the endpoint is made:
        checks may be registered after it."""
        built_in = [ALL, LIVE, READY, STARTED]
        tags = {tag for state in self._states.values() for tag in state.check.tags}
        known = built_in + sorted(tags - set(built_in))
        found = []
        for endpoint in self._endpoints.values():
            if endpoint.group in known:
                continue
            close = difflib.get_close_matches(endpoint.group, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(
                f"the endpoint {endpoint.path!r} counts group {endpoint.group!r}, which no "
                f"check carries as a tag{hint}: the known groups are {', '.join(known)}. "
                "Tag a check with it (tags={...}) or name a known group"
            )
        return found

    def check_setup(self) -> None:
        """As the runtime starts: raise ``StartError`` for the first endpoint of
        ``unknown_groups``, and warn of a Health with no checks (every endpoint would
        pass whatever happens to the app's dependencies)."""
        for problem in self.unknown_groups():
            raise StartError(problem)
        if not self._states:
            logger.warning(
                "this Health has no checks: every endpoint passes whatever happens to "
                'the app\'s dependencies; register some with @health.check("name") '
                'or health.add_check("name", fn)'
            )

    # -- callbacks -------------------------------------------------------------------

    def on_change(self, callback: L) -> L:
        if not callable(callback):
            raise TypeError("on_change needs a callable")
        self.change_listeners.append(callback)
        return callback

    def on_run(self, callback: RunListener) -> RunListener:
        """Call ``callback(check, outcome)`` for every run this process makes (on the
        refresher, never on a request); one that raises is logged and skipped."""
        if not callable(callback):
            raise TypeError("on_run needs a callable")
        self.run_listeners.append(callback)
        return callback

    def on_publish(self, callback: PublishListener) -> PublishListener:
        """Call ``callback(snapshot)`` with every snapshot this process publishes,
        after it is swapped in (on whichever thread published it: the refresher, or a
        registration or drain call); one that raises is logged once and skipped. For
        readers that stream changes (gRPC ``Watch``) rather than poll."""
        if not callable(callback):
            raise TypeError("on_publish needs a callable")
        self.publish_listeners.append(callback)
        return callback

    def notify(self, kind: str, listener: Callable[..., object], *args: object) -> None:
        """Call an exporter's callback; one that raises is logged once per kind of
        failure (a broken exporter: one traceback, not one a run), never propagated."""
        try:
            listener(*args)
        except Exception as exc:
            failure = (id(listener), type(exc))
            if failure not in self._failed_listeners:
                self._failed_listeners.add(failure)
                logger.exception("an %s callback raised; it is skipped (logged once)", kind)

    def after_fork(self) -> None:
        """In a forked child: no lock of the parent's, and no state of its checks."""
        self._lock = threading.Lock()
        for state in self._states.values():
            state.reset()

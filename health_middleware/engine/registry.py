"""The registry: what is registered (checks, endpoints, the pre-stop endpoint,
``on_change`` listeners), what this process knows of it (each check's state, the
drain), and the snapshot published from it. The refresher calls it through the
``refresher.Checks`` protocol; ``Health`` is its public facade.

Writes take ``_lock`` and replace whole dicts, so the refresher (another thread under
WSGI) iterates a registration-time copy; requests read only ``snapshot``.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from health_middleware.config.validation import StartError
from health_middleware.engine.snapshot import Snapshot, build
from health_middleware.formats import Ietf, Info, Negotiate, resolve
from health_middleware.instance import drainfile
from health_middleware.instance import master as instance
from health_middleware.instance.database import SharedState, transient
from health_middleware.model.check import Check, CheckState
from health_middleware.model.endpoint import (
    ALL,
    LIVE,
    READY,
    STARTED,
    Endpoint,
    evaluate,
    normalise_path,
    status_code_map,
)
from health_middleware.model.report import Format, Report, Service, Transition
from health_middleware.model.result import BLOCKED, Outcome
from health_middleware.model.status import Status
from health_middleware.web.prestop import Prestop

logger = logging.getLogger("health_middleware")

DRAINING = "draining"  # the instance's flag
_VERB = {"pass": "passing", "warn": "warning", "fail": "failing"}

# on_change callbacks: (check name, or None for the whole; old status or None; new status)
Listener = Callable[[str | None, Status | None, Status], object]
L = TypeVar("L", bound=Listener)
# on_run callbacks: every run this process made, as the refresher records it.
RunListener = Callable[[Check, Outcome], object]
# on_publish callbacks: every snapshot this process publishes, as it is swapped in.
PublishListener = Callable[[Snapshot], object]
HISTORY = 20  # transitions kept for the whole and for each check


class Registry:
    def __init__(
        self,
        *,
        service: Service,
        base_path: str,
        stale_after: float,
        details_token: str | None,
        drain_file: str | None,
    ) -> None:
        self.service = service
        self.base_path = base_path  # the full report's endpoint
        self.stale_after = stale_after
        self.details_token = details_token
        self.drain_file = drain_file
        self._states: dict[str, CheckState] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._prestop: Prestop | None = None
        self._listeners: list[Listener] = []
        self._failed_listeners: set[tuple[int, type[BaseException]]] = set()
        self._run_listeners: list[RunListener] = []
        self._publish_listeners: list[PublishListener] = []
        self._lock = threading.Lock()
        self._reset()
        self.snapshot: Snapshot = self._build(-math.inf, started=False)

    def _reset(self) -> None:
        """This process's knowledge: none yet (at start, and in a forked child)."""
        self._draining = False  # this process drains (drain(), pre-stop, lifespan shutdown)
        self._drained_by: instance.Instance | None = None  # a live instance's drain_file
        self._instance_draining = False  # another worker of this instance drained it
        # The instance's database, where the workers share runs (None: alone).
        self.shared: SharedState | None = None
        self._version = 0  # the newest shared result this process has taken
        self._overall: Status | None = None
        self._first_round = threading.Event()
        # The recent transitions, newest first: up to HISTORY for each subject (a
        # check's name, None for the whole), and all of them merged for the snapshot.
        self._history: dict[str | None, tuple[Transition, ...]] = {}
        self.transitions: tuple[Transition, ...] = ()
        # Has a start been asked for in this process? Until then every snapshot is
        # published already expired (valid until -inf), so the first health request
        # takes the slow path, which starts the refresher; the hot path reads no flag.
        self.activated = False

    # -- registration ----------------------------------------------------------------

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
        self.publish()

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
                self._prestop is not None and endpoint.path == self._prestop.path
            ):
                raise ValueError(f"an endpoint at {endpoint.path!r} already exists")
            self._endpoints = {**self._endpoints, endpoint.path: endpoint}

    def set_prestop(self, config: Prestop) -> None:
        with self._lock:
            if self._prestop is not None:
                raise ValueError(
                    f"the pre-stop endpoint is already served at {self._prestop.path!r}"
                )
            if config.path in self._endpoints:
                raise ValueError(f"an endpoint at {config.path!r} already exists")
            self._prestop = config
        self.publish()

    def on_change(self, callback: L) -> L:
        if not callable(callback):
            raise TypeError("on_change needs a callable")
        self._listeners.append(callback)
        return callback

    def on_run(self, callback: RunListener) -> RunListener:
        """Call ``callback(check, outcome)`` for every run this process makes (on the
        refresher, never on a request); one that raises is logged and skipped."""
        if not callable(callback):
            raise TypeError("on_run needs a callable")
        self._run_listeners.append(callback)
        return callback

    def on_publish(self, callback: PublishListener) -> PublishListener:
        """Call ``callback(snapshot)`` with every snapshot this process publishes,
        after it is swapped in (on whichever thread published it: the refresher, or a
        registration or drain call); one that raises is logged once and skipped. For
        readers that stream changes (gRPC ``Watch``) rather than poll."""
        if not callable(callback):
            raise TypeError("on_publish needs a callable")
        self._publish_listeners.append(callback)
        return callback

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    def refuse_unknown_groups(self) -> None:
        """Raise ``StartError`` for an endpoint whose group is neither a built-in one
        nor a tag some check carries: it would count no check and pass for ever.
        Asked at start, not when the endpoint is made: checks may be registered after."""
        built_in = [ALL, LIVE, READY, STARTED]
        tags = {tag for state in self._states.values() for tag in state.check.tags}
        known = built_in + sorted(tags - set(built_in))
        for endpoint in self._endpoints.values():
            if endpoint.group in known:
                continue
            close = difflib.get_close_matches(endpoint.group, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StartError(
                f"the endpoint {endpoint.path!r} counts group {endpoint.group!r}, which no "
                f"check carries as a tag{hint}: the known groups are {', '.join(known)}. "
                "Tag a check with it (tags={...}) or name a known group"
            )

    # -- the drain -------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining or self._instance_draining or self._drained_by is not None

    def drain(self) -> None:
        """Drain this server instance: every worker (through the instance's database),
        every instance sharing ``drain_file`` (if set), and this process."""
        if self.shared is not None:
            self._drain_instance(self.shared)
        if self.drain_file is not None and not self._draining:
            try:
                drainfile.write(self.drain_file, instance.current())
            except OSError as exc:
                logger.error("could not write drain_file %r: %s", self.drain_file, exc)
        self.drain_process()

    @staticmethod
    def _drain_instance(shared: SharedState) -> None:
        """Set the instance's drain flag: rare and important, so a busy database is
        retried for up to half a second."""
        for attempt in range(50):
            try:
                shared.set_flag(DRAINING, instance.current())
                return
            except sqlite3.Error as exc:
                if not transient(exc) or attempt == 49:
                    logger.error("could not drain the other workers: %s", exc)
                    return
                time.sleep(0.01)

    def drain_process(self) -> None:
        """Drain this process alone: a worker that stops (a recycle, a lifespan
        shutdown) leaves its siblings and successors serving."""
        if not self._draining:
            self._draining = True
            logger.warning("draining: readiness now fails; liveness is unchanged")
        self.publish()

    def _follow_drain_file(self) -> None:
        """Drain while ``drain_file`` names an instance that is still alive; a file
        left by an instance that has gone is ignored."""
        if self.drain_file is None:
            return
        try:
            owner = drainfile.owner(self.drain_file)
        except OSError as exc:
            logger.debug("could not read drain_file %r: %s", self.drain_file, exc)
            owner = None
        if owner != self._drained_by:
            if owner is not None:
                logger.warning("draining: drain_file %r names a live instance", self.drain_file)
            self._drained_by = owner
            self.publish()

    # -- the refresher's side (refresher.Checks) ---------------------------------------

    def states(self) -> Iterator[CheckState]:
        return iter(self._states.values())

    def leave_instance(self, error: Exception) -> None:
        if self.shared is not None:
            logger.warning(
                "the instance's shared state failed (%s): this worker runs its checks "
                "alone from now on",
                error,
            )
            self.shared = None

    def follow(self) -> bool:
        """Take the results and the drain the other workers of this instance
        published since the last call; return whether anything changed. A change is
        logged, and ``on_change`` called, by the worker whose run made it: once per
        instance."""
        shared = self.shared
        if shared is None or not shared.changed():
            return False
        self._version, rows = shared.results(self._version)
        changed = bool(rows)
        for name, record in rows:
            state = self._states.get(name)
            if state is not None and state.check.shared:
                change = state.adopt(record)
                if change is not None:
                    logger.debug("check %r is %s (from another worker)", name, change[1])
                    self._remember(name, *change, state.changed_at or time.time())
        if rows and all(s.reported is not None for s in self._states.values()):
            overall = self.report().status
            if overall != self._overall:
                self._remember(None, self._overall, overall, time.time())
            self._overall = overall
        draining = shared.flag(DRAINING)
        if draining != self._instance_draining:
            self._instance_draining, changed = draining, True
            if draining:
                logger.warning("draining: another worker of this instance drained it")
        return changed

    def refresh(self) -> None:
        try:
            self._follow_drain_file()
        except Exception:  # a garbled file must never keep the snapshot from renewing
            logger.exception("reading drain_file %r failed", self.drain_file)
        self.publish()

    def record(self, state: CheckState, outcome: Outcome) -> None:
        for listener in self._run_listeners:
            self._notify("on_run", listener, state.check, outcome)
        _note_slowness(state, outcome)
        _note_blocking(state, outcome)
        change = state.record(outcome)
        if change is None:
            return
        self._changed(state.check.name, *change, outcome.detail, outcome.time)
        if all(s.reported is not None for s in self._states.values()):
            overall = self.report().status
            if overall != self._overall:
                old, self._overall = self._overall, overall
                self._changed(None, old, overall, None, outcome.time)

    def _remember(self, name: str | None, old: Status | None, new: Status, at: float) -> None:
        """Keep a transition in the short history the status page shows."""
        transition = Transition(name, old, new, at)
        before = self._history.get(name, ())
        self._history = {**self._history, name: (transition, *before)[:HISTORY]}
        merged = (transition, *self.transitions)  # newest first, as recorded
        if len(before) == HISTORY:  # the subject's oldest has been dropped
            merged = tuple(t for t in merged if t is not before[-1])
        self.transitions = merged

    def _changed(
        self, name: str | None, old: Status | None, new: Status, why: str | None, at: float
    ) -> None:
        self._remember(name, old, new, at)
        what = "the service" if name is None else f"check {name!r}"
        if new == "pass" and old is None:
            logger.debug("%s is passing", what)
        elif new == "pass" and old is not None:  # a recovery: as loud as what it ends
            logger.warning("%s is passing again (was %s)", what, _VERB[old])
        else:
            logger.warning("%s is %s%s", what, _VERB[new], f": {why}" if why else "")
        for listener in self._listeners:
            try:
                listener(name, old, new)
            except Exception:
                logger.exception("an on_change callback raised; it is skipped")

    def report(self, states: Iterable[CheckState] | None = None) -> Report:
        """The full report (``base_path``'s) as of now, from the last recorded results
        (or from ``states``: runs made apart, as by ``Runtime.run_once``)."""
        counted = self._states.values() if states is None else states
        return evaluate(self._endpoints[self.base_path], counted, self.draining)

    def ietf(self, report: Report, service: Service | None = None) -> bytes:
        """``report`` as the full report's IETF document, whatever its format (with
        ``service``'s fields in place of this registry's: ``expose_errors``)."""
        return Ietf().render(report, service or self.service, time.time()).body

    # -- the first round -------------------------------------------------------------

    def first_round_done(self) -> bool:
        """Whether a snapshot with every check's first result has been published."""
        return self._first_round.is_set()

    def first_round_bound(self) -> float:
        """How long the first round can take: the longest timeout, plus a margin."""
        return max((s.check.timeout for s in self._states.values()), default=0.0) + 1.0

    async def wait_first_round_async(self) -> None:
        deadline = time.monotonic() + self.first_round_bound()
        while not self.first_round_done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def wait_first_round_sync(self) -> None:
        if not self.first_round_done():
            self._first_round.wait(self.first_round_bound())

    # -- publishing ------------------------------------------------------------------

    def publish(self) -> None:
        """Build a snapshot from the current state and swap it in."""
        with self._lock:
            started = self.activated
            valid_until = time.monotonic() + self.stale_after if started else -math.inf
            snapshot = self.snapshot = self._build(valid_until, started=started)
            if started and all(s.reported is not None for s in self._states.values()):
                self._first_round.set()
        for listener in self._publish_listeners:
            self._notify("on_publish", listener, snapshot)

    def _notify(self, kind: str, listener: Callable[..., object], *args: object) -> None:
        """Call an exporter's callback; one that raises is logged once per kind of
        failure (a broken exporter: one traceback, not one a run), never propagated."""
        try:
            listener(*args)
        except Exception as exc:
            failure = (id(listener), type(exc))
            if failure not in self._failed_listeners:
                self._failed_listeners.add(failure)
                logger.exception("an %s callback raised; it is skipped (logged once)", kind)

    def _build(self, valid_until: float, *, started: bool) -> Snapshot:
        return build(
            self._endpoints.values(),
            self._states.values(),
            draining=self.draining,
            service=self.service,
            now=time.time(),
            valid_until=valid_until,
            started=started,
            prestop=self._prestop,
            details_token=self.details_token,
            transitions=self.transitions,
        )

    def after_fork(self) -> None:
        """In a forked child: no rendering here and no lock of the parent's (another
        thread of the parent may have held one at the fork). The expired snapshot
        sends the first request down the slow path, which starts this process's
        refresher."""
        self._lock = threading.Lock()
        self._reset()
        for state in self._states.values():
            state.reset()
        old = self.snapshot
        self.snapshot = Snapshot(old.answers, -math.inf, started=False, statuses=old.statuses)


def _note_slowness(state: CheckState, outcome: Outcome) -> None:
    """Log once per change a check whose runs take more than half its timeout: one
    drifting towards its timeout is seen before it fails."""
    timeout = state.check.timeout
    # Hysteresis: slow past half the timeout, fast again only under 0.4 of it, so a
    # run time hovering at the line is named once, not on every run.
    slow = outcome.duration > timeout / 2 or (state.slow and outcome.duration > timeout * 0.4)
    if slow == state.slow:
        return
    state.slow = slow
    if slow:
        logger.warning(
            "check %r is slow: its run took %.3f s, more than half its timeout (%g s)",
            state.check.name,
            outcome.duration,
            timeout,
        )
    else:  # as loud as the warning it ends
        logger.warning(
            "check %r is no longer slow: its run took %.3f s (timeout %g s)",
            state.check.name,
            outcome.duration,
            timeout,
        )


def _note_blocking(state: CheckState, outcome: Outcome) -> None:
    """Name, once per change, an ``async def`` check whose own code held the event
    loop past its timeout (the checks it held up are not failed for it)."""
    blocking = outcome.output == BLOCKED
    if blocking == state.blocking:
        return
    state.blocking = blocking
    if blocking:
        logger.warning("check %r %s", state.check.name, outcome.detail)
    else:
        logger.warning("check %r no longer blocks the event loop", state.check.name)

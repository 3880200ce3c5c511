"""``Health``: the registry of checks and endpoints, and this process's refresher."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, Unpack

from health_middleware import instance
from health_middleware.check import Check, CheckState
from health_middleware.endpoint import (
    ALL,
    LIVE,
    READY,
    STARTED,
    Endpoint,
    evaluate,
    normalise_path,
    status_code_map,
)
from health_middleware.formats import Format, Ietf, Info, resolve
from health_middleware.pool import CheckPool
from health_middleware.prestop import Prestop, valid_token
from health_middleware.refresher import Refresher
from health_middleware.report import Report, Service
from health_middleware.result import Outcome
from health_middleware.snapshot import Snapshot, build
from health_middleware.status import Status
from health_middleware.validation import (
    count,
    flag,
    optional_text,
    period,
    seconds,
    text_map,
    texts,
)

logger = logging.getLogger("health_middleware")

F = TypeVar("F", bound=Callable[..., Any])

_VERB = {"pass": "passing", "warn": "warning", "fail": "failing"}

# on_change callbacks: (check name, or None for the whole; old status or None; new status)
Listener = Callable[[str | None, Status | None, Status], object]


class CheckOptions(TypedDict, total=False):
    """The keyword options of :meth:`Health.add_check` (and of ``@health.check``)."""

    interval: float | None
    timeout: float | None
    critical: bool
    tags: Iterable[str]
    component_type: str | None
    failure_threshold: int
    success_threshold: int
    component_id: str | None
    affected_endpoints: Iterable[str]


@dataclass
class _Runtime:
    """The refresher of this process and where it runs."""

    pid: int
    refresher: Refresher
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[None] | None = None  # ASGI: on the app's loop
    thread: threading.Thread | None = None  # WSGI: its own loop on a daemon thread

    def alive(self) -> bool:
        if self.pid != os.getpid() or self.loop.is_closed():
            return False
        if self.thread is not None:
            return self.thread.is_alive()
        return self.task is not None and not self.task.done() and self.loop.is_running()


class Health:
    """Checks, endpoints and their configuration; see the README for every option."""

    def __init__(
        self,
        *,
        service_id: str | None = None,
        version: str | None = None,
        release_id: str | None = None,
        description: str | None = None,
        base_path: str = "/health",
        interval: float = 10.0,
        timeout: float = 2.0,
        expose_errors: bool = False,
        status_case: str = "lower",
        stale_after: float = 10.0,
        max_threads: int = 8,
        wait_first_round: bool = False,
        drain_file: str | os.PathLike[str] | None = None,
        notes: Iterable[str] = (),
        links: Mapping[str, str] | None = None,
        format: str | Format = "ietf",  # the public option's name
        info: Info | None = None,
        details_token: str | None = None,
    ) -> None:
        if status_case not in ("lower", "upper"):
            raise ValueError("status_case must be 'lower' (pass) or 'upper' (PASS)")
        self.wait_first_round = flag("wait_first_round", wait_first_round)
        self.details_token = (
            None if details_token is None else valid_token(details_token, "details token")
        )
        self.drain_file = None if drain_file is None else _drain_path(drain_file)
        self.interval = period("interval", interval)
        self.timeout = period("timeout", timeout)
        # The refresher publishes each second: a snapshot must outlive two ticks.
        self.stale_after = seconds("stale_after", stale_after, minimum=2.0)
        self.max_threads = count("max_threads", max_threads)
        self.base_path = normalise_path(base_path, "base_path")
        self.service = Service(
            service_id=optional_text("service_id", service_id),
            version=optional_text("version", version),
            release_id=optional_text("release_id", release_id),
            description=optional_text("description", description),
            notes=texts("notes", notes),
            links=text_map("links", links),
            status_case=status_case,
            expose_errors=flag("expose_errors", expose_errors),
            started_at=time.time(),
        )
        self._states: dict[str, CheckState] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._draining = False  # this process drains (drain(), pre-stop, lifespan shutdown)
        self._drained_by: instance.Instance | None = None  # a live instance's drain_file
        self._listeners: list[Listener] = []
        self._overall: Status | None = None
        self._first_round = threading.Event()
        self._prestop: Prestop | None = None
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()
        # Has a start been asked for in this process? Until then every snapshot is
        # published already expired (valid until -inf), so the first health request
        # takes the slow path, which starts the refresher; the hot path reads no flag.
        self.activated = False
        root = self._root = "" if self.base_path == "/" else self.base_path
        for path, group, details, drain in (
            (self.base_path, ALL, True, False),
            (root + "/live", LIVE, False, False),
            (root + "/ready", READY, False, True),
            (root + "/started", STARTED, False, False),
        ):
            self._add_endpoint(
                path, group=group, format=format, details=details, status_codes=None, drain=drain
            )
        if info is not None and not isinstance(info, Info):
            raise TypeError("info must be an Info(...) object")
        self._add_endpoint(
            root + "/info",
            group=ALL,
            format=info or Info(),
            details=True,
            status_codes=None,
            drain=False,
        )
        self.snapshot: Snapshot = self._build(-math.inf)
        ref = weakref.ref(self)

        def after_fork() -> None:
            health = ref()
            if health is not None:
                health._after_fork()

        os.register_at_fork(after_in_child=after_fork)

    # -- registration ----------------------------------------------------------------

    def check(self, name: str, **options: Unpack[CheckOptions]) -> Callable[[F], F]:
        """Register the decorated function (sync or async, no arguments) as a check;
        the options are those of :meth:`add_check`."""

        def register(fn: F) -> F:
            self.add_check(name, fn, **options)
            return fn

        return register

    def add_check(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        interval: float | None = None,
        timeout: float | None = None,
        critical: bool = True,
        tags: Iterable[str] = (),
        component_type: str | None = None,
        failure_threshold: int = 1,
        success_threshold: int = 1,
        component_id: str | None = None,
        affected_endpoints: Iterable[str] = (),
    ) -> None:
        """Register ``fn`` as a check; the options are those of :meth:`check`.
        ``component_type`` defaults to the function's own ``component_type``
        attribute (the built-in checks set one), else ``"component"``."""
        if component_type is None:
            component_type = getattr(fn, "component_type", "component")
        check = Check.build(
            name,
            fn,
            interval=self.interval if interval is None else interval,
            timeout=self.timeout if timeout is None else timeout,
            critical=critical,
            tags=tags,
            component_type=component_type,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            component_id=component_id,
            affected_endpoints=affected_endpoints,
        )
        with self._lock:
            if name in self._states:
                raise ValueError(f"a check named {name!r} is already registered")
            self._states = {**self._states, name: CheckState(check)}
        if LIVE in check.tags and check.component_type == "datastore":
            logger.warning(
                "check %r is a datastore check tagged 'live': when the datastore is down, "
                "every replica fails liveness and is restarted at once (a restart storm "
                "that cannot fix the datastore); tag it 'ready' instead",
                name,
            )
        self.publish()

    def endpoint(
        self,
        path: str,
        *,
        group: str = ALL,
        format: str | Format = "ietf",  # the public option's name
        details: bool = True,
        status_codes: Mapping[str, int] | None = None,
        drain: bool = False,
    ) -> None:
        """Serve one more endpoint at ``path`` (absolute, not under ``base_path``)."""
        if not isinstance(group, str) or not group:
            raise TypeError("group must be a non-empty string: all, live, ready, started or a tag")
        self._add_endpoint(
            path,
            group=group,
            format=format,
            details=flag("details", details),
            status_codes=status_codes,
            drain=flag("drain", drain),
        )
        self.publish()

    def _add_endpoint(
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
        endpoint = Endpoint(
            normalise_path(path),
            group,
            chosen,
            details,
            status_code_map(status_codes, ietf=isinstance(chosen, Ietf)),
            drain,
        )
        with self._lock:
            if endpoint.path in self._endpoints or (
                self._prestop is not None and endpoint.path == self._prestop.path
            ):
                raise ValueError(f"an endpoint at {endpoint.path!r} already exists")
            self._endpoints = {**self._endpoints, endpoint.path: endpoint}

    # -- state ---------------------------------------------------------------------

    def states(self) -> Iterator[CheckState]:
        return iter(self._states.values())

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path this object answers (each also with a trailing slash)."""
        return tuple(self._endpoints)

    @property
    def draining(self) -> bool:
        return self._draining or self._drained_by is not None

    def drain(self) -> None:
        """Fail readiness (and every endpoint made with ``drain=True``) from now on.
        With ``drain_file`` set, the file names this server instance, and every worker
        that shares the path drains for as long as this instance lives."""
        if self.drain_file is not None and not self._draining:
            try:
                with open(self.drain_file, "w") as marker:
                    marker.write(instance.current().encode())
            except OSError as exc:
                logger.error("could not write drain_file %r: %s", self.drain_file, exc)
        self.drain_process()

    def drain_process(self) -> None:
        """Drain this process alone: a worker that stops (a recycle, a lifespan
        shutdown) leaves its siblings and successors serving."""
        if not self._draining:
            self._draining = True
            logger.info("draining: readiness now fails; liveness is unchanged")
        self.publish()

    def poll_drain_file(self) -> None:
        """Follow ``drain_file`` (each refresher tick): drain while it names an instance
        that is still alive; a file left by an instance that has gone is ignored."""
        if self.drain_file is None:
            return
        try:
            with open(self.drain_file) as marker:
                owner = instance.Instance.decode(marker.read(64))
        except FileNotFoundError:
            owner = None
        except (OSError, UnicodeDecodeError) as exc:
            logger.debug("could not read drain_file %r: %s", self.drain_file, exc)
            owner = None
        if owner is not None and not owner.alive():
            owner = None
        if owner != self._drained_by:
            if owner is not None:
                logger.info("draining: drain_file %r names a live instance", self.drain_file)
            self._drained_by = owner
            self.publish()

    def refresh(self) -> None:
        """Each refresher tick: follow ``drain_file`` and publish."""
        self.poll_drain_file()
        self.publish()

    def prestop(self, token: str, *, path: str | None = None, delay: float = 5.0) -> None:
        """Serve the pre-stop endpoint (default ``<base_path>/prestop``) for Kubernetes
        ``preStop.httpGet``: a request with ``Authorization: Bearer <token>`` starts the
        drain and is answered after ``delay`` seconds; any other gets 401."""
        config = Prestop(normalise_path(path or self._root + "/prestop"), token, delay)
        with self._lock:
            if self._prestop is not None:
                raise ValueError(
                    f"the pre-stop endpoint is already served at {self._prestop.path!r}"
                )
            if config.path in self._endpoints:
                raise ValueError(f"an endpoint at {config.path!r} already exists")
            self._prestop = config
        self.publish()

    def on_change(self, callback: Listener) -> Listener:
        """Call ``callback(name, old, new)`` on every status change of a check (its
        name) and of the whole (``None``); ``old`` is None for the first result.
        Callbacks run on the refresher; one that raises is logged and skipped."""
        if not callable(callback):
            raise TypeError("on_change needs a callable")
        self._listeners.append(callback)
        return callback

    def record(self, state: CheckState, outcome: Outcome) -> None:
        """Take a finished run (called by the refresher)."""
        change = state.record(outcome)
        if change is None:
            return
        self._changed(state.check.name, *change, outcome.detail)
        if all(s.reported is not None for s in self._states.values()):
            overall = self.report().status
            if overall != self._overall:
                old, self._overall = self._overall, overall
                self._changed(None, old, overall, None)

    def _changed(self, name: str | None, old: Status | None, new: Status, why: str | None) -> None:
        what = "the service" if name is None else f"check {name!r}"
        if new == "pass":
            log = logger.info if old is not None else logger.debug
            log("%s is passing%s", what, "" if old is None else f" (was {old})")
        else:
            logger.warning("%s is %s%s", what, _VERB[new], f": {why}" if why else "")
        for listener in self._listeners:
            try:
                listener(name, old, new)
            except Exception:
                logger.exception("an on_change callback raised; it is skipped")

    def report(self) -> Report:
        """The full report (``base_path``'s) as of now, from the last recorded results."""
        return evaluate(self._endpoints[self.base_path], self._states.values(), self.draining)

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

    def publish(self) -> None:
        """Build a snapshot from the current state and swap it in."""
        with self._lock:
            valid_until = time.monotonic() + self.stale_after if self.activated else -math.inf
            self.snapshot = self._build(valid_until)
            if self.activated and all(s.reported is not None for s in self._states.values()):
                self._first_round.set()

    def _build(self, valid_until: float) -> Snapshot:
        return build(
            self._endpoints.values(),
            self._states.values(),
            draining=self.draining,
            service=self.service,
            now=time.time(),
            valid_until=valid_until,
            prestop=self._prestop,
            details_token=self.details_token,
        )

    # -- the refresher of this process -----------------------------------------------

    def start_on_loop(self) -> None:
        """Start the refresher as a task on the running loop (ASGI), unless it runs."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.activated = True
            if self._runtime is not None and self._runtime.alive():
                return
            refresher = Refresher(self, CheckPool(self.max_threads))
            runtime = _Runtime(os.getpid(), refresher, loop)
            runtime.task = loop.create_task(refresher.run(), name="health-refresher")
            self._runtime = runtime
        self.publish()  # valid from now: requests take the hot path

    def start_in_thread(self) -> None:
        """Start the refresher on a daemon thread with its own loop (WSGI), unless it runs."""
        with self._lock:
            self.activated = True
            if self._runtime is not None and self._runtime.alive():
                return
            loop = asyncio.new_event_loop()
            refresher = Refresher(self, CheckPool(self.max_threads))

            def serve() -> None:
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(refresher.run())
                except RuntimeError as exc:  # its loop was stopped under it
                    logger.warning("the health refresher's loop stopped: %s", exc)
                finally:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.close()

            thread = threading.Thread(target=serve, name="health-refresher", daemon=True)
            self._runtime = _Runtime(os.getpid(), refresher, loop, thread=thread)
            thread.start()
        self.publish()  # valid from now: requests take the hot path

    async def stop_async(self) -> None:
        """Stop a refresher running on this loop and wait for it (bounded)."""
        runtime = self._stop_runtime()
        task = runtime.task if runtime is not None else None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait((task,), timeout=3.0)

    def stop(self) -> None:
        """Stop this process's refresher; a thread is waited for (bounded). Requests
        do not restart it: the snapshot goes stale, so probes fail, as they should."""
        runtime = self._stop_runtime()
        if runtime is not None and runtime.thread is not None:
            runtime.thread.join(3.0)

    def _stop_runtime(self) -> _Runtime | None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is None or not runtime.alive():
            return None
        if runtime.thread is not None:
            runtime.loop.call_soon_threadsafe(runtime.refresher.stop)
        else:
            runtime.refresher.stop()
        return runtime

    def revive(self) -> None:
        """A request found the snapshot stale: restart a refresher that died with its
        loop or thread. A loop that is only blocked keeps its refresher, which catches
        up by itself; one stopped on purpose stays stopped."""
        runtime = self._runtime
        if runtime is None or runtime.alive():
            return
        if runtime.thread is not None:
            self.start_in_thread()
        else:
            self.start_on_loop()

    def _after_fork(self) -> None:
        """In a forked child nothing of the parent's refresher exists: start afresh.
        No rendering here and no lock of the parent's: another thread of the parent may
        have held one at the fork. The expired snapshot sends the first request down
        the slow path, which starts this process's refresher."""
        self._lock = threading.Lock()
        self._runtime = None
        self.activated = False
        self._draining = False
        self._drained_by = None
        self._overall = None
        self._first_round = threading.Event()
        for state in self._states.values():
            state.reset()
        self.snapshot = Snapshot(self.snapshot.answers, -math.inf)


def _drain_path(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"drain_file must be a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ValueError("drain_file must be a non-empty path")
    return text

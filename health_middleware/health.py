"""``Health``: the public facade. It validates the options and builds the default
endpoints, then hands each call to the registry (what is registered, the drain, the
snapshot) or the runtime (this process's refresher). See docs/architecture.md."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, Unpack

from health_middleware.config import environment
from health_middleware.config.validation import (
    count,
    delay,
    drain_path,
    flag,
    host_name,
    instance_name,
    optional_text,
    period,
    port_number,
    seconds,
    text_map,
    texts,
)
from health_middleware.engine.engine import Engine
from health_middleware.engine.heartbeat import Heartbeat, heartbeat_check
from health_middleware.engine.registry import Listener
from health_middleware.engine.run import run_to_completion
from health_middleware.engine.snapshot import Snapshot
from health_middleware.formats import Info
from health_middleware.instance import drainfile
from health_middleware.model.check import Check, CheckOptions
from health_middleware.model.endpoint import ALL, normalise_path
from health_middleware.model.report import Format, Report, Service
from health_middleware.process.runtime import Runtime
from health_middleware.process.watch import Watch, watch_check
from health_middleware.web.prestop import Prestop, valid_token

F = TypeVar("F", bound=Callable[..., Any])
L = TypeVar("L", bound=Listener)

__all__ = ["CheckOptions", "Health", "Heartbeat", "Listener"]


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
        shutdown_delay: float = 0.0,
        jitter: bool = True,
        instance: str | None = None,
    ) -> None:
        if status_case not in ("lower", "upper"):
            raise ValueError("status_case must be 'lower' (pass) or 'upper' (PASS)")
        self.wait_first_round = flag("wait_first_round", wait_first_round)
        token = None if details_token is None else valid_token(details_token, "details token")
        marker = None if drain_file is None else drain_path("drain_file", drain_file)
        if marker is not None:
            drainfile.warn_if_shared(marker)
        self.interval = period("interval", interval)
        self.timeout = period("timeout", timeout)
        # The refresher publishes each second: a snapshot must outlive two ticks.
        stale_after = seconds("stale_after", stale_after, minimum=2.0)
        max_threads = count("max_threads", max_threads)
        self.base_path = normalise_path(base_path, "base_path")
        service = Service(
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
        self.engine = Engine(
            service=service,
            base_path=self.base_path,
            stale_after=stale_after,
            details_token=token,
            drain_file=marker,
        )
        self.registry = self.engine.registry  # what is registered: checks, endpoints
        self.runtime = Runtime(
            self.engine,
            max_threads,
            jitter=flag("jitter", jitter),
            instance_name=instance_name("instance", instance),
            shutdown_delay=delay("shutdown_delay", shutdown_delay),
        )
        self.runtime.watch_from = self._watch_from_environment
        self._root = self.registry.add_default_endpoints(format, info)
        self.engine.publisher.publish()
        ref = weakref.ref(self)

        def after_fork() -> None:
            health = ref()
            if health is not None:
                health.runtime.after_fork()
                health.engine.after_fork()

        os.register_at_fork(after_in_child=after_fork)

    # -- registration ----------------------------------------------------------------

    def check(self, name: str, **options: Unpack[CheckOptions]) -> Callable[[F], F]:
        """Register the decorated function (sync or async, no arguments) as a check;
        the options are those of :meth:`add_check`."""
        if callable(name):  # @health.check above a function, without its name
            fn_name = getattr(name, "__name__", "name")
            raise TypeError(
                f'@health.check needs the check\'s name: write @health.check("{fn_name}") '
                f"(with its options, if any) above def {fn_name}()"
            )

        def register(fn: F) -> F:
            self.add_check(name, fn, **options)
            return fn

        return register

    def add_check(self, name: str, fn: Callable[[], Any], **options: Unpack[CheckOptions]) -> None:
        """Register ``fn`` as a check; the options (``check.CheckOptions``) are
        ``interval``, ``timeout``, ``critical``, ``tags``, ``component_type``,
        ``failure_threshold``, ``success_threshold``, ``component_id`` and
        ``affected_endpoints``. ``component_type`` defaults to the function's own
        ``component_type`` attribute (the built-in checks set one), else ``"component"``."""
        check = Check.build(name, fn, options, interval=self.interval, timeout=self.timeout)
        self._register(check)

    def _register(self, check: Check) -> None:
        self.registry.add_check(check)
        self.engine.publisher.publish()

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
        self.registry.add_endpoint(
            path,
            group=group,
            format=format,
            details=flag("details", details),
            status_codes=status_codes,
            drain=flag("drain", drain),
        )
        self.engine.publisher.publish()

    def prestop(self, token: str, *, path: str | None = None, delay: float = 5.0) -> None:
        """Serve the pre-stop endpoint (default ``<base_path>/prestop``) for Kubernetes
        ``preStop.httpGet``: a request with ``Authorization: Bearer <token>`` starts the
        drain and is answered after ``delay`` seconds; any other gets 401."""
        self.registry.set_prestop(
            Prestop(normalise_path(path or self._root + "/prestop"), token, delay)
        )
        self.engine.publisher.publish()

    def heartbeat(
        self, name: str, max_age: float = 30.0, **options: Unpack[CheckOptions]
    ) -> Heartbeat:
        """Register a check that fails once the returned ``Heartbeat`` has not been
        called (beaten) for ``max_age`` seconds, and return it: a consumer or scheduler
        calls ``beat()`` from its work loop (any thread; a beat costs a clock read).
        Its observed value is the age of the last beat, in seconds. It measures this
        process (``scope="process"``) and is tagged ``live`` unless ``tags`` says
        otherwise; before the first beat it has no result (the process is starting);
        ``beat.pause()`` says the loop waits on purpose (it passes until the next
        beat). It is checked every second (``interval``, at most ``max_age``), so a
        loop that stops is seen within ``max_age`` plus one interval. The other
        options are those of :meth:`add_check`."""
        beat, check = heartbeat_check(
            name, max_age, options, interval=self.interval, timeout=self.timeout
        )
        self._register(check)
        return beat

    def listen(
        self,
        port: int,
        host: str = "0.0.0.0",
        *,
        watch: int | str | None = None,
        watch_interval: float = 5.0,
        watch_misses: int = 3,
    ) -> None:
        """Also serve every path on ``host:port``, a probe port of its own, from the
        same snapshot, on a thread of its own (never the app's loop or workers), so
        probes never queue behind the app's requests. Only recorded here: the port
        opens in each process as its refresher starts (lifespan startup, the gunicorn
        hook, the first health request, :meth:`serve`); a port that cannot be had
        raises ``listener.ListenError`` there. The workers of one server share the port
        (``SO_REUSEPORT``). One per ``Health``: a second call raises ``ValueError``.

        ``watch``: the main port (a port on 127.0.0.1, or ``"host:port"``). The probe
        port's thread then requests ``<base_path>/live`` through it every
        ``watch_interval`` seconds (any HTTP answer within the interval counts), and
        the check ``main-port`` (a heartbeat, tagged ``live``) fails once
        ``watch_misses`` requests in a row have gone unanswered: a main listener that
        no longer accepts or answers fails liveness here too."""
        host, port = host_name("host", host), port_number("port", port)
        watcher, check = None, None
        if watch is not None:
            watcher, check = self._watch(watch, watch_interval, watch_misses, port)
        self.runtime.listen(host, port, watcher)
        if check is not None:
            self._register(check)

    def _watch(
        self,
        watch: object,
        interval: object,
        misses: object,
        probe_port: int | None,
        what: str = "watch",
    ) -> tuple[Watch, Check]:
        return watch_check(
            watch,
            interval,
            misses,
            probe_port=probe_port,
            live_path=self._root + "/live",
            registered=[state.check.name for state in self.registry.states()],
            defaults=(self.interval, self.timeout),
            what=what,
        )

    def _watch_from_environment(self, target: str) -> Watch:
        """``HEALTH_MIDDLEWARE_WATCH``'s watch (default interval and misses), its check
        registered: the runtime takes it as it starts."""
        port = self.runtime.listen_address[1] if self.runtime.listen_address else None
        watcher, check = self._watch(target, 5.0, 3, port, environment.WATCH)
        self._register(check)
        return watcher

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve the health endpoints on ``host:port`` in a process with no web app (a
        worker, a consumer, a scheduler): the probe port of :meth:`listen` (already set
        with ``listen``: the same port, else ``ValueError``) is opened, and the checks'
        refresher started on a daemon thread with an event loop of its own; returns at
        once, from a plain program or from inside a running event loop alike (async
        checks then run on the refresher's loop, not the program's: they must not use
        clients bound to the program's loop). :meth:`stop` ends both. A process forked
        from this one (a prefork pool's child) neither serves the port nor runs the
        checks; a port that cannot be had raises ``listener.ListenError``."""
        self.runtime.serve(host_name("host", host), port_number("port", port))

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """The probe port asked for with :meth:`listen` (host, port), or None."""
        return self.runtime.listen_address

    @property
    def listening(self) -> tuple[str, int] | None:
        """Where this process's probe port is open (host, port), or None."""
        listener = self.runtime.listener
        return listener.address if listener is not None and listener.alive() else None

    def on_change(self, callback: L) -> L:
        """Call ``callback(name, old, new)`` on every status change of a check (its
        name) and of the whole (``None``); ``old`` is None for the first result.
        Callbacks run on the refresher; one that raises is logged and skipped."""
        return self.registry.on_change(callback)

    # -- state -----------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The prepared responses requests are answered from (never mutated)."""
        return self.engine.publisher.snapshot

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path this object answers (each also with a trailing slash)."""
        return self.registry.paths

    @property
    def draining(self) -> bool:
        return self.engine.drain.draining

    @property
    def activated(self) -> bool:
        """Whether a start of the refresher has been asked for in this process."""
        return self.engine.publisher.activated

    def drain(self) -> None:
        """Fail readiness (and every endpoint made with ``drain=True``) from now on, in
        every worker of this server instance, and with ``drain_file`` set in every
        server sharing the path for as long as this instance lives. Returns once the
        drain is written (a busy instance database is retried for up to 0.5 s: from a
        coroutine, ``await asyncio.to_thread(health.drain)``). The pre-stop endpoint
        drains the same way without waiting on the app's loop."""
        writing = self.engine.sharing.drain()
        if writing is not None:
            writing.join()

    def report(self) -> Report:
        """The full report (``base_path``'s) as of now, from the last recorded results."""
        return self.engine.results.report()

    def run_once(self) -> Report:
        """Run every check once, now, concurrently (each bounded by its timeout), on
        an event loop and threads of its own, and return the full report of these
        runs: for a command line or a deploy gate. What this process serves is left
        alone. Call it where no event loop runs (else ``await run_once_async()``)."""
        return run_to_completion(self.run_once_async())

    async def run_once_async(self) -> Report:
        """``run_once`` on the running loop (async checks run on it)."""
        return await self.runtime.run_once()

    # -- this process's refresher ----------------------------------------------------

    def stop(self) -> None:
        """Stop this process's refresher and its probe port; their threads (and the
        check pool's) are waited for, bounded (a thread held by a hung sync check ends
        only when the check returns). Requests do not restart it: the snapshot goes
        stale, so probes fail, as they should."""
        self.runtime.stop()

    async def stop_async(self) -> None:
        """Stop a refresher running on this loop and wait for it (bounded)."""
        await self.runtime.stop_async()

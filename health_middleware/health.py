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
    """The checks, the endpoints and their configuration, for one app.

    Every option is a keyword argument, checked here: a wrong type raises
    ``TypeError``, a wrong value ``ValueError``, each naming the option. Nothing starts
    here: each process starts its own refresher as it serves (the middleware's
    lifespan startup or first request, the gunicorn hook, ``serve``). The
    Configuration page of the documentation shows the options with examples.

    Args:
        service_id: The IETF ``serviceId`` of the full report.
        version: The IETF ``version``: the public version of the service. It is also
            the info endpoint's ``version`` unless ``info`` gives one.
        release_id: The IETF ``releaseId``: the build or commit.
        description: The IETF ``description``.
        base_path: Where the default endpoints live: the full report at
            ``base_path``, the probes at ``<base_path>/live``, ``/ready`` and
            ``/started``, the info endpoint at ``<base_path>/info``.
        interval: The default number of seconds between the runs of a check.
        timeout: The default number of seconds a run of a check may take; a run past
            it fails with the output ``timeout``.
        expose_errors: Publish the messages of the exceptions checks raise in their
            ``output``; by default only the exception's type is published.
        status_case: ``"lower"`` for ``pass``, ``warn`` and ``fail``; ``"upper"`` for
            ``PASS``, ``WARN`` and ``FAIL``, for consumers that expect upper case.
        stale_after: Seconds a snapshot stays valid without a new one (the refresher
            publishes every second), at least 2. Past it every endpoint answers 503:
            a refresher that stopped cannot leave stale answers behind.
        max_threads: The number of threads running sync checks. A run past its
            timeout gives its place back (its thread stays with it until it returns),
            so a hung check never takes a place from the others.
        wait_first_round: Hold the first request (under ASGI, the lifespan startup)
            until every check has reported once, for at most the longest check
            timeout, rather than answer 503 ``starting`` meanwhile.
        drain_file: A path shared by several server instances on one host, for a
            drain across servers: ``drain()`` and the pre-stop endpoint write this
            instance into it, and every process that reads it drains within a
            second, for as long as this instance lives (a stopped server's entry is
            ignored). The workers of one server share their drain without it.
        notes: The IETF ``notes`` of the full report.
        links: The IETF ``links`` of the full report, beside the automatic ``self``.
        format: The format of the default endpoints: a name (``"ietf"``,
            ``"microprofile"``, ``"spring"``, ``"envelope"``, ``"text"``,
            ``"openmetrics"``, ``"html"`` or ``"negotiate"``) or a format object from
            ``health_middleware.formats``.
        info: What the info endpoint says; ``None`` is ``Info()``, whose fields come
            from the environment and the git checkout.
        details_token: A secret of at least 16 printable ASCII characters: a request
            with ``Authorization: Bearer <token>`` gets the error messages, as with
            ``expose_errors``, on every endpoint. See the Security page.
        shutdown_delay: Seconds to keep serving after SIGTERM with readiness failing,
            before the server stops as it would have; 0 leaves SIGTERM alone.
        jitter: After a check's first run (at once), offset its schedule by a random
            part of its interval, so that servers started together do not check their
            dependencies in lockstep; ``False`` for tests that need exact timing.
        instance: A name shared on purpose by several servers on one host (1 to 60
            letters, digits, ``.``, ``_`` or ``-``): they then run their instance
            checks and drain as one. ``None``: each server is an instance of its own.

    Attributes:
        base_path: The full report's path: ``base_path`` normalised.
        interval: The default seconds between the runs of a check.
        timeout: The default seconds a run of a check may take.
        wait_first_round: Whether the first request waits for the first round.
    """

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
        """Register the decorated function as a check: ``@health.check("db")``.

        The function takes no arguments, sync or ``async def``, and is returned as it
        was. The options are those of ``add_check``, which says what each means.

        Args:
            name: The check's name: ``component`` or ``component:measurement``
                (e.g. ``postgres:responseTime``), its key in the report.

        Keyword Args:
            interval (float | None): Seconds between runs (default: the ``Health``'s
                ``interval``).
            timeout (float | None): Seconds a run may take (default: the ``Health``'s
                ``timeout``).
            critical (bool): Whether a failure fails the whole and readiness
                (default ``True``).
            tags (Iterable[str]): The groups the check counts in, e.g. ``{"live"}``
                (default none).
            component_type (str | None): The IETF ``componentType`` (default: the
                function's ``component_type`` attribute, else ``"component"``).
            failure_threshold (int): Failed runs in a row before it reports ``fail``
                (default 1).
            success_threshold (int): Passing runs in a row before it passes again
                (default 1).
            component_id (str | None): The IETF ``componentId`` (default ``None``).
            affected_endpoints (Iterable[str]): The IETF ``affectedEndpoints``
                (default none).
            scope (Literal["instance", "process"] | None): Where it runs under
                several workers (default: the function's ``scope`` attribute, else
                ``"instance"``).

        Returns:
            A decorator that registers the function it is given and returns it.

        Raises:
            TypeError: ``@health.check`` without the name; an option of the wrong
                type; a function that needs arguments.
            ValueError: A malformed name or tag, a name already registered, a value
                out of range.
        """
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
        """Register ``fn`` as a check.

        ``fn`` returns ``None`` or ``True`` (pass), ``False`` (fail) or a
        ``CheckResult``; an exception fails the run, as does a run past its timeout.

        Args:
            name: The check's name: ``component`` or ``component:measurement``
                (e.g. ``postgres:responseTime``), its key in the report.
            fn: A function of no arguments, sync (run on a thread) or ``async def``
                (run on the event loop), such as one a ``health_middleware.checks``
                function makes.

        Keyword Args:
            interval (float | None): Seconds between the starts of two runs;
                ``None``: the ``Health``'s ``interval``.
            timeout (float | None): Seconds a run may take before it fails as
                ``timeout`` (and is abandoned); ``None``: the ``Health``'s
                ``timeout``.
            critical (bool): Whether a failure fails the whole report and readiness
                (default ``True``); ``False`` degrades the whole to ``warn``.
            tags (Iterable[str]): Groups to count in: ``{"live"}`` for liveness,
                ``{"ready"}`` for readiness, any word for an endpoint's ``group``
                (default none).
            component_type (str | None): The IETF ``componentType`` (``component``,
                ``datastore``, ``system`` or your own); ``None``: ``fn``'s
                ``component_type`` attribute (the built-in checks carry one), else
                ``"component"``.
            failure_threshold (int): Consecutive failed runs before the check reports
                ``fail`` (default 1).
            success_threshold (int): Consecutive passing runs before a failing check
                reports ``pass`` again (default 1).
            component_id (str | None): The IETF ``componentId`` (default ``None``); a
                ``CheckResult`` may give its own.
            affected_endpoints (Iterable[str]): The IETF ``affectedEndpoints``, shown
                while the check is not passing (default none).
            scope (Literal["instance", "process"] | None): ``"instance"``: under
                several workers, one run per interval for the whole server instance,
                every worker answering from its result (a dependency);
                ``"process"``: a run in every worker (the process itself). ``None``:
                ``fn``'s ``scope`` attribute (the built-in checks carry one), else
                ``"instance"``.

        Raises:
            TypeError: ``fn`` is not callable, needs arguments, or is a check factory
                not called (``checks.postgres`` for ``checks.postgres(dsn)``); an
                unknown option, or one of the wrong type.
            ValueError: A malformed name or tag, a name already registered, a value
                out of range.
        """
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
        """Serve one more endpoint at ``path``, from the same snapshot as the others.

        Args:
            path: Its absolute path, starting with ``/`` (not under ``base_path``); a
                trailing slash matches too.
            group: Which checks count: ``"all"`` (the full report), ``"live"``
                (tagged ``live``), ``"ready"`` (critical or tagged ``ready``),
                ``"started"`` (passes once every check has completed once), or any
                tag. A group no check carries refuses the start (``StartError``
                naming the endpoint and the known groups), so a typo never passes.
            format: A format name or object, as ``Health(format=...)``.
            details: ``True`` for the full report (the service's fields and every
                check); ``False`` for a probe's minimal body.
            status_codes: The HTTP status for each of ``pass``, ``warn`` and
                ``fail`` (default 200, 200 and 503): all three, each from 200 to
                599 and able to carry a body; with the ``ietf`` format, pass and
                warn 2xx or 3xx and fail 4xx or 5xx.
            drain: Answer 503 while draining, as readiness does.

        Raises:
            ValueError: A malformed path, one already served, or status codes out
                of range.
            TypeError: An option of the wrong type.
        """
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
        """Serve the pre-stop endpoint, for Kubernetes ``preStop.httpGet``.

        A request with ``Authorization: Bearer <token>`` starts the drain (as
        ``drain()`` does, without waiting on the app's event loop) and is answered
        after ``delay`` seconds, so the pod leaves the load balancers before SIGTERM;
        any other request gets 401.

        Args:
            token: The secret the request must carry: at least 16 printable ASCII
                characters, no spaces.
            path: The endpoint's absolute path; ``None``: ``<base_path>/prestop``.
            delay: Seconds between the drain and the answer.

        Raises:
            ValueError: A token too short, a malformed path, or a pre-stop endpoint
                already served.
        """
        self.registry.set_prestop(
            Prestop(normalise_path(path or self._root + "/prestop"), token, delay)
        )
        self.engine.publisher.publish()

    def heartbeat(
        self, name: str, max_age: float = 30.0, **options: Unpack[CheckOptions]
    ) -> Heartbeat:
        """Register a check that fails once its loop stops beating, and return the beat.

        A consumer or scheduler calls the returned ``Heartbeat`` (``beat()``) from its
        work loop each time round (from any thread; a beat costs a clock read), and
        ``beat.pause()`` when the loop waits on purpose (the check passes until the
        next beat). The check fails once the last beat is older than ``max_age``
        seconds; its observed value is that age, in seconds. Before the first beat it
        has no result (the process is starting). It measures this process
        (``scope="process"``) and is checked every second (every ``max_age`` if
        shorter), so a loop that stops is seen within ``max_age`` plus a second.

        Args:
            name: The check's name, as for ``add_check``.
            max_age: Seconds the loop may go without a beat before the check fails.

        Keyword Args:
            interval (float | None): Seconds between runs (default: 1, or
                ``max_age`` if shorter).
            tags (Iterable[str]): The groups it counts in (default ``("live",)``:
                liveness).
            scope (Literal["instance", "process"] | None): Only ``"process"``, the
                default: a heartbeat measures the process that beats it.
            component_type (str | None): As for ``add_check`` (default
                ``"component"``).
            timeout (float | None): As for ``add_check`` (default: the ``Health``'s).
            critical (bool): As for ``add_check`` (default ``True``).
            failure_threshold (int): As for ``add_check`` (default 1).
            success_threshold (int): As for ``add_check`` (default 1).
            component_id (str | None): As for ``add_check`` (default ``None``).
            affected_endpoints (Iterable[str]): As for ``add_check`` (default none).

        Returns:
            The ``Heartbeat`` to call from the loop.

        Raises:
            ValueError: ``scope`` other than ``"process"``, and as ``add_check``.
        """
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
        """Also serve every health path on a probe port of its own.

        The probe port answers from the same snapshot on a thread of its own (never
        the app's event loop or workers), so probes never queue behind the app's
        requests. Only recorded here: the port opens in each process as its
        refresher starts (lifespan startup, the gunicorn hook, the first health
        request, ``serve``; at once where it runs already), where a port that cannot
        be had raises ``StartError``. The workers of one server share the port
        (``SO_REUSEPORT``). The probe port page says when to use one.

        Args:
            port: The probe port; 0 lets the system pick one in each process (for
                tests).
            host: The address to bind: ``"::"`` for IPv6, ``"127.0.0.1"`` for the
                host alone.
            watch: The main port, to watch through the probe port: a port on
                127.0.0.1, or ``"host:port"``. The probe port's thread then requests
                ``<base_path>/live`` through it every ``watch_interval`` seconds, and
                the check ``main-port`` (tagged ``live``) fails once
                ``watch_misses`` requests in a row went unanswered, so a main
                listener that no longer answers fails liveness here too.
            watch_interval: Seconds between two requests of the watch; any HTTP
                answer within the interval counts.
            watch_misses: Unanswered requests in a row that fail ``main-port``.

        Raises:
            ValueError: A second call (one probe port per ``Health``), or a
                malformed host, port or watch.
        """
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
        """Serve the health endpoints in a process with no web app.

        For a worker, a consumer or a scheduler: the probe port (as ``listen``) opens
        on ``host:port`` and the refresher starts on a daemon thread with an event
        loop of its own. It returns at once, from a plain program or from inside a
        running event loop alike; async checks then run on the refresher's loop, not
        the program's, so they must not use clients bound to the program's loop.
        ``stop()`` ends both. The process is a server instance of its own (unless
        ``instance`` names a shared one); a process forked from it (a prefork pool's
        child) neither serves the port nor runs the checks. The Other processes page
        shows examples.

        Args:
            port: The port to serve on.
            host: The address to bind.

        Raises:
            StartError: The port cannot be had (the message names it), or the set-up
                cannot start.
            ValueError: ``listen`` already asked for another port.
        """
        self.runtime.serve(host_name("host", host), port_number("port", port))

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """The probe port asked for with ``listen``, as ``(host, port)``, or None."""
        return self.runtime.listen_address

    @property
    def listening(self) -> tuple[str, int] | None:
        """Where this process's probe port is open, as ``(host, port)``, or None."""
        listener = self.runtime.listener
        return listener.address if listener is not None and listener.alive() else None

    def on_change(self, callback: L) -> L:
        """Call ``callback`` on every change of status of a check or of the whole.

        Callbacks run on the refresher, in this process; one that raises is logged
        and skipped. Usable as a decorator.

        Args:
            callback: Called as ``callback(name, old, new)``: ``name`` is the check's
                name, or ``None`` for the whole; ``old`` and ``new`` are ``"pass"``,
                ``"warn"`` or ``"fail"``, ``old`` being ``None`` for the first result.

        Returns:
            ``callback``, unchanged.
        """
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
        """Whether this process drains: readiness (and every endpoint made with
        ``drain=True``) fails from ``drain()``, the pre-stop endpoint or a shared
        drain on."""
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
        """The full report (``base_path``'s) as of now, from the last recorded
        results: nothing is run. ``report().status`` is ``"pass"``, ``"warn"`` or
        ``"fail"``; the ``Report`` class in ``health_middleware.formats`` says the rest."""
        return self.engine.results.report()

    def run_once(self) -> Report:
        """Run every check once, now, concurrently (each bounded by its timeout), on
        an event loop and threads of its own, and return the full report of these
        runs: for a command line or a deploy gate. What this process serves is left
        alone. Call it where no event loop runs (else ``await run_once_async()``)."""
        return run_to_completion(self.run_once_async())

    async def run_once_async(self) -> Report:
        """``run_once`` on the running event loop (async checks run on it)."""
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

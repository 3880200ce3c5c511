"""``Health`` itself: its options, validated here, and what it is made of (the
engine, the runtime, the default endpoints); its state (snapshot, drain, report) and
the one-shot run. Registering and serving are its two parts."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterable, Mapping

from health_middleware.config.validation import (
    count,
    delay,
    drain_path,
    flag,
    instance_name,
    optional_text,
    period,
    seconds,
    text_map,
    texts,
)
from health_middleware.engine.engine import Engine
from health_middleware.engine.run import run_to_completion
from health_middleware.engine.snapshot import Snapshot
from health_middleware.formats import Info
from health_middleware.health.registering import Registering
from health_middleware.health.serving import Serving
from health_middleware.instance import drainfile
from health_middleware.model.endpoint import normalise_path
from health_middleware.model.report import Format, Report, Service
from health_middleware.process.runtime import Runtime
from health_middleware.web.prestop import valid_token


class Health(Registering, Serving):
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

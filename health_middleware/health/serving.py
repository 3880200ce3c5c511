"""Serving: this process's refresher and probe port, for a ``Health`` (``listen``,
``serve``, ``stop``) and the watch of the main port."""

from __future__ import annotations

from health_middleware.config import environment
from health_middleware.config.validation import host_name, port_number
from health_middleware.health.parts import Parts
from health_middleware.model.check import Check
from health_middleware.process.watch import Watch, watch_check


class Serving(Parts):
    """The serving part of ``Health``: this process's refresher and probe port."""

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
            registered=[check.name for check in self.registry.checks()],
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

    def stop(self) -> None:
        """Stop this process's refresher and its probe port; their threads (and the
        check pool's) are waited for, bounded (a thread held by a hung sync check ends
        only when the check returns). Requests do not restart it: the snapshot goes
        stale, so probes fail, as they should."""
        self.runtime.stop()

    async def stop_async(self) -> None:
        """Stop a refresher running on this loop and wait for it (bounded)."""
        await self.runtime.stop_async()

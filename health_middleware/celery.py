"""Celery workers: ``instrument(celery_app, health, port)`` gives a worker the health
endpoints on a port of its own, from Celery's own signals and one consumer bootstep.

In the worker's main process (never in a prefork pool's children, never in a process
that only imports the app, such as the web app sending tasks):

- ``worker_init``: two checks are registered on ``health`` and ``health.serve(port,
  host)`` opens the port and starts the refresher on threads of its own. The worker is
  **starting** (``/health/started`` and ``/health/ready`` answer 503) until
- ``worker_ready``: the consumer consumes; the heartbeat's first beat.
- **live** (check ``celery:consumer``, a heartbeat tagged ``live``): beaten every
  ``max_age / 4`` seconds (at most every second) by a timer on the consumer's own
  event loop (kombu's hub), the loop that reads the broker, runs the timers and the
  remote control commands; a loop blocked for ``max_age`` seconds fails liveness.
  Under the ``solo`` pool a task runs on that loop: ``max_age`` must exceed the
  longest task. Without a hub (transports with no event loop support, or the
  gevent/eventlet pools) the timer asks the consumer's loop to beat at its next turn.
- **ready** (check ``celery:broker``, critical): a consumer bootstep placed after
  Celery's ``Connection`` step says connected (at the loop's next turn after its
  ``start``) and lost on ``stop``, ``shutdown`` or ``terminate`` (Celery stops every
  step when the connection fails, then starts them again once it reconnects).
- **A broker outage fails readiness**: while the consumer is disconnected its loop
  does not run (Celery is reconnecting), so the heartbeat is paused from the
  connection's loss until it is back (it passes meanwhile), and a worker that never
  reconnects stays live and unready. A silent partition (packets dropped, no reset)
  may never break Celery's own connection: the broker check also makes a round trip
  to the broker on a connection of its own every ``health.interval`` seconds, so it
  fails within an interval and a timeout. Where the consumer's loop itself hangs on
  the frozen socket (the Redis transport does), the heartbeat stops and liveness fails
  after ``max_age`` too: a restart is then the cure.
- Ready again after a reconnection once the consumer's loop turns again (Celery
  restarts its other steps after the connection), not as the connection is made.
- ``worker_shutting_down`` (SIGTERM's warm shutdown, SIGQUIT, Ctrl-C): ``health.drain()``
  (readiness answers 503 ``draining`` until the process exits) and the heartbeat is
  paused (a worker finishing its tasks is not hung).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from health_middleware.config.validation import StartError, host_name, port_number, seconds
from health_middleware.engine.heartbeat import Heartbeat
from health_middleware.health import Health
from health_middleware.model.result import CheckResult, NoResult

try:
    from celery import Celery, bootsteps, signals
except ImportError:  # pragma: no cover - the extra is missing
    raise ImportError(
        "health_middleware.celery needs Celery: pip install 'health_middleware[celery]'"
    ) from None

__all__ = ["BROKER_CHECK", "CONSUMER_CHECK", "instrument"]

CONSUMER_CHECK = "celery:consumer"  # the heartbeat of the consumer's loop (live)
BROKER_CHECK = "celery:broker"  # connected to the broker (ready)
STEP_NAME = "health_middleware.celery.Probes"
CONNECTION_STEP = "celery.worker.consumer.connection:Connection"
NEVER_CONNECTED = "not connected to the broker yet in this process"
DISCONNECTED = "not connected to the broker (reconnecting)"
STOPPING = "the worker is shutting down"


class _Worker:
    """What the probes know of this process's worker (written on its main thread)."""

    def __init__(self, beat: Heartbeat, reach: Callable[[], None], every: float) -> None:
        self.beat = beat
        self.reach = reach  # a round trip to the broker on a connection of its own
        self.reach_every = every  # seconds between two round trips
        self.reach_due = 0.0  # time.monotonic() of the next round trip
        self.unreached: str | None = None  # why the last round trip failed
        self.connected: bool | None = None  # None: never connected in this process
        self.resumed = False  # the Connection step has started: connected at the next turn
        self.ready = False  # worker_ready has been sent
        self.queued = False  # a beat waits for the loop's next turn (no hub)
        self.stopping = False  # worker_shutting_down has been sent

    async def broker(self) -> CheckResult | NoResult:
        """Connected as Celery sees it (read every run), and the broker answering a
        connection of this check's own every ``reach_every`` seconds (a silent
        partition may never reset Celery's own connection)."""
        connected = self.connected
        if connected is None:
            return NoResult(NEVER_CONNECTED)
        if not connected:
            return CheckResult("fail", output=STOPPING if self.stopping else DISCONNECTED)
        if time.monotonic() >= self.reach_due:
            self.reach_due = time.monotonic() + self.reach_every
            try:
                await asyncio.to_thread(self.reach)
                self.unreached = None
            except Exception as exc:
                self.unreached = type(exc).__name__
        if self.unreached is not None:
            return CheckResult("fail", output=f"the broker does not answer: {self.unreached}")
        return CheckResult("pass")

    def tick(self) -> None:
        """On the consumer's loop: it made progress (and, after the Connection step
        has started again, it consumes again: connected)."""
        self.queued = False
        if self.resumed:
            self.resumed, self.connected = False, True
        if self.ready and self.connected:
            self.beat()

    def lost(self) -> None:
        if self.connected is not None:
            self.connected = False
        self.beat.pause()


def instrument(
    app: Any, health: Health, port: int, host: str = "0.0.0.0", *, max_age: float = 30.0
) -> None:
    """Serve ``health``'s endpoints on a port of its own from each worker of ``app``.

    Call it where the app is made. In each worker's main process it registers the
    checks ``celery:consumer`` (liveness) and ``celery:broker`` (readiness) on
    ``health`` and serves them; the worker is starting, live, ready and draining as
    this module's description says. A process that only imports the app (the web
    app sending tasks) serves nothing.

    Args:
        app: The ``celery.Celery`` application.
        health: The ``Health`` to serve, with your own checks too.
        port: The port each worker serves its health endpoints on.
        host: The address to bind.
        max_age: Seconds the consumer's event loop may go without a turn before
            liveness fails. Under the ``solo`` pool a task runs on that loop: make it
            longer than the longest task.

    Raises:
        TypeError: ``app`` is not a Celery application, or ``health`` not a
            ``Health``.
        ValueError: The app is already instrumented, or a malformed host, port or
            ``max_age``.
    """
    if not isinstance(app, Celery):
        raise TypeError(f"app must be a celery.Celery application, got {type(app).__name__}")
    if not isinstance(health, Health):
        raise TypeError(f"health must be a Health, got {type(health).__name__}")
    host, port = host_name("host", host), port_number("port", port)
    max_age = seconds("max_age", max_age, minimum=0.1)
    steps = app.steps["consumer"]
    if any(getattr(step, "name", step) == STEP_NAME for step in steps):
        raise ValueError("this Celery app is already instrumented")
    every = min(1.0, max_age / 4)
    found: list[_Worker] = []  # this process's worker, once worker_init is sent

    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app or found:
            return
        reach, beat = _reach(app, health.timeout), health.heartbeat(CONSUMER_CHECK, max_age=max_age)
        worker = _Worker(beat, reach, health.interval)
        health.add_check(BROKER_CHECK, worker.broker, interval=every, scope="process")
        found.append(worker)
        try:
            health.serve(port, host)
        except (StartError, ValueError) as exc:
            # Celery's signals swallow an Exception; a worker whose health port cannot
            # be had must not consume unseen: SystemExit stops it, saying why.
            raise SystemExit(
                f"health_middleware: the worker cannot serve its health: {exc}"
            ) from None

    def on_ready(sender: Any = None, **_: Any) -> None:
        if found and getattr(sender, "app", None) is app:
            found[0].ready = True
            found[0].beat()

    def on_shutting_down(**_: Any) -> None:
        if found:  # sent in the main process only, by its signal handler
            found[0].stopping = True
            found[0].beat.pause()
            health.drain()

    class Probes(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
        """Connected from ``start`` to ``stop``; beats from the consumer's loop."""

        name = STEP_NAME
        requires = (CONNECTION_STEP,)

        def __init__(self, consumer: Any, **options: Any) -> None:
            super().__init__(consumer, **options)
            self.entry: Any = None

        def start(self, consumer: Any) -> None:
            if not found:
                return
            worker = found[0]
            worker.resumed = True  # connected at the loop's next turn: it consumes then
            if consumer.hub is not None:  # the loop's own timer: it fires on the loop
                self.entry = consumer.hub.call_repeatedly(every, worker.tick)
            else:  # a timer thread: ask the loop to beat at its next turn

                def ask() -> None:
                    if not worker.queued:
                        worker.queued = True
                        consumer.call_soon(worker.tick)

                self.entry = consumer.timer.call_repeatedly(every, ask)

        def stop(self, consumer: Any) -> None:
            entry, self.entry = self.entry, None
            if entry is not None:
                entry.cancel()
            if found:
                found[0].lost()

        shutdown = terminate = stop

    steps.add(Probes)
    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutting_down, weak=False)


def _reach(app: Any, timeout: float) -> Callable[[], None]:
    """A round trip to ``app``'s broker on a connection of its own, bounded by most of
    ``timeout`` (it fails cleanly before the check's own timeout)."""
    within = timeout * 0.75
    options = {"socket_timeout": within, "socket_connect_timeout": within, "max_retries": 0}

    def reach() -> None:
        connection = app.connection_for_write(
            connect_timeout=within, transport_options=options, heartbeat=0
        )
        try:  # once, no back-off: the next run is the retry
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=within
            )
        finally:
            connection.release()

    return reach

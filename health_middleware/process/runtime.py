"""The runtime: this process's refresher and where it runs. Under ASGI a task on the
app's event loop; under WSGI a daemon thread with a loop of its own. Started by the
first request or lifespan startup (or the gunicorn hook), revived when it died with
its loop or thread, and forgotten in a forked child, which starts its own."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from health_middleware.config import environment
from health_middleware.config.validation import StartError
from health_middleware.engine.engine import Engine
from health_middleware.engine.pool import CheckPool
from health_middleware.engine.refresher import Refresher
from health_middleware.engine.run import run_all
from health_middleware.engine.schedule import Schedule
from health_middleware.engine.stalls import thread_lateness
from health_middleware.instance import master as instance
from health_middleware.instance.database import SharedState, join_instance
from health_middleware.model.report import Report
from health_middleware.process.listener import ListenError, ProbeListener, refuse_if_served
from health_middleware.process.loading import wait_while_loading
from health_middleware.process.shutdown import DelayedExit, stops_alone
from health_middleware.process.watch import Watch

logger = logging.getLogger("health_middleware")

# How long an early start (see _new_refresher) waits for its worker to load the app.
LOAD_WAIT = 600.0
BOOT_ERROR = 3  # gunicorn's exit status for a worker that failed to boot: it halts
# the most threads a one-shot run of every check uses


@dataclass
class Running:
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


class Runtime:
    def __init__(
        self,
        engine: Engine,
        max_threads: int,
        *,
        jitter: bool = True,
        instance_name: str | None = None,
        shutdown_delay: float = 0.0,
    ) -> None:
        self._engine = engine
        self._max_threads = max_threads
        self._jitter = jitter
        self._instance_name = instance_name
        self._delayed_exit = (
            DelayedExit(shutdown_delay, engine.sharing.drain_process, self.stops_alone)
            if shutdown_delay > 0
            else None
        )
        self._lock = threading.Lock()
        self._joined = -1  # the pid that has joined its instance's shared state
        self._setup_checked = -1  # the pid whose set-up has been checked
        self.alone = False  # serve(): this process is a server instance of its own
        self.running: Running | None = None
        self.listen_address: tuple[str, int] | None = None  # Health.listen's wish
        self.watch: Watch | None = None  # the main port, watched from the probe port
        # The watch named by HEALTH_MIDDLEWARE_WATCH, as the Health makes it (its check).
        self.watch_from: Callable[[str], Watch] | None = None
        self._variables_read = False  # HEALTH_MIDDLEWARE_LISTEN and _WATCH taken
        self.listener: ProbeListener | None = None  # this process's probe port

    def listen(self, host: str, port: int, watch: Watch | None = None) -> None:
        """Record the probe port; it opens as this process's runtime starts (now, if
        it runs already)."""
        with self._lock:
            if self.listen_address is not None:
                was_host, was_port = self.listen_address
                raise ValueError(
                    f"the probe port is already set to {was_host}:{was_port}: "
                    "a Health serves one probe port"
                )
            self.listen_address, self.watch = (host, port), watch
            if self.running is not None and self.running.alive():
                self._open_probe_port()

    def server(self) -> instance.Instance:
        """The server instance this process belongs to: its master's (a worker of
        gunicorn or of a ``multiprocessing`` parent), else its own; always its own for
        a process that serves its port itself (``serve``: a consumer started by a
        supervisor is no worker of it, and shares nothing unless ``instance=``)."""
        if self.alone:
            me = os.getpid()
            return instance.Instance(me, instance.start_time(me))
        return instance.current()

    def serve(self, host: str, port: int) -> None:
        """A process with no web app: record the probe port (as ``listen``; the same
        one again is one wish) and start this process's refresher on a thread of its
        own, unless one runs (then only the port opens). The process is a server
        instance of its own (see ``server``)."""
        self.alone = True
        if self.listen_address != (host, port):
            self.listen(host, port)
        try:
            self.start_in_thread()
        except ListenError:
            child = multiprocessing.parent_process() is not None or getattr(
                multiprocessing.current_process(),
                "_inheriting",
                False,  # importing its main
            )
            if not child:
                raise
            # A pool's child re-running its parent's module (spawn, forkserver): the
            # port is the parent's. Raising would kill the child, and the pool would
            # start another for ever.
            logger.warning(
                "serve(): the port %s:%s is taken, and this process is a multiprocessing "
                "child (likely of the process serving it): it serves nothing; call "
                'serve() under `if __name__ == "__main__":`',
                host,
                port,
            )
            return
        with self._lock:
            if self.running is not None and self.running.alive():
                self._open_probe_port()  # a refresher that already ran on an app's loop

    def _take_variables(self) -> None:
        """``HEALTH_MIDDLEWARE_LISTEN`` and ``HEALTH_MIDDLEWARE_WATCH``, for every way of
        starting (the lock is held). Taken once per runtime: a forked child does not
        take the port its parent serves."""
        if self._variables_read:
            return
        watching = None if self.watch is None else (self.watch.host, self.watch.port)
        self.listen_address, target = environment.probe_port(self.listen_address, watching)
        if target is not None and self.watch is None and self.watch_from is not None:
            try:
                self.watch = self.watch_from(f"{target[0]}:{target[1]}")
            except (TypeError, ValueError) as exc:
                raise StartError(str(exc)) from None
        self._variables_read = True

    def _open_probe_port(self) -> None:
        """Open this process's probe port where one is wished for and not open (the
        lock is held); a port that cannot be had raises ``listener.ListenError``.
        Shared with ``SO_REUSEPORT`` by the workers of an instance (see listener.py)."""
        wish, listener = self.listen_address, self.listener
        if wish is None or (listener is not None and listener.alive()):
            return
        owner = self.server()
        share = self._instance_name is not None or owner.pid != os.getpid()
        if share and self._instance_name is None and wish[1] != 0:
            refuse_if_served(wish, owner)
        listener = ProbeListener(self._engine, *wish, share=share, watch=self.watch)
        listener.start()
        self.listener = listener

    async def run_once(self) -> Report:
        """Every check run once, now (``engine.run.run_all``): nothing recorded."""
        return await run_all(self._engine, self._max_threads)

    def _refresher(self) -> Refresher:
        """A refresher for this process, which first joins its server instance: with
        workers to share with, it opens the instance's database and takes what the
        instance knows, so its first answer is the instance's (the lock is held)."""
        engine = self._engine
        if self._joined != os.getpid():
            self._joined = os.getpid()
            engine.sharing.join(self._shared_state())
            environment.warn_unknown()
        sharing = engine.sharing
        schedule = Schedule(lambda: sharing.shared, self._jitter)
        return Refresher(engine, CheckPool(self._max_threads), schedule)

    def _shared_state(self) -> SharedState | None:
        """The instance's database: by name where the user named a shared instance,
        else where this process is a worker of a server master; None when alone."""
        owner = self.server()
        if self._instance_name is None and owner.pid == os.getpid():
            return None  # a server of one process: nothing to share
        registry = self._engine.registry
        key = f"{registry.service.service_id}{registry.base_path}"
        return join_instance(owner, self._instance_name, key)

    def stops_alone(self) -> bool:
        """On SIGTERM: whether this worker stops alone (see ``shutdown.stops_alone``)."""
        return not self.alone and stops_alone(self._engine.sharing.shared)

    def install_shutdown_delay(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Wrap this process's SIGTERM handler (see shutdown.py), where configured."""
        if self._delayed_exit is not None:
            self._delayed_exit.install(loop)

    @property
    def setup_checked(self) -> bool:
        """Whether this process's set-up has been checked (its runtime started)."""
        return self._setup_checked == os.getpid()

    def _check_setup(self) -> None:
        """``Registry.check_setup``, once per process."""
        if self._setup_checked != os.getpid():
            self._engine.registry.check_setup()
            self._setup_checked = os.getpid()

    def _check_setup_late(self, loader: int) -> None:
        """The set-up of an early start (a gunicorn worker whose WSGI middleware was
        made while its app still registered checks), checked once the worker's thread
        ``loader`` has loaded the app (module and factory): a worker that cannot work
        exits as one that failed to boot (gunicorn's exit status 3), and gunicorn
        stops, naming why."""
        if wait_while_loading(loader, LOAD_WAIT):
            logger.warning("checking the set-up while the worker still loads its app")
        try:
            self._check_setup()
        except StartError as exc:
            logger.error("%s: this worker stops as one that failed to boot", exc)
            os._exit(BOOT_ERROR)

    def _new_refresher(self, early: bool = False) -> Refresher | None:
        """A refresher to start in this process, the set-up checked and the probe port
        opened first (``StartError`` where it cannot start; nothing is started then);
        None when one runs here already (the lock is held). ``early``: started as the
        app's module is still being imported (a WSGI middleware made in a gunicorn
        worker), where checks may yet be registered: the set-up is checked once the
        worker has loaded its app (``_check_setup_late``)."""
        if self.running is not None and self.running.alive():
            return None
        if not early:
            self._check_setup()
        elif self._setup_checked != os.getpid():
            loader = threading.get_ident()
            setup = threading.Thread(target=self._check_setup_late, args=(loader,), daemon=True)
            setup.start()
        self._take_variables()
        self._open_probe_port()
        self._engine.publisher.activated = True
        return self._refresher()

    def start_on_loop(self) -> None:
        """Start the refresher as a task on the running loop (ASGI), unless it runs."""
        loop = asyncio.get_running_loop()
        with self._lock:
            refresher = self._new_refresher()
            if refresher is None:
                return
            running = Running(os.getpid(), refresher, loop)
            running.task = loop.create_task(refresher.run(), name="health-refresher")
            self.running = running
        self.install_shutdown_delay(loop)
        self._engine.publisher.publish()  # valid from now: requests take the hot path

    def start_in_thread(self, *, early: bool = False) -> None:
        """Start the refresher on a daemon thread with its own loop (WSGI), unless it
        runs (``early``: see ``_new_refresher``)."""
        with self._lock:
            refresher = self._new_refresher(early)
            if refresher is None:
                return
            loop = asyncio.new_event_loop()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(refresher.run())
                except RuntimeError as exc:  # its loop was stopped under it
                    logger.warning("the health refresher's loop stopped: %s", exc)
                finally:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    # The default executor's threads (a check's DNS lookups) end too.
                    loop.run_until_complete(loop.shutdown_default_executor())
                    loop.close()

            thread = threading.Thread(target=serve, name="health-refresher", daemon=True)
            self.running = Running(os.getpid(), refresher, loop, thread=thread)
            thread.start()
        self.install_shutdown_delay()
        self._engine.publisher.publish()  # valid from now: requests take the hot path

    async def stop_async(self) -> None:
        """Stop a refresher running on this loop and wait for it (bounded)."""
        running = self._stop()
        task = running.task if running is not None else None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait((task,), timeout=3.0)

    def stop(self) -> None:
        """Stop this process's refresher and probe port; their threads, and the check
        pool's, are waited for (bounded; a thread held by a hung check is left to it)."""
        running = self._stop()
        if running is not None and running.thread is not None:
            running.thread.join(3.0)
            running.refresher.pool.join(2.0)
            thread_lateness().join(0.5)

    def _stop(self) -> Running | None:
        with self._lock:
            running, self.running = self.running, None
            listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()
        if running is None or not running.alive():
            return None
        if running.thread is not None:
            running.loop.call_soon_threadsafe(running.refresher.stop)
        else:
            running.refresher.stop()
        return running

    def revive(self) -> None:
        """A request found the snapshot stale: restart a refresher that died with its
        loop or thread. A loop that is only blocked keeps its refresher, which catches
        up by itself; one stopped on purpose stays stopped."""
        running = self.running
        if running is None or running.alive():
            return
        if running.thread is not None:
            self.start_in_thread()
        else:
            self.start_on_loop()

    def after_fork(self) -> None:
        """In a forked child nothing of the parent's refresher or probe port exists
        (the wish stays: the child's runtime opens its own)."""
        self._lock = threading.Lock()
        self.running = None
        if self.listener is not None:
            # The parent keeps serving the port: the child cannot have it too.
            self.listener.forget()
            self.listener = None
            self.listen_address = self.watch = None
        self._joined = -1

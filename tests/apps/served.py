"""A process with no web app: ``health.serve()`` from a plain program or from inside
an asyncio one (``python -m tests.apps.served plain|asyncio``).

Environment: HM_PORT (the health port), HM_FLAG (the check fails while this file
exists), HM_PAUSE (the work loop stops beating while this file exists), HM_MAX_AGE
(the heartbeat's), HM_WATCH and HM_WATCH_INTERVAL (a main port the health port
watches, served by another process, and how often). One command a line on stdin,
one JSON line answers each on stdout: ``fork`` (a child is forked and says what it
serves), ``loops`` (whether async checks ran on the program's loop), ``stop``
(``health.stop()``, then the threads left and whether the port still accepts), ``exit``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from health_middleware import Health

PORT = int(os.environ["HM_PORT"])
FLAG = Path(os.environ.get("HM_FLAG", "/nonexistent/flag"))
PAUSE = Path(os.environ.get("HM_PAUSE", "/nonexistent/pause"))

health = Health(service_id="served", interval=0.2, timeout=1.0)
beat = health.heartbeat("work", max_age=float(os.environ.get("HM_MAX_AGE", "1")))
if os.environ.get("HM_WATCH"):
    interval = float(os.environ.get("HM_WATCH_INTERVAL", "5"))
    health.listen(PORT, "127.0.0.1", watch=os.environ["HM_WATCH"], watch_interval=interval)
loops: list[asyncio.AbstractEventLoop] = []


@health.check("flag")
def flag() -> bool:
    return not FLAG.exists()


@health.check("loop", critical=False)
async def loop_check() -> None:
    loops.append(asyncio.get_running_loop())  # where async checks run


def say(answer: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(answer).decode() + "\n")
    sys.stdout.flush()


def accepts() -> bool:
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
    except OSError:
        return False
    return True


def ours() -> list[str]:
    """The threads other than the program's own (its main thread and "work")."""
    main = threading.main_thread()
    return [t.name for t in threading.enumerate() if t is not main and t.name != "work"]


def fork() -> dict[str, Any]:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: like a prefork pool's worker process
        os.close(reader)
        time.sleep(0.5)  # the parent's refresher has had turns meanwhile
        report = {
            "listening": health.listening,
            "running": health.runtime.running is not None,
            "threads": ours(),
            "beaten": beat.age is not None,
        }
        os.write(writer, orjson.dumps(report))
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child = orjson.loads(pipe.read())
    os.waitpid(pid, 0)
    return {"child": child, "parent_accepts": accepts()}


def command(line: str) -> bool:
    """Answer one command; return whether to go on."""
    line = line.strip()
    if line == "fork":
        say(fork())
    elif line == "stop":
        health.stop()
        say({"threads": ours(), "accepts": accepts()})
    elif line == "loops":
        program = asyncio.get_running_loop() if sys.argv[1] == "asyncio" else None
        say({"on_program_loop": any(loop is program for loop in loops), "runs": len(loops)})
    return line not in ("exit", "")


def plain() -> None:
    health.serve(PORT, "127.0.0.1")
    say({"served": True})
    done = threading.Event()

    def work() -> None:  # the program's own work loop, on its own thread
        while not done.is_set():
            if not PAUSE.exists():
                beat()
            time.sleep(0.05)

    worker = threading.Thread(target=work, name="work")
    worker.start()
    try:
        while command(sys.stdin.readline()):
            pass
    finally:
        done.set()
        worker.join()


async def in_asyncio() -> None:
    health.serve(PORT, "127.0.0.1")  # from inside the running loop: returns at once
    say({"served": True})
    lines: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: lines.put_nowait(sys.stdin.readline()))

    async def work() -> None:
        while True:
            if not PAUSE.exists():
                beat()
            await asyncio.sleep(0.05)

    worker = asyncio.create_task(work())
    try:
        while command(await lines.get()):
            pass
    finally:
        worker.cancel()
        loop.remove_reader(sys.stdin.fileno())


if __name__ == "__main__":
    if sys.argv[1] == "asyncio":
        asyncio.run(in_asyncio())
    else:
        plain()

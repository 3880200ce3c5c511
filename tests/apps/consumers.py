"""Consumers for the multiprocessing tests: each serves its own health port.

``consumer(port, flag)`` is a process target (a supervisor starts two with
``multiprocessing``): a ``Health`` whose check fails while ``flag`` exists, served on
``port`` until the process is stopped. Run as a module (``HM_PORT``), it calls
``serve()`` at import, as a careless script would, then maps over a spawn pool.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from health_middleware import Health


def consumer(port: int, flag: str) -> None:
    health = Health(interval=0.1)
    health.add_check("db", lambda: not Path(flag).exists())
    health.serve(port, "127.0.0.1")
    time.sleep(3600)


def square(number: int) -> int:
    return number * number


if os.environ.get("HM_PORT"):  # at import: every spawned child runs this again
    careless = Health()
    careless.serve(int(os.environ["HM_PORT"]), "127.0.0.1")

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print(sum(pool.map(square, range(10))), flush=True)

"""This process: where and when the engine runs in it.

- ``runtime``: ``Runtime``, this process's refresher (a task on the app's loop, or a
  thread with a loop of its own), started, revived, stopped, forgotten after a fork;
  the instance's database joined; the probe port opened.
- ``listener``: the probe port, a thread of its own answering from the snapshot;
  ``protocol``: HTTP/1.x as it speaks it; ``watch``: its watch of the main port.
- ``shutdown``: ``shutdown_delay``, the SIGTERM handler wrapped, and whether a
  worker stops alone or with its server.

Imports ``engine`` and the layers below it; never a face or ``Health``.
"""

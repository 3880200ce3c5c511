"""The engine: runs the checks and publishes the snapshot requests are answered from.

- ``engine``: ``Engine``, the parts below put together once per ``Health``.
- ``registry``: what is registered (checks, endpoints, pre-stop), validated.
- ``callbacks``: ``on_change``, ``on_run`` and ``on_publish``, and the one way each
  is called.
- ``results``: what this process knows of each check's results (a state per check),
  the transitions, every change logged once.
- ``drain``: whether this process drains, and why.
- ``sharing``: this process's part in its server instance (following the others'
  results and drain through the instance's database) and the drains.
- ``publisher``: builds the snapshot and swaps it in (``snapshot``: building every
  endpoint's finished responses, and the one decision of what a request gets).
- ``refresher``: the loop that runs each check on its interval; ``run``: one run of
  a check bounded by its timeout; ``pool``: the bounded threads of sync checks;
  ``schedule``: which process runs a check when; ``stalls``: the time a run was held
  up by others, credited back; ``heartbeat``: a check that progress beats.

Imports the layers below it (``formats``, ``model``, ``web``, ``instance``,
``config``); never ``checks``, ``process``, a face or ``Health``.
"""

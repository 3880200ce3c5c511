"""The model: what is checked and what is reported, as plain data.

- ``status``: the three statuses, their aliases, aggregation.
- ``result``: ``CheckResult`` (what a check returns) and ``Outcome`` (one finished
  run), and how any return value or exception becomes one.
- ``check``: ``Check`` (a registered check's validated options) and ``CheckState``
  (what one process knows of its runs: flap damping, the record shared with the
  other workers).
- ``endpoint``: ``Endpoint`` (a path, its group, format and status codes) and
  ``evaluate``, which makes the ``Report`` an endpoint gives right now.
- ``report``: ``Report``, ``Service`` and the ``Format`` protocol a format implements.

Imports only ``config`` (and the standard library, orjson): no I/O, no threads.
"""

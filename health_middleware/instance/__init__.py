"""The server instance: the processes of one server, and what they share.

- ``master``: which server instance a process belongs to (its master: a gunicorn
  arbiter, a ``multiprocessing`` parent, or itself), told apart from a later process
  that reused its pid by its start time; whether the master still listens.
- ``folder``: the private state folder (mode 0700, checked on every open), the
  databases' and the probe ports' markers' names in it, and the clean-up of servers
  that have gone.
- ``database``: ``SharedState``, one instance's SQLite database: claimed runs,
  published results, the drain, the processes and servers that use it.
- ``drainfile``: the drain shared by servers through a file of the user's own.

Imports only ``config`` (and the standard library's sqlite3): the engine above uses
it, and nothing here knows of checks.
"""

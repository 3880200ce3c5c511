"""Configuration: what the user gives, checked once, as it is given.

- ``validation``: every option's check (a wrong type is a ``TypeError``, a wrong
  value a ``ValueError``, each naming the option), text made safe to publish, and
  ``StartError`` for a set-up refused at start.
- ``environment``: every ``HEALTH_MIDDLEWARE_*`` variable, named in one place, the
  warning for one nobody reads, and the probe port they ask for.
- ``callables``: telling an ASGI app from a WSGI app, a check from a check factory.
- ``imports``: objects named by ``module:attribute`` strings.
- ``logs``: the fallback that gives this package's warnings a level and a name where
  logging was never configured.

The lowest layer: imports nothing of the package.
"""

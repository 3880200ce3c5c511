"""The command line (``health-middleware``, ``python -m health_middleware``).

- ``probe``: ``probe URL``, a health request for images without curl.
- ``command``: ``check MODULE:ATTR``, every check run once, now (Django's ``manage.py
  health`` too).
- ``demo``: ``demo``, a small app with real checks.

The top of the package but for ``__main__`` and ``django``: it may import anything.
"""

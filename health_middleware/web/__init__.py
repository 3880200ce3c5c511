"""HTTP pieces every face shares (the ASGI and WSGI middleware, the probe port).

- ``response``: ``Prepared``, a finished response in the shapes ASGI and WSGI want.
- ``prestop``: the pre-stop endpoint's configuration and its prepared answers, and
  the bearer-token comparison (constant time).
- ``negotiate``: reading an ``Accept`` header and ``?format=``.
- ``accesslog``: keeping probe requests out of the servers' access logs.

Imports only ``config``.
"""

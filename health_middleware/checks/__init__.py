"""Ready-made checks. Each returns a check function (sync or async) to register with
``health.add_check(name, fn)``; the function carries its IETF ``component_type`` and its
``scope``: ``"process"`` for what measures the process itself (``memory``,
``event_loop_lag``), ``"instance"`` for what every worker of a server instance shares
(the disk, the network, datastores, brokers).

Each has a ``timeout`` of its own for connecting and answering; keep it below the
check's ``timeout`` so a dependency that accepts and never answers fails cleanly, with
its connection closed, before the refresher abandons the run. Each validates its
arguments when it is made (TypeError for a wrong type, ValueError for a wrong value,
naming the option). Drivers are optional extras, imported only when the check is made.
The Checks page of the documentation describes each, with examples.
"""

# Public. Imports model and config, and of the engine only stalls.within: the checks
# bound their I/O by the loop's time, so one held up by another's blocking does not
# time out inside for it.

from health_middleware.checks._common import Check
from health_middleware.checks.datastores import (
    dbapi,
    memcached,
    mysql,
    postgres,
    redis,
    sqlalchemy,
)
from health_middleware.checks.messaging import amqp, celery, mqtt, nats
from health_middleware.checks.network import dns, tcp, tls_certificate
from health_middleware.checks.system import disk, event_loop_lag, memory
from health_middleware.checks.upstreams import grpc, http, smtp

__all__ = [
    "Check",
    "amqp",
    "celery",
    "dbapi",
    "disk",
    "dns",
    "event_loop_lag",
    "grpc",
    "http",
    "memcached",
    "memory",
    "mqtt",
    "mysql",
    "nats",
    "postgres",
    "redis",
    "smtp",
    "sqlalchemy",
    "tcp",
    "tls_certificate",
]

"""gRPC's health service (``grpc.health.v1.Health``) for grpcio servers, answered
from the same snapshot as the health endpoints (extra ``grpc``):

```python
from grpc_health.v1 import health_pb2_grpc
from health_middleware.grpc import HealthServicer  # AsyncHealthServicer: grpc.aio

health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(health), server)
```

``Check``, ``Watch`` and ``List`` read the published snapshot: a call never runs a
check. A service's status is its endpoint's report status: pass or warn is
``SERVING``, fail is ``NOT_SERVING``, and so is every service once the snapshot has
expired (its refresher did not publish in time), as the HTTP answers are.

The services (``List`` names them):

- ``""``: the server's overall readiness, ``<base_path>/ready`` (what Kubernetes'
  ``grpc:`` probe asks for by default);
- ``liveness``, ``readiness``, ``startup``: ``<base_path>/live``, ``/ready`` and
  ``/started``;
- every other endpoint by its path: the full report ``<base_path>`` (``/health``), the
  info endpoint, and each ``health.endpoint(path)``.

An unknown service: ``Check`` ends with ``NOT_FOUND``; ``Watch`` sends
``SERVICE_UNKNOWN`` and stays open (the protocol's rule), sending the real status if an
endpoint of that name appears.

``Watch`` sends the current status at once, then each change in order: every snapshot
published reaches each servicer, and each open ``Watch`` also wakes when the snapshot
would expire, so an expiry is sent without a publish. It ends when the client cancels
or the server stops. On a synchronous ``grpc.server`` each open ``Watch`` holds one of
the server's threads for as long as it is open (grpcio's sync API streams from a
blocking iterator), so ``HealthServicer`` accepts at most ``max_watches`` at once and
answers another ``UNIMPLEMENTED``: the health-checking protocol tells a client to treat
the server as healthy then and stop watching (client-side health checking fails open),
where another code would mark a healthy server down; and ``Check``, the kubelet's
probe, always finds a thread. On ``grpc.aio`` a ``Watch`` is a coroutine.

The refresher: a gRPC server has no HTTP face to start it, so the first call to a
servicer in a process starts that process's refresher if nothing else has (as the
first request through the middleware does), on a thread of its own
(``HealthServicer``) or on the server's event loop (``AsyncHealthServicer``), and
revives one that died. The constructor starts nothing (it may run before a fork).
Starting earlier (so that the first probe finds the first round done) and stopping are
the process's: ``health.stop()`` (or ``await health.stop_async()``) after the server stops.
"""

from __future__ import annotations

try:
    import grpc  # noqa: F401
    from grpc_health.v1 import health_pb2  # noqa: F401
except ImportError as exc:  # the extra is missing
    raise ImportError(
        "health_middleware.grpc needs grpcio and grpcio-health-checking: "
        "pip install 'health_middleware[grpc]'"
    ) from exc

from health_middleware.grpc.servicers import AsyncHealthServicer, HealthServicer
from health_middleware.grpc.services import service_names

__all__ = ["AsyncHealthServicer", "HealthServicer", "service_names"]

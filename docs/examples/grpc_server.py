"""A gRPC server with the standard health service: python grpc_server.py"""

import signal
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2_grpc

from health_middleware import Health, checks
from health_middleware.grpc import HealthServicer

health = Health(service_id="payments", version="1.4.2")
health.add_check("disk:utilization", checks.disk("/"), critical=False)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(health), server)
    # ...and your own servicers
    server.add_insecure_port("[::]:50051")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    server.start()
    stopping.wait()
    health.drain()  # "" and readiness answer NOT_SERVING; Watch clients are told at once
    time.sleep(5)  # clients and the endpoints controller move away
    server.stop(grace=10).wait()
    health.stop()


if __name__ == "__main__":
    main()

"""A queue consumer with no web app, probed on port 8081: python consumer.py"""

import queue

from health_middleware import Health, checks

health = Health(service_id="orders-consumer", version="1.4.2")
health.add_check("disk:utilization", checks.disk("/"), critical=False)
beat = health.heartbeat("consumer", max_age=30)  # fails liveness if the loop stops


def handle(message):
    print("handled", message)


def main():
    messages = queue.Queue()  # your broker's client
    health.serve(8081)  # the probe port and the checks, on threads of their own
    try:
        while True:
            beat()  # the loop turns: a clock read and a store
            try:
                message = messages.get(timeout=5)
            except queue.Empty:
                continue
            handle(message)
    finally:
        health.stop()


if __name__ == "__main__":
    main()

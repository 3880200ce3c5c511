"""A Celery worker probed on port 8081: celery -A celery_worker worker"""

from celery import Celery

from health_middleware import Health
from health_middleware.celery import instrument

app = Celery("orders", broker="redis://localhost:6379/0")
health = Health(service_id="orders-worker", version="1.4.2")
instrument(app, health, 8081)  # host="0.0.0.0", max_age=30.0


@app.task
def ship(order_id):
    return f"shipped {order_id}"

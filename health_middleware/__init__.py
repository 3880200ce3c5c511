"""Health endpoints in front of any ASGI or WSGI app, answered from a snapshot."""

from health_middleware.asgi import HealthMiddleware
from health_middleware.config import logs
from health_middleware.config.validation import StartError
from health_middleware.health import Health
from health_middleware.model.result import CheckResult
from health_middleware.wsgi import WSGIHealthMiddleware

__all__ = ["CheckResult", "Health", "HealthMiddleware", "StartError", "WSGIHealthMiddleware"]
__version__ = "0.1.0"

logs.install()

"""gunicorn.conf.py: gunicorn -c gunicorn.conf.py wsgi_app:application"""

from health_middleware.gunicorn import post_worker_init  # noqa: F401  gunicorn calls it

workers = 2
worker_class = "gthread"
threads = 4

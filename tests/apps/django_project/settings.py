"""Settings of the Django project the tests run (``tests/test_django.py``): a SQLite
default database (where the migrations are checked), PostgreSQL and MariaDB aliases, a
Redis cache and Celery on a Redis broker, each reached at the port the environment
names (a fault proxy's, in the tests), else the service's own."""

from __future__ import annotations

import os

import pymysql

# mysqlclient needs the MariaDB C headers to build; PyMySQL stands in for it, as
# Django's MySQL backend allows, with the version Django asks of mysqlclient.
pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()

environ = os.environ.get
TIMEOUT = float(environ("HM_DJ_TIMEOUT", "1"))
CONNECT = max(1, int(TIMEOUT))  # libpq's and the MySQL protocol's are whole seconds

SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.apps.django_project.urls"
USE_TZ = True
MIDDLEWARE: list[str] = []
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "tests.apps.django_project.shop",
    "health_middleware.django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": environ("HM_DJ_SQLITE", "/tmp/health-middleware-django.sqlite3"),
    },
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "test",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": environ("HM_DJ_POSTGRES_PORT", "5432"),
        "OPTIONS": {
            "connect_timeout": CONNECT,
            "application_name": environ("HM_DJ_APPLICATION_NAME", "hm-django"),
        },
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "test",
        "USER": "root",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": environ("HM_DJ_MARIADB_PORT", "3306"),
        "OPTIONS": {"connect_timeout": CONNECT, "read_timeout": CONNECT},
    },
}
DATABASE_ROUTERS = ["tests.apps.django_project.routers.DefaultOnly"]
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # A Redis database of these tests' own.
        "LOCATION": f"redis://127.0.0.1:{environ('HM_DJ_REDIS_PORT', '6379')}/11",
        "OPTIONS": {"socket_timeout": TIMEOUT / 2, "socket_connect_timeout": TIMEOUT / 2},
    },
    "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
}
CELERY_BROKER_URL = environ("HM_DJ_BROKER", "redis://127.0.0.1:6379/12")
HEALTH_MIDDLEWARE = {
    "options": {"service_id": "django-test", "interval": 0.2, "timeout": TIMEOUT},
    "celery": "tests.apps.django_project.celery_app:app",
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

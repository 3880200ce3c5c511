"""The ``HEALTH_MIDDLEWARE`` setting, and the ``Health`` it makes: the checks Django's
own settings describe (every ``DATABASES`` and ``CACHES`` alias, the migrations, the
default storage, the Celery workers) added to a ``Health`` named or configured there."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from health_middleware.config.imports import import_string
from health_middleware.health import Health

SETTING = "HEALTH_MIDDLEWARE"
DEFAULTS: dict[str, Any] = {
    "health": None,  # "module:attribute" of a Health of yours; None: one made of "options"
    "options": {},  # Health(**options), when "health" is not given
    "databases": True,  # every DATABASES alias; a list of aliases; False: none
    "caches": True,  # every CACHES alias but dummy ones; a list of aliases; False: none
    "migrations": "warn",  # unapplied migrations on the default database: "warn", "fail", False
    "storage": False,  # True: save, read and delete a file in the default storage
    "celery": None,  # "module:attribute" of a Celery app; None: the current app when
    # CELERY_BROKER_URL is set; False: none
    "celery_critical": False,  # the web pods serve without the workers: a failure warns
    "timeout": None,  # seconds each of these checks may take; None: the Health's
    "interval": None,  # seconds between their runs; None: the Health's
}
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
DUMMY_DATABASE = "django.db.backends.dummy"  # what Django puts in an empty DATABASES

_lock = threading.Lock()
_health: Health | None = None


def _improper(message: str) -> Exception:
    from django.core.exceptions import ImproperlyConfigured

    error: Exception = ImproperlyConfigured(f"{SETTING}: {message}")
    return error


def options() -> dict[str, Any]:
    """The setting, checked, with every default applied."""
    from django.conf import settings

    given = getattr(settings, SETTING, {})
    if not isinstance(given, Mapping):
        raise _improper(f"must be a dict, got {type(given).__name__}")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise _improper(f"unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    chosen = {**DEFAULTS, **given}
    if chosen["migrations"] not in ("warn", "fail", False):
        raise _improper("'migrations' must be 'warn', 'fail' or False")
    for key in ("health", "celery"):
        if chosen[key] not in (None, False) and not isinstance(chosen[key], str):
            raise _improper(f"{key!r} must be a 'package.module:attribute' string")
    if not isinstance(chosen["options"], Mapping):
        raise _improper("'options' must be a dict of Health options")
    for key in ("storage", "celery_critical"):
        if not isinstance(chosen[key], bool):
            raise _improper(f"{key!r} must be True or False")
    for key in ("timeout", "interval"):
        value = chosen[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _improper(f"{key!r} must be a number of seconds or None")
    return chosen


def _aliases(value: object, configured: Mapping[str, Any], what: str) -> list[str]:
    if value is True:
        return list(configured)
    if value is False:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _improper(f"{what!r} must be True, False or a list of aliases")
    for alias in value:
        if alias not in configured:
            raise _improper(f"{what!r} names {alias!r}, which is not configured (or is a dummy)")
    return list(value)


def _real(configured: Mapping[str, Any], key: str, dummy: str) -> dict[str, Any]:
    """The aliases of ``configured`` whose ``key`` is not Django's ``dummy`` backend."""
    return {alias: config for alias, config in configured.items() if config.get(key) != dummy}


def _celery_app(target: object) -> Any:
    if target is False:
        return None
    if isinstance(target, str):
        return import_string(target, f"{SETTING} 'celery'")
    from django.conf import settings

    if not getattr(settings, "CELERY_BROKER_URL", None):
        return None
    import celery

    # An app of our own, configured as the project's is by convention (the CELERY_*
    # settings), to ping with: the current app is Celery's default one unless the
    # project's celery module happens to be imported, and would ping the wrong broker.
    app = celery.Celery("health_middleware")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    return app


def build() -> Health:
    """The ``Health`` the setting names or configures, with Django's checks added; any
    mistake is an ``ImproperlyConfigured`` that names the setting, at start-up."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        return _build()
    except ImproperlyConfigured:
        raise
    except (TypeError, ValueError, ImportError, AttributeError) as exc:
        raise _improper(str(exc)) from exc


def _build() -> Health:
    from django.conf import settings

    from health_middleware import checks as builtin
    from health_middleware.django import checks

    chosen = options()
    if chosen["health"]:
        health = import_string(chosen["health"], f"{SETTING} 'health'")
        if not isinstance(health, Health):
            raise _improper(f"'health' names a {type(health).__name__}, not a Health")
    else:
        health = Health(**chosen["options"])
    timing = {"timeout": chosen["timeout"], "interval": chosen["interval"]}
    timeout = health.timeout if chosen["timeout"] is None else chosen["timeout"]
    databases = _real(settings.DATABASES, "ENGINE", DUMMY_DATABASE)
    for alias in _aliases(chosen["databases"], databases, "databases"):
        health.add_check(f"database.{alias}:responseTime", checks.database(alias), **timing)
    caches = _real(settings.CACHES, "BACKEND", DUMMY_CACHE)
    for alias in _aliases(chosen["caches"], caches, "caches"):
        health.add_check(f"cache.{alias}:responseTime", checks.cache(alias), **timing)
    from django.db import DEFAULT_DB_ALIAS

    if chosen["migrations"] and DEFAULT_DB_ALIAS in databases:
        check = checks.migrations(DEFAULT_DB_ALIAS, chosen["migrations"])
        health.add_check("migrations", check, **timing)
    if chosen["storage"]:
        health.add_check("storage:responseTime", checks.storage(), **timing)
    app = _celery_app(chosen["celery"])
    if app is not None:
        # The ping's own bound stays inside the check's, so it fails cleanly first.
        ping = builtin.celery(app, timeout=timeout * 0.75)
        critical = chosen["celery_critical"]
        health.add_check("celery:workers", ping, critical=critical, **timing)
    return health


def get_health() -> Health:
    """The project's ``Health``, made once per process from the
    ``HEALTH_MIDDLEWARE`` setting (at the latest when Django's apps are ready), with
    the checks Django's own settings describe.

    Raises:
        ImproperlyConfigured: A mistake in the setting, naming it.
    """
    global _health
    with _lock:
        if _health is None:
            _health = build()
        return _health

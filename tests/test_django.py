"""The Django app (``health_middleware.django``) in a real project
(``tests/apps/django_project``): a SQLite default database, PostgreSQL and MariaDB
aliases, a Redis cache and Celery with a real worker on a Redis broker, each reached
through a fault-injecting proxy. Cut and healed, each dependency flips exactly its own
check; pending migrations warn; 1,000 runs leave no database connection open; and
``manage.py health`` prints a table and exits 0 on pass and warn, 1 on fail.

Django's settings are made once per process: this module sets the project up in the
test process (the proxies' ports in the environment first); ``manage.py`` runs as a
subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from health_middleware import Health
from tests.faultproxy import FaultProxy, fault_proxy
from tests.support import (
    MARIADB,
    REPO,
    call,
    call_app,
    celery_worker,
    free_port,
    mariadb_connections,
    require_or_skip,
    service,
)

pytestmark = pytest.mark.server

POSTGRES, REDIS = 5432, 6379
BROKER = f"redis://127.0.0.1:{REDIS}/12"  # a Redis database of these tests' own
SETTINGS = "tests.apps.django_project.settings"
MANAGE = str(REPO / "tests" / "apps" / "django_project" / "manage.py")
APP_NAME = "hm-django-test"  # PostgreSQL's application_name of the project's connections
DEPENDENCIES = {
    "postgres": "database.postgres:responseTime",
    "mariadb": "database.mariadb:responseTime",
    "redis": "cache.default:responseTime",
    "broker": "celery:workers",
}


@pytest.fixture(scope="module")
def worker() -> Iterator[Any]:
    service("Redis", REDIS)
    with celery_worker(BROKER) as app:
        yield app


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, worker: Any) -> Iterator[dict[str, Any]]:
    """The project set up in this process, every dependency behind a proxy; yields
    the proxies by dependency, and the project's environment."""
    service("PostgreSQL", POSTGRES)
    service("MariaDB", MARIADB)
    try:
        import django
        from django.conf import settings
    except ImportError:
        require_or_skip("Django is not installed (pip install 'health_middleware[django]')")
    if settings.configured:
        require_or_skip("Django's settings were already configured in this process")
    with contextlib.ExitStack() as stack:
        proxies: dict[str, FaultProxy] = {
            "postgres": stack.enter_context(fault_proxy(POSTGRES)),
            "mariadb": stack.enter_context(fault_proxy(MARIADB)),
            "redis": stack.enter_context(fault_proxy(REDIS)),
            "broker": stack.enter_context(fault_proxy(REDIS)),
        }
        env = {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "HM_DJ_SQLITE": str(tmp_path_factory.mktemp("django") / "db.sqlite3"),
            "HM_DJ_POSTGRES_PORT": str(proxies["postgres"].port),
            "HM_DJ_MARIADB_PORT": str(proxies["mariadb"].port),
            "HM_DJ_REDIS_PORT": str(proxies["redis"].port),
            "HM_DJ_BROKER": f"redis://127.0.0.1:{proxies['broker'].port}/12",
            "HM_DJ_APPLICATION_NAME": APP_NAME,
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            yield {"proxies": proxies, "env": env}
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def project_health() -> Health:
    from health_middleware.django import get_health

    return get_health()


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {name: entries[0]["status"] for name, entries in doc["checks"].items()}


def test_the_app_builds_every_check_from_the_settings(project: dict[str, Any]) -> None:
    health = project_health()
    report = health.run_once()
    assert {c.name: c.status for c in report.checks} == {
        "database.default:responseTime": "pass",
        "database.postgres:responseTime": "pass",
        "database.mariadb:responseTime": "pass",
        "cache.default:responseTime": "pass",  # the dummy cache is left out
        "migrations": "pass",
        "celery:workers": "pass",
    }


def test_each_dependency_cut_and_healed_flips_exactly_its_check(project: dict[str, Any]) -> None:
    from tests.apps.django_project.asgi import application

    health = project_health()
    proxies: dict[str, FaultProxy] = project["proxies"]

    async def scenario() -> None:
        async def until(wanted: dict[str, str], bound: float = 10) -> None:
            deadline = time.monotonic() + bound
            while True:
                response = await call(application, "/health")
                found = statuses(response.json()) if response.json().get("checks") else {}
                if found and all(found[name] == wanted.get(name, "pass") for name in found):
                    return
                assert time.monotonic() < deadline, f"wanted {wanted}, found {found}"
                await asyncio.sleep(0.02)

        await until({})
        assert (await call_app(application, "/")).body == b"django project"
        for dependency, check in DEPENDENCIES.items():
            proxies[dependency].cut()
            await until({check: "fail"})
            ready = (await call(application, "/health/ready")).status
            # The web pods serve without Celery's workers: its check is non-critical.
            assert ready == (200 if dependency == "broker" else 503), dependency
            proxies[dependency].heal()
            await until({})
        await health.stop_async()

    asyncio.run(scenario())


def test_pending_migrations_warn(project: dict[str, Any]) -> None:
    from django.core.management import call_command

    health = project_health()
    call_command("migrate", "shop", "0001", verbosity=0)
    try:
        report = health.run_once()
        migrations = next(c for c in report.checks if c.name == "migrations")
        assert migrations.status == "warn"
        assert migrations.outcome.output == "1 unapplied: shop.0002_product_price"
        assert migrations.outcome.observed_value == 1
        assert report.status == "warn"
        code, out = manage(project["env"], "health")
        assert code == 0, out
        assert out.splitlines()[-1].startswith("warn")
    finally:
        call_command("migrate", verbosity=0)
    assert health.run_once().status == "pass"


def postgres_connections() -> int:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_no_database_connection_left_open_after_1000_runs(project: dict[str, Any]) -> None:
    from health_middleware.django import checks

    runs = 1000
    before_pg, before_mariadb = postgres_connections(), mariadb_connections()
    postgres, mariadb = checks.database("postgres"), checks.database("mariadb")
    # The threads stay alive while the connections are counted: a connection a run
    # left open in its thread would still be there.
    with ThreadPoolExecutor(4) as threads:
        results = list(threads.map(lambda _: postgres(), range(runs)))
        results += list(threads.map(lambda _: mariadb(), range(runs)))
        assert all(result.status == "pass" for result in results)
        assert postgres_connections() == before_pg
        deadline = time.monotonic() + 5  # the server lets a closed session go soon after
        while mariadb_connections() > before_mariadb:
            assert time.monotonic() < deadline, "MariaDB connections left open"
            time.sleep(0.05)


# -- manage.py health ----------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, MANAGE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        # A cold process's first Celery run imports its transport: time for that.
        env={**os.environ, "HM_DJ_TIMEOUT": "3", "PYTHONPATH": str(REPO), **env},
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout + result.stderr


def test_manage_py_health_passes_fails_and_prints_json(project: dict[str, Any]) -> None:
    env: dict[str, str] = project["env"]
    code, out = manage(env, "health")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "TIME", "OUTPUT"]
    assert {line.split()[0]: line.split()[1] for line in lines[1:7]} == {
        name: "pass"
        for name in (
            "database.default:responseTime",
            "database.postgres:responseTime",
            "database.mariadb:responseTime",
            "cache.default:responseTime",
            "migrations",
            "celery:workers",
        )
    }
    assert lines[-1] == "pass (6 checks)"

    code, out = manage({**env, "HM_DJ_MARIADB_PORT": str(free_port())}, "health", "--json")
    assert code == 1
    doc = orjson.loads(out)
    assert doc["status"] == "fail"
    assert doc["serviceId"] == "django-test"
    assert statuses(doc)["database.mariadb:responseTime"] == "fail"
    assert statuses(doc)["database.postgres:responseTime"] == "pass"

    code, out = manage(env, "health", "--bogus")
    assert code == 1
    assert "usage:" in out


def settings_env(tmp_path: Path, setting: str) -> dict[str, str]:
    """The environment of a project whose settings are the tests' with
    ``HEALTH_MIDDLEWARE = setting``."""
    (tmp_path / "variant_settings.py").write_text(
        f"from {SETTINGS} import *\nHEALTH_MIDDLEWARE = {setting}\n"
    )
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{tmp_path}",
        "DJANGO_SETTINGS_MODULE": "variant_settings",
    }


def test_a_mistake_in_the_setting_is_refused_at_start_up(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, MANAGE, "health"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=settings_env(tmp_path, "{'databse': True}"),
        check=False,
    )
    assert result.returncode == 1
    assert "HEALTH_MIDDLEWARE: unknown keys ['databse']" in result.stderr


ONLY_CELERY = "{'databases': False, 'caches': False, 'migrations': False, " + (
    "'celery': 'tests.apps.django_project.celery_app:app'"
)


@pytest.mark.parametrize(("critical", "code", "whole"), [(None, 0, "warn"), (True, 1, "fail")])
def test_celery_workers_down_warn_unless_made_critical(
    tmp_path: Path, critical: bool | None, code: int, whole: str
) -> None:
    """Celery's workers down (its broker refuses) leave the web pods ready by default:
    they serve without them. ``celery_critical: True`` makes the check fail the whole."""
    setting = ONLY_CELERY + ("}" if critical is None else f", 'celery_critical': {critical}}}")
    env = settings_env(tmp_path, setting)
    env["HM_DJ_BROKER"] = f"redis://127.0.0.1:{free_port()}/12"  # nothing listens there
    found, out = manage(env, "health", "--json")
    doc = orjson.loads(out)
    assert statuses(doc) == {"celery:workers": "fail"}
    assert (found, doc["status"]) == (code, whole)


def test_manage_py_health_shows_failure_messages_with_errors(tmp_path: Path) -> None:
    setting = (
        "{'health': 'tests.apps.checkable:explained', 'databases': False, 'caches': False,"
        " 'migrations': False, 'celery': False}"
    )
    env = settings_env(tmp_path, setting)
    code, out = manage(env, "health")
    assert code == 1
    assert "is it running?" not in out
    code, out = manage(env, "health", "--errors")
    assert code == 1
    assert "connection to db.internal:5432 refused: is it running?" in out


def test_manage_py_health_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    only_hanging = (
        "{'health': 'tests.apps.checkable:hanging', 'databases': False, 'caches': False,"
        " 'migrations': False, 'celery': False}"
    )
    process = subprocess.Popen(
        [sys.executable, MANAGE, "health"],
        cwd=REPO,
        env=settings_env(tmp_path, only_hanging),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # Django is set up and the check hangs on its thread
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_the_wsgi_helper_answers_health_before_django(project: dict[str, Any]) -> None:
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client

    from health_middleware.django import wsgi

    application = wsgi(get_wsgi_application())
    assert application.health is project_health()
    client = Client(application)
    assert client.get("/").get_data() == b"django project"
    # Answered by the middleware (the project's Health was stopped by the ASGI test
    # above, so it answers as stopped: what matters here is who answers).
    response = client.get("/health")
    assert response.headers["Content-Type"] == "application/health+json"
    assert orjson.loads(response.get_data())["serviceId"] == "django-test"
    project_health().stop()  # run alone, the request started the refresher


def test_runs_of_the_cache_check_at_once_never_read_each_others_value(
    project: dict[str, Any],
) -> None:
    """A deploy gate's run_once beside the server's refresher runs the same check at
    the same time: each run writes and reads a key of its own."""
    from health_middleware.django import checks

    check = checks.cache("default")
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: check(), range(64)))
    assert {result.status for result in results} == {"pass"}

"""Checks built on Django's own machinery: a database alias's connection, a cache
alias, the migration plan, the default storage. Each is a sync check (run on the
refresher's threads) that closes what it opened before it returns, so nothing leaks
from the check's thread: Django's connections and caches are per thread, and no
request cycle ever closes them there."""

from __future__ import annotations

import secrets
import time
from typing import Literal

from health_middleware.checks._common import Check, ms, typed
from health_middleware.model.result import CheckResult

MIGRATIONS_SHOWN = 5  # unapplied migrations named in the output


def database(alias: str) -> Check:
    """A round trip (``SELECT 1``) through Django's connection for ``alias``, closed
    after each run: ``responseTime`` in ms. The connection's own settings
    (``OPTIONS``: ``connect_timeout`` and the like) bound the run's I/O."""

    def check() -> CheckResult:
        from django.db import connections

        connection = connections[alias]
        started = time.perf_counter()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM DUAL" if connection.vendor == "oracle" else "SELECT 1"
                )
                cursor.fetchone()
        finally:
            connection.close()
        return CheckResult(observed_value=ms(started), observed_unit="ms")

    return typed(check, "datastore")


def cache(alias: str) -> Check:
    """A set, get and delete of a private key in the cache ``alias`` (a value read
    back other than the one written fails), then the cache closed, as at the end of a
    request: ``responseTime`` in ms."""

    def check() -> CheckResult:
        from django.core.cache import caches

        store = caches[alias]
        # A key of its own for every run: two runs at once (a deploy gate's run_once
        # beside the server's) never read each other's value.
        key = f"health_middleware:{secrets.token_hex(8)}"
        value = secrets.token_hex(8)
        started = time.perf_counter()
        try:
            store.set(key, value, timeout=30)
            try:
                read = store.get(key)
            finally:
                store.delete(key)  # removed even when the read fails
        finally:
            store.close()
        if read != value:
            return CheckResult("fail", output="the cache did not return the value just set")
        return CheckResult(observed_value=ms(started), observed_unit="ms")

    return typed(check, "datastore")


def migrations(alias: str, status: Literal["warn", "fail"] = "warn") -> Check:
    """The migrations not yet applied to database ``alias``, as ``migrate`` would
    apply them: ``status`` (warn by default) when there are any, naming the first few;
    the observed value is how many."""

    def check() -> CheckResult:
        from django.db import connections
        from django.db.migrations.executor import MigrationExecutor

        connection = connections[alias]
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        finally:
            connection.close()
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
        if not names:
            return CheckResult(observed_value=0, observed_unit="migrations")
        shown = ", ".join(names[:MIGRATIONS_SHOWN]) + (", ..." if len(names) > 5 else "")
        return CheckResult(
            status,
            observed_value=len(names),
            observed_unit="migrations",
            output=f"{len(names)} unapplied: {shown}",
        )

    return typed(check, "component")


def storage() -> Check:
    """Save, read back and delete a small file in Django's default storage:
    ``responseTime`` in ms."""

    def check() -> CheckResult:
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage

        content = secrets.token_hex(8).encode()
        started = time.perf_counter()
        # At the storage's root: a folder of ours would be left behind in MEDIA_ROOT.
        name = default_storage.save(
            f"health_middleware-{secrets.token_hex(8)}.txt", ContentFile(content)
        )
        try:
            with default_storage.open(name) as stored:
                read = stored.read()
        finally:
            default_storage.delete(name)
        if read != content:
            return CheckResult("fail", output="the storage did not return the file just saved")
        return CheckResult(observed_value=ms(started), observed_unit="ms")

    return typed(check, "datastore")

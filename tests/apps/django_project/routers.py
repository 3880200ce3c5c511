"""Migrations go to the default (SQLite) database only: the PostgreSQL and MariaDB
aliases are the shared ``test`` databases, checked for reachability, never migrated."""

from __future__ import annotations

from typing import Any


class DefaultOnly:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"

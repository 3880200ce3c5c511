"""Objects named by ``module:attribute`` strings, imported with errors that name what
was tried (the one-liners' app and Health, Django's setting, the ``check`` command)."""

from __future__ import annotations

import importlib
from typing import Any


def import_string(target: str, what: str) -> Any:
    """The object named by ``module:attribute`` (the attribute may be dotted)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} {target!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ImportError(f"{what} {target!r}: no module named {exc.name!r}") from exc
        raise  # the module exists but something it imports does not: show that
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AttributeError(
                f"{what} {target!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return found

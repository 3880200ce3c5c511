"""Run ``async def`` tests on a fresh event loop each, without a plugin; the built
distributions, once per session."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from tests.venvs import Distributions, build


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout=60))
    return True


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The sdist and wheel of this checkout, built once for the tests that install them."""
    return build(tmp_path_factory.mktemp("distributions"))

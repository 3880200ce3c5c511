"""The oldest versions pyproject.toml allows, tested. ``tests/constraints/minimum.txt``
pins every floor (the dependencies', each extra's, and the test extra's frameworks and
servers); a fresh virtual environment gets the built wheel with every extra but
``bench`` under those pins, and the tests of the integrations run in it: Django, the
frameworks in process, the server matrix, the checks against the real services,
WSGI through werkzeug and waitress, OpenTelemetry, Prometheus and the demo.

Left out of that run, for time: the checks' black-hole and thousand-run tests (each
several seconds of waiting out timeouts) and the rest of the suite, which tests the
middleware's own behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.support import REPO
from tests.venvs import PROJECT, Distributions, installed, make_venv, pip_install

CONSTRAINTS = REPO / "tests" / "constraints" / "minimum.txt"
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
# The benchmark's peers and servers (newest is what it measures) and the documentation's
# build tools: not runtime claims.
NOT_CLAIMS = {"bench", "docs"}

SUBSET = [
    "tests/test_django.py",  # first: Django's settings are made once per process
    "tests/test_frameworks.py",
    "tests/test_framework_idioms.py",
    "tests/test_server_matrix.py::test_server_cell",
    "tests/test_checks.py",
    "tests/test_checks_more.py",
    "tests/test_wsgi.py",
    "tests/test_telemetry.py",
    "tests/test_formats.py::test_openmetrics_parsed_by_prometheus_client",
    "tests/test_cli.py::test_demo_serves_prints_urls_and_stops_cleanly_on_ctrl_c",
]
LEFT_OUT = "not black_hole and not thousand_runs"
DESELECTED = [
    # gunicorn's own ASGI worker (-k asgi) came in gunicorn 24; the gunicorn page says so.
    "tests/test_server_matrix.py::test_server_cell[gunicorn-fastapi-hook-asgi-worker]",
]


def pins() -> dict[NormalizedName, Version]:
    found: dict[NormalizedName, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            name, version = pin.split("==")
            found[canonicalize_name(name)] = Version(version)
    return found


def floor(requirement: Requirement) -> Version:
    (lowest,) = (Version(s.version) for s in requirement.specifier if s.operator == ">=")
    return lowest


def test_every_floor_is_pinned_exactly() -> None:
    """Each requirement of the dependencies and of every extra that is a claim is
    pinned at its floor; a pinned requirement of the test extra too."""
    pinned = pins()
    claims = [*PROJECT["dependencies"]]
    claims += [r for extra, rs in EXTRAS.items() if extra not in NOT_CLAIMS | {"test"} for r in rs]
    for text in claims:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, (
            f"{text}: pin {requirement.name}=={floor(requirement)} in {CONSTRAINTS}"
        )
        assert pinned[name] == floor(requirement), f"{text}, but {CONSTRAINTS} pins {pinned[name]}"
    for text in EXTRAS["test"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in pinned:
            assert pinned[name] == floor(requirement), (
                f"{text}, but {CONSTRAINTS} pins {pinned[name]}"
            )


@pytest.mark.minimum
@pytest.mark.server
def test_the_integrations_pass_on_the_oldest_versions_allowed(
    distributions: Distributions, tmp_path: Path
) -> None:
    venv = make_venv(sys.executable, tmp_path / "venv")
    extras = ",".join(sorted(set(EXTRAS) - NOT_CLAIMS))
    pip_install(venv, f"{distributions.wheel}[{extras}]", constraints=CONSTRAINTS)
    versions = installed(venv)
    wrong = {name: versions.get(name) for name, pin in pins().items() if versions.get(name) != pin}
    assert not wrong, f"installed other than pinned: {wrong}"

    command = [str(venv), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not slow"]
    command += ["-k", LEFT_OUT, *SUBSET, *(f"--deselect={node}" for node in DESELECTED)]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    done = subprocess.run(
        command,
        cwd=REPO,  # the checkout's code and tests, on the environment's packages
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert "skipped" not in summary, done.stdout[-5000:]  # Django's, were its settings made

"""The package as a user gets it. ``python -m build`` makes an sdist and a wheel that pass
``twine check --strict`` and ``check-wheel-contents``; the sdist is the source (the
tests with their data, the benchmarks, the documentation with every file its pages
include or show; no bytecode); the wheel holds every subpackage and ``py.typed``, no
tests or docs, and the version ``__version__`` says; installed with its
``demo`` extra into a fresh virtual environment of every Python the classifiers name,
outside this checkout, it serves the demo's health request. The metadata's classifiers
are known to PyPI, its license is the LICENSE file, and it names the project's pages."""

from __future__ import annotations

import re
import signal
import sys
import tarfile
import time
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from trove_classifiers import classifiers as known_classifiers

import health_middleware
from tests.support import REPO, require_or_skip, server
from tests.venvs import PROJECT, Distributions, interpreter, make_venv, pip_install, run

PACKAGE = REPO / "health_middleware"
DOCS = REPO / "docs"
# What a packager or a user building from source needs besides the package (MANIFEST.in).
SOURCE_FILES = [
    "PKG-INFO",
    "pyproject.toml",
    "setup.cfg",
    "MANIFEST.in",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "SECURITY.md",
    "CONTRIBUTING.md",
    "mkdocs.yml",
    ".readthedocs.yaml",
    ".ci/run",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/support.py",
    "tests/constraints/minimum.txt",
    "tests/apps/django_project/manage.py",
    "benchmarks/RESULTS.md",
    "benchmarks/run.py",
    "docs/index.md",
    "docs/architecture.md",
    "docs/hooks.py",
    "docs/stylesheets/extra.css",
    "docs/examples/fastapi_app.py",
    "docs/deploy/kubernetes.yaml",
]
# Markdown links and snippet includes of the site's pages: the files the build reads.
LINKED = re.compile(r"\]\(([^)\s#]+)[^)]*\)")
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)
PYTHONS = [
    name.rsplit(" :: ", 1)[1]
    for name in PROJECT["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", name)
]


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The wheel's file names, and its METADATA's fields (each with all its values)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        message = HeaderParser().parsestr(archive.read(metadata).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return names, fields


def test_every_classifier_is_one_pypi_knows() -> None:
    unknown = [name for name in PROJECT["classifiers"] if name not in known_classifiers]
    assert not unknown, f"not trove classifiers (PyPI refuses the upload): {unknown}"
    assert "3.11" in PYTHONS  # requires-python's oldest


def test_the_version_has_one_source() -> None:
    """The metadata reads ``health_middleware.__version__``; nothing else states it."""
    assert "version" not in PROJECT
    assert PROJECT["dynamic"] == ["version"]
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": "health_middleware.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", health_middleware.__version__)


def test_the_license_and_the_project_pages() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    urls = PROJECT["urls"]
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") and "pypi.org" not in url for url in urls.values())
    assert urls["Changelog"].endswith("/CHANGELOG.md")


@pytest.mark.parametrize("check", ["twine", "check-wheel-contents"])
@pytest.mark.package
@pytest.mark.server
def test_the_distributions_pass_the_index_checks(distributions: Distributions, check: str) -> None:
    sdist, wheel = str(distributions.sdist), str(distributions.wheel)
    if check == "twine":
        run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel], 120)
    else:
        run([sys.executable, "-m", "check_wheel_contents", wheel], 120)


@pytest.mark.package
@pytest.mark.server
def test_the_wheel_holds_the_whole_package_and_no_tests(distributions: Distributions) -> None:
    names, fields = wheel_metadata(distributions.wheel)
    modules = {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    subpackages = {m for m in modules if m.endswith("/__init__.py")}
    assert len(subpackages) > 1
    assert modules <= set(names), f"missing from the wheel: {sorted(modules - set(names))}"
    assert "health_middleware/py.typed" in names
    assert {n.split("/")[0] for n in names} == {
        "health_middleware",
        f"health_middleware-{health_middleware.__version__}.dist-info",
    }
    assert not [n for n in names if n.startswith(("tests", "docs/", "benchmarks/"))]
    assert not [n for n in names if "tests/" in n]
    assert fields["Version"] == [health_middleware.__version__]
    assert fields["License-Expression"] == ["MIT"]
    assert fields["Classifier"] == PROJECT["classifiers"]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def sdist_files(sdist: Path) -> set[str]:
    """The sdist's regular files, by their path under its top folder."""
    root = f"health_middleware-{health_middleware.__version__}/"
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
    assert all(m.name.startswith(root) or m.name == root.rstrip("/") for m in members)
    return {m.name.removeprefix(root) for m in members if m.isfile()}


def read_by_the_site() -> set[str]:
    """The files of the checkout the documentation's pages include or link to (by their
    path from the top): what ``mkdocs build --strict`` needs besides the pages."""
    needed: set[str] = set()
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        for target in LINKED.findall(text):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                needed.add((page.parent / target).resolve().relative_to(REPO).as_posix())
        needed |= {f"docs/{name}" for name in SNIPPET.findall(text)}
        needed |= set(re.findall(r"^!include (\S+)", text, re.M))
    return needed


@pytest.mark.package
@pytest.mark.server
def test_the_sdist_is_the_source_to_build_test_and_document_from(
    distributions: Distributions,
) -> None:
    files = sdist_files(distributions.sdist)
    missing = [name for name in SOURCE_FILES if name not in files]
    assert not missing, f"missing from the sdist (MANIFEST.in): {missing}"
    sources = {
        path.relative_to(REPO).as_posix()
        for folder in ("health_middleware", "tests", "benchmarks", "docs")
        for path in (REPO / folder).rglob("*")
        if path.suffix in (".py", ".md", ".yaml", ".txt") and "__pycache__" not in path.parts
    }
    assert sources <= files, f"missing from the sdist: {sorted(sources - files)}"
    site = read_by_the_site()
    assert {"CHANGELOG.md", "docs/architecture.md", "docs/status-page/fail.png"} <= site
    assert site <= files, f"the site needs, missing from the sdist: {sorted(site - files)}"
    # No bytecode, environments or build outputs; only setuptools' own egg-info.
    assert not [n for n in files if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    top = {n.split("/")[0] for n in files if "/" in n}
    assert not top & {".venv", "build", "dist", "site", ".hypothesis", ".pytest_cache"}
    assert {n for n in top if n.endswith(".egg-info")} <= {"health_middleware.egg-info"}
    # The site's own screenshots stay out (no page shows them): read_by_the_site holds it.
    assert not [n for n in files if n.startswith("docs/screenshots/")]


@pytest.mark.parametrize("version", PYTHONS)
@pytest.mark.package
@pytest.mark.server
def test_the_installed_wheel_serves_the_demo(
    distributions: Distributions, version: str, tmp_path: Path
) -> None:
    python = interpreter(version)
    if python is None:
        require_or_skip(
            f"no Python {version} here (the classifiers name it): install it, or drop "
            "its classifier from pyproject.toml"
        )
        return
    venv = make_venv(python, tmp_path / "venv")
    pip_install(venv, f"{distributions.wheel}[demo]")
    outside = tmp_path / "elsewhere"  # not the checkout: only the installed wheel imports
    outside.mkdir()
    where = run([str(venv), "-c", "import health_middleware as h; print(h.__file__)"], 60, outside)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where.stdout
    args = ["health_middleware", "demo", "--port", "{port}"]
    with server(args, python=str(venv), outside=outside) as running:
        deadline = time.monotonic() + 30
        while (ready := running.get("/health/ready")).status != 200:
            assert time.monotonic() < deadline, f"{ready}\n{running.output()}"
            time.sleep(0.1)
        assert ready.json()["status"] == "pass"
        assert running.get("/health").json()["checks"].keys() == {
            "sqlite:responseTime",
            "disk:utilization",
        }
    # A clean stop: uvicorn re-raises the SIGTERM it handled, once it has shut down.
    assert running.exit_code in (0, -signal.SIGTERM), running.output()
    assert "Traceback" not in running.output()

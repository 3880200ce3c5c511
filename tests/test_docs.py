"""The documentation site: ``mkdocs build --strict`` passes (a broken link, anchor,
include or API reference fails it), no page but the architecture page and the
changelog names an internal module, the README stays a short front door whose
examples are the site's own files, and every complete program on the site (the files
in docs/examples/, which the pages include) and every server command on the server
pages runs as a real server that answers its health probes."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import (
    PUBLIC_MODULES,
    REPO,
    Server,
    answer,
    chromium,
    free_port,
    get,
    grpc_check,
    server,
    service,
)

DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
SITE_URL = "https://health-middleware.readthedocs.io/en/latest/"
# Pages that may name internal modules: the architecture page and the changelog (history).
INTERNALS_ALLOWED = ("reference/architecture/", "reference/changelog/")
SERVING = 1  # grpc.health.v1.HealthCheckResponse.SERVING


def pages() -> dict[str, str]:
    """Every Markdown page of the site, by its path under docs/."""
    return {
        str(path.relative_to(DOCS)): path.read_text()
        for path in sorted(DOCS.rglob("*.md"))
        if path.name not in ("architecture.md",) or path.parent != DOCS
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``mkdocs build --strict``."""
    target = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return target


def test_the_site_builds_with_every_page_and_the_api_reference(site: Path) -> None:
    for page in ("index.html", "getting-started/index.html", "reference/api/index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference/api/index.html").read_text()
    for name in ("Health", "CheckResult", "HealthMiddleware", "WSGIHealthMiddleware"):
        assert f'id="health_middleware.{name}"' in api, name
    for name in ("checks.postgres", "formats.Envelope", "grpc.HealthServicer", "serve.asgi"):
        assert f'id="health_middleware.{name}"' in api, name
    # The included documents are there, not copies: a line of each source shows.
    architecture = (site / "reference/architecture/index.html").read_text()
    assert "The layers" in architecture
    changelog = (site / "reference/changelog/index.html").read_text()
    assert "Unreleased" in changelog


def internal_modules() -> set[str]:
    """The package's modules that are not public, dotted under ``health_middleware``."""
    package = REPO / "health_middleware"
    names = {
        ".".join(path.relative_to(package).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
    }
    return {name for name in names if name.split(".")[0] not in PUBLIC_MODULES or "." in name} - {
        "__init__",
        "__main__",
        *PUBLIC_MODULES,
    }


# A tooltip: the API reference's tables give each type name the path it is defined
# at (``model.report.Report``, a TypeVar of ``health``) as a ``title``. What a page
# says, links to and anchors must not name an internal module; a tooltip may.
TITLE = re.compile(r'\stitle="[^"]*"')


def test_no_page_names_an_internal_module(site: Path) -> None:
    internal = internal_modules()
    assert {"engine.registry", "formats.ietf", "checks.datastores"} <= internal
    pattern = re.compile(r"health_middleware\.(" + "|".join(sorted(internal)) + r")\b")
    named = {
        f"{page.relative_to(site)}: {match.group(0)}"
        for page in site.rglob("*.html")
        if not str(page.relative_to(site)).startswith(INTERNALS_ALLOWED)
        for match in pattern.finditer(TITLE.sub("", page.read_text()))
    }
    assert not named, sorted(named)


SHOTS = {"home": "", "framework": "frameworks/fastapi/", "api-reference": "reference/api/"}


@pytest.mark.server
def test_what_a_person_sees_in_chromium(site: Path) -> None:
    """Chromium opens the built site served on 127.0.0.1: the home page, a framework page
    and the API reference lay out with their navigation and content. Screenshots of
    each go to docs/screenshots/ when HEALTH_MIDDLEWARE_SCREENSHOTS=1."""
    keep = os.environ.get("HEALTH_MIDDLEWARE_SCREENSHOTS") == "1"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{httpd.server_address[1]}/"
            seen = {
                name: chromium("--dump-dom", base + page).stdout for name, page in SHOTS.items()
            }
            if keep:
                for name, page in SHOTS.items():
                    shot = DOCS / "screenshots" / f"{name}.png"
                    chromium(f"--screenshot={shot}", "--window-size=1440,1100", base + page)
                    assert shot.stat().st_size > 10_000
        finally:
            httpd.shutdown()
            thread.join(5)
    for name, dom in seen.items():
        assert "Getting started" in dom, name  # the navigation
    assert "Where to go next" in seen["home"]
    assert "app.add_middleware(HealthMiddleware" in re.sub(r"<[^>]+>", "", seen["framework"])
    assert 'id="health_middleware.Health.add_check"' in seen["api-reference"]


def fenced(text: str) -> list[str]:
    """The contents of the fenced code blocks of a Markdown text."""
    return [block for _, block in re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def test_the_readme_is_a_front_door_whose_examples_are_the_sites(site: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    blocks = fenced(readme)
    # The two complete examples are the files the tests below run, word for word.
    for example in ("asgi_app.py", "wsgi_app.py"):
        assert (EXAMPLES / example).read_text() in blocks, example
    # CI runs the README's test command verbatim (.ci/run).
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert any(ci in block for block in blocks)
    # Each link into the site names a page it has (and an anchor that page has).
    links = re.findall(re.escape(SITE_URL) + r"([\w/.-]*)(#[\w-]+)?", readme)
    assert len(links) >= 10
    for page, anchor in links:
        built = site / page / "index.html"
        assert built.is_file(), page
        if anchor:
            assert f'id="{anchor[1:]}"' in built.read_text(), page + anchor


@dataclass(frozen=True)
class Example:
    """How a program of docs/examples/ runs: ``python -m`` ``args`` with
    ``pythonpath`` first on the path (the folder a user would run it in); ``port``:
    the port its source names, replaced by a free one in a copy of the file."""

    args: tuple[str, ...]
    pythonpath: Path = EXAMPLES
    port: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    needs: tuple[str, int] | None = None


UVICORN = ("--host", "127.0.0.1", "--port", "{port}")
BIND = ("--bind", "127.0.0.1:{port}")
DJANGO = EXAMPLES / "django_site"
EXAMPLE_PROGRAMS = {
    "asgi_app.py": Example(("uvicorn", "asgi_app:app", *UVICORN)),
    "wsgi_app.py": Example(("gunicorn", "wsgi_app:application", *BIND)),
    "fastapi_app.py": Example(("uvicorn", "fastapi_app:app", *UVICORN)),
    "starlette_app.py": Example(("uvicorn", "starlette_app:app", *UVICORN)),
    "flask_app.py": Example(("gunicorn", "flask_app:app", *BIND)),
    "quart_app.py": Example(("hypercorn", "quart_app:app", *BIND)),
    "litestar_app.py": Example(("uvicorn", "litestar_app:app", *UVICORN)),
    "django_site/mysite/asgi.py": Example(
        ("uvicorn", "mysite.asgi:application", *UVICORN), pythonpath=DJANGO
    ),
    "django_site/mysite/wsgi.py": Example(
        ("gunicorn", "mysite.wsgi:application", *BIND), pythonpath=DJANGO
    ),
    "gunicorn.conf.py": Example(
        ("gunicorn", "-c", str(EXAMPLES / "gunicorn.conf.py"), "hello_wsgi:application", *BIND),
        env=(("HEALTH_MIDDLEWARE_HEALTH", "health_checks:health"),),
    ),
    "consumer.py": Example(("consumer",), port="8081"),
    "grpc_server.py": Example(("grpc_server",), port="50051"),
    "celery_worker.py": Example(
        ("celery", "-A", "celery_worker", "worker", "--pool=solo", "--loglevel=WARNING"),
        port="8081",
        needs=("Redis", 6379),
    ),
}
# Files that are parts of the programs above rather than programs of their own.
PARTS = {
    "django_site/mysite/__init__.py",
    "django_site/mysite/settings.py",
    "django_site/mysite/urls.py",
    "hello_asgi.py",
    "hello_wsgi.py",
    "health_checks.py",
}
# One command from each server's page, run as written, in docs/examples/, with the
# address added at its end.
COMMANDS = {
    "servers/uvicorn.md": (
        "HEALTH_MIDDLEWARE_APP=hello_asgi:app HEALTH_MIDDLEWARE_HEALTH=health_checks:health "
        "uvicorn health_middleware.serve:asgi --factory",
        UVICORN,
    ),
    "servers/gunicorn.md": (
        "HEALTH_MIDDLEWARE_HEALTH=health_checks:health "
        "gunicorn 'health_middleware.serve:wsgi(\"hello_wsgi:application\")'",
        BIND,
    ),
    "servers/hypercorn.md": (
        "HEALTH_MIDDLEWARE_HEALTH=health_checks:health "
        'hypercorn \'health_middleware.serve:asgi("hello_asgi", "app")\'',
        BIND,
    ),
    "servers/granian.md": (
        "HEALTH_MIDDLEWARE_APP=hello_wsgi:application "
        "HEALTH_MIDDLEWARE_HEALTH=health_checks:health "
        "granian --interface wsgi --factory health_middleware.serve:wsgi",
        UVICORN,
    ),
}


def test_every_example_is_run_and_shown_on_a_page() -> None:
    files = {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert files == set(EXAMPLE_PROGRAMS) | PARTS
    text = "\n".join(pages().values())
    shown = {name for name in files if f"examples/{name}" in text}
    assert shown == files - {"django_site/mysite/__init__.py"}
    for page, (command, _) in COMMANDS.items():
        assert command in pages()[page], page


def _ready(port: int, running: Server) -> None:
    """Wait for the first round of checks on ``port``, then check the probes' answers."""
    deadline = time.monotonic() + 20
    while (ready := get(port, "/health/ready")).status != 200:
        assert time.monotonic() < deadline, (ready, running.output())
        time.sleep(0.1)
    assert ready.json() == {"status": "pass"}
    assert get(port, "/health/live").status == 200
    report = get(port, "/health")
    assert report.status == 200
    assert report.json()["status"] in ("pass", "warn")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty folder to run in (the examples write their SQLite files there)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def _environment(*folders: Path) -> dict[str, str]:
    """``folders``, then this checkout, on the path; no bytecode left in docs/."""
    path = os.pathsep.join(str(folder) for folder in (*folders, REPO))
    return {"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.server
@pytest.mark.parametrize("name", sorted(EXAMPLE_PROGRAMS))
def test_each_example_serves_its_health_endpoints(name: str, workdir: Path) -> None:
    example = EXAMPLE_PROGRAMS[name]
    if example.needs:
        service(*example.needs)
    folders = [example.pythonpath]
    port: int | None = None
    if example.port:  # run a copy that names a free port instead
        source = (EXAMPLES / name).read_text()
        assert example.port in source, f"{name} should name port {example.port}"
        port = free_port()
        copy = workdir / "program"
        copy.mkdir()
        (copy / name).write_text(source.replace(example.port, str(port)))
        folders.insert(0, copy)
    env = {**_environment(*folders), **dict(example.env)}
    grpc = name == "grpc_server.py"

    def answers(chosen: int) -> bool:
        target = port or chosen
        if grpc:
            return grpc_check(target) == SERVING
        return answer(target, "/health/live") is not None

    with server(list(example.args), env, ready=answers, outside=workdir) as running:
        if grpc:
            assert grpc_check(running.port if port is None else port, "liveness") == SERVING
        else:
            _ready(port or running.port, running)
    if grpc:  # on SIGTERM it drained, waited and stopped the server and the refresher
        assert running.exit_code == 0, running.output()


@pytest.mark.server
@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_each_server_page_command_runs_as_written(page: str, workdir: Path) -> None:
    command, address = COMMANDS[page]
    words = shlex.split(command)
    env = _environment(EXAMPLES)
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    with server([*words, *address], env, outside=workdir) as running:
        _ready(running.port, running)
        assert running.get("/").body == b"Hello\n"


def test_the_benchmark_writes_its_tables_into_the_benchmarks_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m benchmarks.run`` after a full run: RESULTS.md, and the tables from
    "End to end" on between the markers of docs/benchmarks.md, the page around them kept."""
    from benchmarks import run

    page = (DOCS / "benchmarks.md").read_text()
    assert page.count(run.START) == page.count(run.END) == 1
    copy, results = tmp_path / "benchmarks.md", tmp_path / "RESULTS.md"
    copy.write_text(page)
    monkeypatch.setattr(run, "PAGE", copy)
    monkeypatch.setattr(run, "RESULTS", results)
    lines = ["## In process", "", "| a |", "", "## End to end (wrk)", "", "| b |", "## Targets"]
    run.write(lines, "python -m benchmarks.run", 1.0, full=True)
    written = copy.read_text()
    before, rest = written.split(run.START)
    inside, after = rest.split(run.END)
    assert before == page.split(run.START)[0]
    assert after == page.split(run.END)[1]
    assert "### End to end (wrk)\n\n| b |\n### Targets\n" in inside
    assert "In process" not in inside
    assert "## In process" in results.read_text()

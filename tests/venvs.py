"""The package as a user installs it: the sdist and wheel built from this checkout, and
fresh virtual environments to install them in (tests/test_package.py,
tests/test_minimum_versions.py; the built distributions are conftest's session fixture
``distributions``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.support import REPO

PROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path


def run(
    command: list[str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end; a failure fails the test with all it printed."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def build(dest: Path) -> Distributions:
    """``python -m build`` (the sdist, then the wheel from the sdist) on a copy of the
    files git would commit from this checkout: the checkout gets no egg-info, and
    nothing ignored (a .venv, caches) can reach the distributions."""
    source = dest / "source"
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60, cwd=REPO
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():  # a tracked file deleted here stays out, as in a commit
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = dest / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], 600)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Distributions(sdist, wheel)


def make_venv(python: str, dest: Path) -> Path:
    """A fresh virtual environment of ``python`` (no system site-packages): its python."""
    run([python, "-m", "venv", str(dest)], 300)
    return dest / "bin" / "python"


def pip_install(venv_python: Path, *requirements: str, constraints: Path | None = None) -> None:
    """pip install into the environment (no bytecode compiled ahead: imports do that)."""
    command = [str(venv_python), "-m", "pip", "install", "--quiet", "--no-compile", "--no-input"]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    run([*command, *requirements], 900)


def installed(venv_python: Path) -> dict[NormalizedName, Version]:
    """The distributions installed in the environment, by normalised name."""
    listed = run([str(venv_python), "-m", "pip", "list", "--format", "json"], 120).stdout
    return {canonicalize_name(d["name"]): Version(d["version"]) for d in json.loads(listed)}


def interpreter(version: str) -> str | None:
    """A CPython ``version`` ("3.12") to make environments with: the one running the
    tests, else ``python3.12`` on PATH, else pyenv's; None where there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}")]
    candidates += [str(p) for p in sorted(root.glob(f"versions/{version}.*/bin/python{version}"))]
    probe = f"import sys, venv; sys.exit('%d.%d' % sys.version_info[:2] != {version!r})"
    for candidate in filter(None, candidates):
        answer = subprocess.run(
            [candidate, "-c", probe], capture_output=True, timeout=60, check=False
        )
        if answer.returncode == 0:  # a pyenv shim of a version not selected fails here
            return candidate
    return None

"""The self-description at ``/health/info``: which code is running where.

Each field comes from the argument given, else from an environment variable (the
usual CI and platform ones for the revision), else, for ``repo`` and ``revision``,
from the git checkout in the working directory, read once per process on the first
render (on the refresher, never on a request). ``language`` is opt-in: it tells an
attacker which interpreter to target.
"""

from __future__ import annotations

import configparser
import os
import platform
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from health_middleware.config.validation import safe_text
from health_middleware.formats.base import Rendered
from health_middleware.formats.timefmt import iso_utc
from health_middleware.model.report import Report, Service

# First found wins; HEALTH_* are this package's own.
ENVIRONMENT_VARIABLES: dict[str, tuple[str, ...]] = {
    "repo": ("HEALTH_REPO", "GITHUB_REPOSITORY", "CI_PROJECT_PATH", "BITBUCKET_REPO_FULL_NAME"),
    "revision": (
        "HEALTH_REVISION",
        "GIT_COMMIT",
        "GITHUB_SHA",
        "CI_COMMIT_SHA",
        "SOURCE_VERSION",
        "COMMIT_SHA",
        "RENDER_GIT_COMMIT",
        "VERCEL_GIT_COMMIT_SHA",
        "HEROKU_SLUG_COMMIT",
    ),
    "build_type": ("HEALTH_BUILD_TYPE",),
    "build_date": ("HEALTH_BUILD_DATE", "BUILD_DATE"),
    "environment": ("HEALTH_ENVIRONMENT", "ENVIRONMENT", "APP_ENV", "DEPLOY_ENV"),
    "version": ("HEALTH_VERSION",),
}
_UNITS = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def human_duration(seconds: float) -> str:
    """``4 days``, ``1 hour``, ``12 seconds``: the largest whole unit."""
    for unit, size in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = max(0, int(seconds))
    return f"{count} second{'s' if count != 1 else ''}"


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
    return None


def _git_revision(git: Path) -> str | None:
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head[:12] or None
    ref = head[5:]
    loose = git / ref
    if loose.is_file():
        return loose.read_text().strip()[:12]
    packed = git / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    return None


def _git_repo(git: Path) -> str | None:
    config = configparser.ConfigParser(strict=False, interpolation=None)
    config.read(git / "config")
    url = config.get('remote "origin"', "url", fallback=None)
    return repository_name(url) if url else None


# user:password@ (or token@) in a URL or an scp-like address: credentials, never shown.
_USERINFO = re.compile(r"(?<![^/\s])([A-Za-z][A-Za-z0-9+.\-]*://)?[^\s/@]*@")
_SCP = re.compile(r"^[^\s/@:]+:(?!//)")  # host:path, once any user@ is gone


def repository_name(url: str) -> str | None:
    """The repository's path, without scheme, credentials, host or ``.git``:
    ``https://deploy:TOKEN@git.example.com/abc/api.git`` -> ``abc/api``;
    ``git@github.com:abc/api.git`` -> ``abc/api``; a local path -> its last part."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc:
        path = parts.path
    else:
        path = _SCP.sub("", _USERINFO.sub("", url), count=1).split("?")[0].split("#")[0]
    path = path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        return None
    name = "/".join(segments[-2:]) if len(segments) > 1 else segments[0]
    return _USERINFO.sub("", name) or None


def without_credentials(value: str) -> str:
    """``value`` with any ``user:password@`` of a URL in it removed."""
    return _USERINFO.sub(lambda match: match.group(1) or "", value)


def read_git(start: Path) -> dict[str, str]:
    """``repo`` and ``revision`` from a checkout's files, without running git."""
    git = _git_dir(start)
    if git is None:
        return {}
    found: dict[str, str] = {}
    try:
        revision, repo = _git_revision(git), _git_repo(git)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return {}
    if revision:
        found["revision"] = revision
    if repo:
        found["repo"] = repo
    return found


@dataclass(eq=False)
class Info:
    """What the info endpoint (``/health/info``) says: which code runs where.

    Pass it as ``Health(info=Info(...))``. Each field comes from its argument, else
    from an environment variable (the usual CI and platform ones; the Endpoints page
    lists them), else, for ``repo`` and ``revision``, from the git checkout in the
    working directory, read once per process (no ``git`` command is run). Fields
    with no value are left out; the answer is always HTTP 200.

    Attributes:
        repo: The repository, e.g. ``"acme/api"``; a URL is reduced to that.
        revision: The commit the code was built from.
        version: The version; ``None``: ``Health(version=...)``.
        build_type: How it was built, e.g. ``"docker"``.
        build_date: When it was built.
        environment: Where it runs, e.g. ``"production"``.
        language: Show the Python implementation and version (off by default: it
            tells an attacker which interpreter to target).
    """

    repo: str | None = None
    revision: str | None = None
    version: str | None = None
    build_type: str | None = None
    build_date: str | None = None
    environment: str | None = None
    language: bool = False
    _resolved: dict[str, str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ENVIRONMENT_VARIABLES:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Info({name}=...) must be a string")
        if not isinstance(self.language, bool):
            raise TypeError("Info(language=...) must be True or False")

    def fields(self, service: Service) -> dict[str, str]:
        """The fields the info endpoint shows, from the arguments, then the
        environment variables, then git; resolved once per process.

        Args:
            service: The ``Health``'s own fields (its ``version`` is the default).

        Returns:
            Each field that has a value, by name.
        """
        # No lock: two threads resolving at once compute the same thing, and a lock
        # held by another thread at a fork would hang the child.
        resolved = self._resolved
        if resolved is None:
            git = read_git(Path.cwd())
            resolved = {}
            for name, variables in ENVIRONMENT_VARIABLES.items():
                value = getattr(self, name)
                if value is None and name == "version":
                    value = service.version
                for variable in variables:
                    value = value or os.environ.get(variable) or None
                value = value or git.get(name)
                if value:
                    # Whatever the source, no credentials and only valid Unicode.
                    resolved[name] = without_credentials(safe_text(value))
            if "repo" in resolved:  # a path or nothing: never a raw URL's query
                repo = repository_name(resolved.pop("repo"))
                if repo:
                    resolved["repo"] = repo
            self._resolved = resolved
        return resolved

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The info endpoint's JSON, always with HTTP status 200 (the report's status
        plays no part). The arguments are ``Format.render``'s."""
        known = self.fields(service)
        uptime = max(0.0, now - service.started_at)
        doc: dict[str, Any] = {
            "repo": known.get("repo"),
            "revision": known.get("revision"),
            "version": known.get("version"),
            "deployed_at": iso_utc(service.started_at),
            "uptime": human_duration(uptime),
            "uptime_seconds": int(uptime),
            "build_type": known.get("build_type"),
            "build_date": known.get("build_date"),
            "environment": known.get("environment"),
        }
        if self.language:
            doc["language"] = f"{platform.python_implementation()} {platform.python_version()}"
        doc = {k: v for k, v in doc.items() if v is not None}
        return Rendered(200, "application/json", orjson.dumps(doc))

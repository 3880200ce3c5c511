"""The registry: what is registered. The checks, the endpoints and the pre-stop
endpoint. Validation happens here, as things are registered; the start-time refusal
of a group no check carries too. (What this process knows of each check's results is
``results``'; the callbacks are ``callbacks``'.)

Writes take a lock and replace whole dicts, so a reader on another thread (the
refresher under WSGI) iterates a registration-time copy.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterator, Mapping

from health_middleware.config.validation import StartError
from health_middleware.formats import Ietf, Info, Negotiate, resolve
from health_middleware.model.check import Check
from health_middleware.model.endpoint import (
    ALL,
    LIVE,
    READY,
    STARTED,
    Endpoint,
    normalise_path,
    status_code_map,
)
from health_middleware.model.report import Format, Service
from health_middleware.web.prestop import Prestop

logger = logging.getLogger("health_middleware")

# Words a user may write for a built-in group (tags are exact, lower-case words).
_WORDS_FOR = {
    "liveness": LIVE,
    "readiness": READY,
    "readyness": READY,
}


def _slip(tag: str, group: str) -> bool:
    """Whether ``tag`` is ``group`` typed with one slip of the hand: another case, two
    neighbours swapped, a letter left out inside the word, a letter doubled or one
    slipped in inside it. A word that differs at its ends (``read``, ``lives``,
    ``olive``, ``db2``, ``ddb``) or by a letter replaced (``reads``, ``line``) may be
    meant."""
    tag = tag.lower()
    if tag == group:
        return True
    if len(tag) == len(group):
        swapped = [i for i in range(len(tag)) if tag[i] != group[i]]
        return (
            len(swapped) == 2
            and swapped[1] == swapped[0] + 1
            and tag[swapped[0]] == group[swapped[1]]
            and tag[swapped[1]] == group[swapped[0]]
        )
    if abs(len(tag) - len(group)) != 1:
        return False
    longer, shorter = (tag, group) if len(tag) > len(group) else (group, tag)
    for i, letter in enumerate(longer):
        if longer[:i] + longer[i + 1 :] != shorter:
            continue
        first = i == 0 or longer[: i + 1] == letter * (i + 1)  # at the start (ddb)
        inside = not first and i < len(longer) - 1
        doubled = longer is tag and letter in (longer[i - 1 : i] + longer[i + 1 : i + 2])
        if inside or (doubled and not first):
            return True
    return False


class Registry:
    def __init__(self, *, service: Service, base_path: str, details_token: str | None) -> None:
        self.service = service
        self.base_path = base_path  # the full report's endpoint
        self.details_token = details_token
        self._checks: dict[str, Check] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self.prestop: Prestop | None = None
        # Set where a Health with no checks cannot be meant (one named by
        # HEALTH_MIDDLEWARE_HEALTH): its start is then refused, not warned of.
        self.checks_required: str | None = None
        self._lock = threading.Lock()

    # -- checks ----------------------------------------------------------------------

    def add_check(self, check: Check) -> None:
        with self._lock:
            if check.name in self._checks:
                raise ValueError(f"a check named {check.name!r} is already registered")
            self._checks = {**self._checks, check.name: check}
        if LIVE in check.tags and check.component_type == "datastore":
            logger.warning(
                "check %r is a datastore check tagged 'live': when the datastore is down, "
                "every replica fails liveness and is restarted at once (a restart storm "
                "that cannot fix the datastore); tag it 'ready' instead",
                check.name,
            )

    def checks(self) -> Iterator[Check]:
        """Every registered check (a registration-time copy)."""
        return iter(self._checks.values())

    def first_round_bound(self) -> float:
        """How long the first round can take: the longest timeout, plus a margin."""
        return max((check.timeout for check in self._checks.values()), default=0.0) + 1.0

    # -- endpoints -------------------------------------------------------------------

    def add_default_endpoints(self, format: str | Format, info: Info | None) -> str:
        """The full report at ``base_path``, the probes and the info endpoint below
        it; return the root other default paths go under."""
        if info is not None and not isinstance(info, Info):
            raise TypeError("info must be an Info(...) object")
        root = "" if self.base_path == "/" else self.base_path
        for path, group, chosen, details, drain in (
            (self.base_path, ALL, format, True, False),
            (root + "/live", LIVE, format, False, False),
            (root + "/ready", READY, format, False, True),
            (root + "/started", STARTED, format, False, False),
            (root + "/info", ALL, info or Info(), True, False),
        ):
            self.add_endpoint(
                path, group=group, format=chosen, details=details, status_codes=None, drain=drain
            )
        return root

    def add_endpoint(
        self,
        path: str,
        *,
        group: str,
        format: str | Format,
        details: bool,
        status_codes: Mapping[str, int] | None,
        drain: bool,
    ) -> None:
        chosen = resolve(format)  # an unknown format is refused now, not at a request
        ietf = isinstance(chosen, Ietf) or (
            isinstance(chosen, Negotiate)
            and any(isinstance(f, Ietf) for f in chosen.formats.values())
        )
        codes = status_code_map(status_codes, ietf=ietf)
        endpoint = Endpoint(normalise_path(path), group, chosen, details, codes, drain)
        with self._lock:
            if endpoint.path in self._endpoints or (
                self.prestop is not None and endpoint.path == self.prestop.path
            ):
                raise ValueError(f"an endpoint at {endpoint.path!r} already exists")
            self._endpoints = {**self._endpoints, endpoint.path: endpoint}

    def endpoints(self) -> Iterator[Endpoint]:
        return iter(self._endpoints.values())

    @property
    def full(self) -> Endpoint:
        """The full report's endpoint (``base_path``)."""
        return self._endpoints[self.base_path]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    def set_prestop(self, config: Prestop) -> None:
        with self._lock:
            if self.prestop is not None:
                raise ValueError(
                    f"the pre-stop endpoint is already served at {self.prestop.path!r}"
                )
            if config.path in self._endpoints:
                raise ValueError(f"an endpoint at {config.path!r} already exists")
            self.prestop = config

    def unknown_groups(self) -> list[str]:
        """What is wrong with each endpoint whose group is neither a built-in one nor
        a tag some check carries: it counts no check (and answers 503 saying so,
        ``model.endpoint.evaluate``). Asked at start, not when the endpoint is made:
        checks may be registered after it."""
        built_in = [ALL, LIVE, READY, STARTED]
        tags = {tag for check in self._checks.values() for tag in check.tags}
        known = built_in + sorted(tags - set(built_in))
        found = []
        for endpoint in self._endpoints.values():
            if endpoint.group in known:
                continue
            slips = [tag for tag in known if _slip(tag, endpoint.group)]
            close = slips or difflib.get_close_matches(endpoint.group, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(
                f"the endpoint {endpoint.path!r} counts group {endpoint.group!r}, which no "
                f"check carries as a tag{hint}: the known groups are {', '.join(known)}. "
                "Tag a check with it (tags={...}) or name a known group"
            )
        return found

    def misspelt(self, check: Check) -> str | None:
        """What is wrong with the first of ``check``'s tags that no endpoint counts but
        that reads as a group one does (``liev``, ``Ready``, ``liveness``): the check
        would count in no probe, its failures unseen by the probe meant. A tag near no
        served group is the user's own word, left alone (see ``_slip``)."""
        served = {endpoint.group for endpoint in self._endpoints.values()} - {ALL, STARTED}
        for tag in sorted(check.tags - served):
            meant = _WORDS_FOR.get(tag.lower())
            if meant not in served:
                meant = next((group for group in sorted(served) if _slip(tag, group)), None)
            if meant is not None:
                return (
                    f"check {check.name!r} carries tag {tag!r}, which no endpoint counts "
                    f"(did you mean {meant!r}?): the endpoints count "
                    f"{', '.join(sorted(served))}. Write tags={{{meant!r}}}"
                )
        return None

    def check_setup(self) -> None:
        """As the runtime starts: raise ``StartError`` for the first endpoint of
        ``unknown_groups`` or check tag ``misspelt``, or for a Health with no checks
        where ``checks_required`` says why; warn of one elsewhere (every endpoint
        would pass whatever happens to the app's dependencies)."""
        misspelt = (self.misspelt(check) for check in self._checks.values())
        for problem in self.unknown_groups() + [text for text in misspelt if text]:
            raise StartError(problem)
        if not self._checks:
            if self.checks_required is not None:
                raise StartError(self.checks_required)
            logger.warning(
                "this Health has no checks: every endpoint passes whatever happens to "
                'the app\'s dependencies; register some with @health.check("name") '
                'or health.add_check("name", fn)'
            )

    def after_fork(self) -> None:
        """In a forked child: no lock of the parent's."""
        self._lock = threading.Lock()

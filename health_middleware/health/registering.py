"""Registering: the checks, the endpoints, the pre-stop endpoint, the heartbeats and
the change callbacks of a ``Health``. Each call is validated here and published at
once (the endpoints answer from the new snapshot)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Unpack

from health_middleware.config.validation import flag
from health_middleware.engine.callbacks import Listener
from health_middleware.engine.heartbeat import Heartbeat, heartbeat_check
from health_middleware.health.parts import Parts
from health_middleware.model.check import Check, CheckOptions
from health_middleware.model.endpoint import ALL, normalise_path
from health_middleware.model.report import Format
from health_middleware.web.prestop import Prestop

F = TypeVar("F", bound=Callable[..., Any])
L = TypeVar("L", bound=Listener)


class Registering(Parts):
    """The registering part of ``Health``."""

    def check(self, name: str, **options: Unpack[CheckOptions]) -> Callable[[F], F]:
        """Register the decorated function as a check: ``@health.check("db")``.

        The function takes no arguments, sync or ``async def``, and is returned as it
        was. The options are those of ``add_check``, which says what each means.

        Args:
            name: The check's name: ``component`` or ``component:measurement``
                (e.g. ``postgres:responseTime``), its key in the report.

        Keyword Args:
            interval (float | None): Seconds between runs (default: the ``Health``'s
                ``interval``).
            timeout (float | None): Seconds a run may take (default: the ``Health``'s
                ``timeout``).
            critical (bool): Whether a failure fails the whole and readiness
                (default ``True``).
            tags (Iterable[str]): The groups the check counts in, e.g. ``{"live"}``
                (default none).
            component_type (str | None): The IETF ``componentType`` (default: the
                function's ``component_type`` attribute, else ``"component"``).
            failure_threshold (int): Failed runs in a row before it reports ``fail``
                (default 1).
            success_threshold (int): Passing runs in a row before it passes again
                (default 1).
            component_id (str | None): The IETF ``componentId`` (default ``None``).
            affected_endpoints (Iterable[str]): The IETF ``affectedEndpoints``
                (default none).
            scope (Literal["instance", "process"] | None): Where it runs under
                several workers (default: the function's ``scope`` attribute, else
                ``"instance"``).

        Returns:
            A decorator that registers the function it is given and returns it.

        Raises:
            TypeError: ``@health.check`` without the name; an option of the wrong
                type; a function that needs arguments.
            ValueError: A malformed name or tag, a name already registered, a value
                out of range.
        """
        if callable(name):  # @health.check above a function, without its name
            fn_name = getattr(name, "__name__", "name")
            raise TypeError(
                f'@health.check needs the check\'s name: write @health.check("{fn_name}") '
                f"(with its options, if any) above def {fn_name}()"
            )

        def register(fn: F) -> F:
            self.add_check(name, fn, **options)
            return fn

        return register

    def add_check(self, name: str, fn: Callable[[], Any], **options: Unpack[CheckOptions]) -> None:
        """Register ``fn`` as a check.

        ``fn`` returns ``None`` or ``True`` (pass), ``False`` (fail) or a
        ``CheckResult``; an exception fails the run, as does a run past its timeout.

        Args:
            name: The check's name: ``component`` or ``component:measurement``
                (e.g. ``postgres:responseTime``), its key in the report.
            fn: A function of no arguments, sync (run on a thread) or ``async def``
                (run on the event loop), such as one a ``health_middleware.checks``
                function makes.

        Keyword Args:
            interval (float | None): Seconds between the starts of two runs;
                ``None``: the ``Health``'s ``interval``.
            timeout (float | None): Seconds a run may take before it fails as
                ``timeout`` (and is abandoned); ``None``: the ``Health``'s
                ``timeout``.
            critical (bool): Whether a failure fails the whole report and readiness
                (default ``True``); ``False`` degrades the whole to ``warn``.
            tags (Iterable[str]): Groups to count in: ``{"live"}`` for liveness,
                ``{"ready"}`` for readiness, any word for an endpoint's ``group``
                (default none).
            component_type (str | None): The IETF ``componentType`` (``component``,
                ``datastore``, ``system`` or your own); ``None``: ``fn``'s
                ``component_type`` attribute (the built-in checks carry one), else
                ``"component"``.
            failure_threshold (int): Consecutive failed runs before the check reports
                ``fail`` (default 1).
            success_threshold (int): Consecutive passing runs before a failing check
                reports ``pass`` again (default 1).
            component_id (str | None): The IETF ``componentId`` (default ``None``); a
                ``CheckResult`` may give its own.
            affected_endpoints (Iterable[str]): The IETF ``affectedEndpoints``, shown
                while the check is not passing (default none).
            scope (Literal["instance", "process"] | None): ``"instance"``: under
                several workers, one run per interval for the whole server instance,
                every worker answering from its result (a dependency);
                ``"process"``: a run in every worker (the process itself). ``None``:
                ``fn``'s ``scope`` attribute (the built-in checks carry one), else
                ``"instance"``.

        Raises:
            TypeError: ``fn`` is not callable, needs arguments, or is a check factory
                not called (``checks.postgres`` for ``checks.postgres(dsn)``); an
                unknown option (the closest named), or one of the wrong type. A tag
                that reads as a served group but is none (``liev``) is refused as
                the runtime starts (``StartError``).
            ValueError: A malformed name or tag, a name already registered, a value
                out of range.
        """
        check = Check.build(name, fn, options, interval=self.interval, timeout=self.timeout)
        self._register(check)

    def endpoint(
        self,
        path: str,
        *,
        group: str = ALL,
        format: str | Format = "ietf",  # the public option's name
        details: bool = True,
        status_codes: Mapping[str, int] | None = None,
        drain: bool = False,
    ) -> None:
        """Serve one more endpoint at ``path``, from the same snapshot as the others.

        Args:
            path: Its absolute path, starting with ``/`` (not under ``base_path``); a
                trailing slash matches too.
            group: Which checks count: ``"all"`` (the full report), ``"live"``
                (tagged ``live``), ``"ready"`` (critical or tagged ``ready``),
                ``"started"`` (passes once every check has completed once), or any
                tag. A group no check carries refuses the start (``StartError``
                naming the endpoint and the known groups), so a typo never passes.
            format: A format name or object, as ``Health(format=...)``.
            details: ``True`` for the full report (the service's fields and every
                check); ``False`` for a probe's minimal body.
            status_codes: The HTTP status for each of ``pass``, ``warn`` and
                ``fail`` (default 200, 200 and 503): all three, each from 200 to
                599 and able to carry a body; with the ``ietf`` format, pass and
                warn 2xx or 3xx and fail 4xx or 5xx.
            drain: Answer 503 while draining, as readiness does.

        Raises:
            ValueError: A malformed path, one already served, or status codes out
                of range.
            TypeError: An option of the wrong type.
        """
        if not isinstance(group, str) or not group:
            raise TypeError("group must be a non-empty string: all, live, ready, started or a tag")
        self.registry.add_endpoint(
            path,
            group=group,
            format=format,
            details=flag("details", details),
            status_codes=status_codes,
            drain=flag("drain", drain),
        )
        self.engine.publisher.publish()

    def prestop(self, token: str, *, path: str | None = None, delay: float = 5.0) -> None:
        """Serve the pre-stop endpoint, for Kubernetes ``preStop.httpGet``.

        A request with ``Authorization: Bearer <token>`` starts the drain (as
        ``drain()`` does, without waiting on the app's event loop) and is answered
        after ``delay`` seconds, so the pod leaves the load balancers before SIGTERM;
        any other request gets 401.

        Args:
            token: The secret the request must carry: at least 16 printable ASCII
                characters, no spaces.
            path: The endpoint's absolute path; ``None``: ``<base_path>/prestop``.
            delay: Seconds between the drain and the answer.

        Raises:
            ValueError: A token too short, a malformed path, or a pre-stop endpoint
                already served.
        """
        self.registry.set_prestop(
            Prestop(normalise_path(path or self._root + "/prestop"), token, delay)
        )
        self.engine.publisher.publish()

    def heartbeat(
        self, name: str, max_age: float = 30.0, **options: Unpack[CheckOptions]
    ) -> Heartbeat:
        """Register a check that fails once its loop stops beating, and return the beat.

        A consumer or scheduler calls the returned ``Heartbeat`` (``beat()``) from its
        work loop each time round (from any thread; a beat costs a clock read), and
        ``beat.pause()`` when the loop waits on purpose (the check passes until the
        next beat). The check fails once the last beat is older than ``max_age``
        seconds; its observed value is that age, in seconds. Before the first beat it
        has no result (the process is starting). It measures this process
        (``scope="process"``) and is checked every second (every ``max_age`` if
        shorter), so a loop that stops is seen within ``max_age`` plus a second.

        Args:
            name: The check's name, as for ``add_check``.
            max_age: Seconds the loop may go without a beat before the check fails.

        Keyword Args:
            interval (float | None): Seconds between runs (default: 1, or
                ``max_age`` if shorter).
            tags (Iterable[str]): The groups it counts in (default ``("live",)``:
                liveness).
            scope (Literal["instance", "process"] | None): Only ``"process"``, the
                default: a heartbeat measures the process that beats it.
            component_type (str | None): As for ``add_check`` (default
                ``"component"``).
            timeout (float | None): As for ``add_check`` (default: the ``Health``'s).
            critical (bool): As for ``add_check`` (default ``True``).
            failure_threshold (int): As for ``add_check`` (default 1).
            success_threshold (int): As for ``add_check`` (default 1).
            component_id (str | None): As for ``add_check`` (default ``None``).
            affected_endpoints (Iterable[str]): As for ``add_check`` (default none).

        Returns:
            The ``Heartbeat`` to call from the loop.

        Raises:
            ValueError: ``scope`` other than ``"process"``, and as ``add_check``.
        """
        beat, check = heartbeat_check(
            name, max_age, options, interval=self.interval, timeout=self.timeout
        )
        self._register(check)
        return beat

    def on_change(self, callback: L) -> L:
        """Call ``callback`` on every change of status of a check or of the whole.

        Callbacks run on the refresher, in this process; one that raises is logged
        and skipped. Usable as a decorator.

        Args:
            callback: Called as ``callback(name, old, new)``: ``name`` is the check's
                name, or ``None`` for the whole; ``old`` and ``new`` are ``"pass"``,
                ``"warn"`` or ``"fail"``, ``old`` being ``None`` for the first result.

        Returns:
            ``callback``, unchanged.
        """
        return self.engine.callbacks.on_change(callback)

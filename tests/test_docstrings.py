"""The API reference's source: every public name of the public modules has a docstring
(interrogate measures the coverage, held at 100 %), and every parameter of every public
callable is named in a Google-style section of its docstring, so that ``help()``, an
editor and the site's API reference all show what each option means.

The public names: each public module's ``__all__`` (its functions and classes; data
such as ``checks.Check`` or ``formats.NAMED`` has no docstring of its own), and the
public methods and properties of those classes, inherited ones included. A class's
constructor is documented in the class's docstring (``Args:``, or ``Attributes:`` for a
dataclass's fields), as the site shows it (``merge_init_into_class``)."""

from __future__ import annotations

import importlib
import inspect
import logging
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import griffe
import pytest
from interrogate.config import InterrogateConfig
from interrogate.coverage import InterrogateCoverage

from tests.support import PUBLIC_MODULES

# The public modules, the package itself first.
MODULES = ("health_middleware", *(f"health_middleware.{name}" for name in sorted(PUBLIC_MODULES)))

# The sections of a Google-style docstring that name parameters: "Args:" (also
# "Arguments:", "Parameters:"), "Keyword Args:" (also "Other Parameters:"), and for a
# dataclass's fields "Attributes:".
PARAMETER_SECTIONS = {
    griffe.DocstringSectionKind.parameters,
    griffe.DocstringSectionKind.other_parameters,
}
FIELD_SECTIONS = {griffe.DocstringSectionKind.attributes}


@dataclass(frozen=True)
class Public:
    """One public name: ``name`` as a user reaches it, ``obj`` the module, class or
    function (a property's getter), ``owner`` the class of a method or property."""

    name: str
    obj: object
    owner: type | None = None


def _members(cls: type) -> Iterator[tuple[str, object]]:
    """The public methods and properties of ``cls``, its package bases' included (the
    nearest definition of each name), as functions (a property: its getter)."""
    seen: set[str] = set()
    for base in inspect.getmro(cls):
        if not base.__module__.startswith("health_middleware"):
            continue
        for name, value in vars(base).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(value, property):
                if value.fget is not None:
                    yield name, value.fget
            elif isinstance(value, staticmethod | classmethod):
                yield name, value.__func__
            elif inspect.isfunction(value):
                yield name, value


def public_names() -> list[Public]:
    """Every public module, and every public class, function, method and property in
    them, each once (by the first name it is reached by)."""
    found: list[Public] = []
    seen: set[int] = set()

    def add(public: Public) -> None:
        if id(public.obj) not in seen:
            seen.add(id(public.obj))
            found.append(public)

    for module in _modules():
        add(Public(module.__name__, module))
        for name in _declared(module):
            value = getattr(module, name)
            if not (inspect.isclass(value) or inspect.isfunction(value)):
                continue  # data: a constant, a mapping, a type alias
            add(Public(f"{module.__name__}.{name}", value))
            if inspect.isclass(value):
                for member, function in _members(value):
                    add(Public(f"{module.__name__}.{name}.{member}", function, value))
    return found


def _declared(module: ModuleType) -> list[str]:
    """``module.__all__``; without one (a test below fails then), the public names
    that ``module`` defines itself."""
    declared: list[str] | None = getattr(module, "__all__", None)
    if declared is not None:
        return declared
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]


def _modules() -> list[ModuleType]:
    pytest.importorskip("celery")
    pytest.importorskip("grpc_health")
    return [importlib.import_module(name) for name in MODULES]


def _interrogate_key(obj: object) -> tuple[str, str]:
    """How interrogate names ``obj``'s node: its file, and ``file.py:Qual.name``."""
    if isinstance(obj, ModuleType):
        path = obj.__file__
        assert path is not None
        return str(Path(path).resolve()), Path(path).name
    source = inspect.getsourcefile(obj)  # type: ignore[arg-type]
    assert source is not None, obj
    qualname = obj.__qualname__.replace(".<locals>", "")  # type: ignore[attr-defined]
    return str(Path(source).resolve()), f"{Path(source).name}:{qualname}"


def docstring_coverage(publics: list[Public]) -> tuple[float, list[str]]:
    """interrogate's verdict on the public names: the percentage with a docstring, and
    the names without one. It reads every file that defines a public name; only the
    nodes of public names are counted (a file's private helpers are not)."""
    keys = {public.name: _interrogate_key(public.obj) for public in publics}
    files = sorted({file for file, _ in keys.values()})
    config = InterrogateConfig(docstring_style="google", fail_under=100)
    results = InterrogateCoverage(paths=files, conf=config).get_coverage()
    covered = {
        (str(Path(result.filename).resolve()), node.path): node.covered
        for result in results.file_results
        for node in result.nodes
    }
    unseen = sorted(name for name, key in keys.items() if key not in covered)
    assert not unseen, f"interrogate found no node for {unseen}"
    missing = [name for name, key in keys.items() if not covered[key]]
    return 100.0 * (len(keys) - len(missing)) / len(keys), missing


def test_every_public_module_declares_its_public_names() -> None:
    for module in _modules():
        name = module.__name__
        assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.__all__ names {public}, which it lacks"


def test_every_public_name_has_a_docstring() -> None:
    publics = public_names()
    assert len(publics) > 100  # the modules, the checks, the formats, their methods
    percent, missing = docstring_coverage(publics)
    assert not missing, f"docstring coverage of the public names {percent:.1f} %: {missing}"


class _Warnings(logging.Handler):
    """griffe's complaints about a docstring it parses (a malformed section)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _sections(docstring: str | None) -> list[griffe.DocstringSection]:
    """``docstring`` parsed as Google style, as the site's mkdocstrings parses it;
    griffe's warnings (an entry with no ``name: description``) fail the test."""
    if not docstring:
        return []
    handler = _Warnings()
    logger = logging.getLogger("griffe")
    logger.addHandler(handler)
    try:
        sections = griffe.Docstring(
            inspect.cleandoc(docstring),
            parser="google",
            parser_options={"warn_missing_types": False, "warn_unknown_params": False},
        ).parse()
    finally:
        logger.removeHandler(handler)
    assert not handler.messages, handler.messages
    return sections


def _named(
    sections: list[griffe.DocstringSection], kinds: set[griffe.DocstringSectionKind]
) -> set[str]:
    return {
        item.name.lstrip("*")
        for section in sections
        if section.kind in kinds
        for item in section.value
    }


def _expected(function: object) -> set[str]:
    """The parameters of ``function`` a reader must find in its docstring: each by its
    name, but ``**options: Unpack[SomeTypedDict]`` by the dictionary's keys."""
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return set()
    names: set[str] = set()
    for name, parameter in signature.parameters.items():
        if name in ("self", "cls"):
            continue
        annotation = parameter.annotation
        if parameter.kind is parameter.VAR_KEYWORD and isinstance(annotation, str):
            namespace = getattr(function, "__globals__", {})
            annotation = eval(annotation, namespace)
        if typing.get_origin(annotation) is typing.Unpack:
            (options,) = typing.get_args(annotation)
            names |= set(options.__required_keys__ | options.__optional_keys__)
        else:
            names.add(name)
    return names


def _constructor(cls: type) -> object | None:
    """The ``__init__`` that makes ``cls`` where the package defines it (a dataclass's
    generated one included), else None (an exception's, a protocol's)."""
    for base in inspect.getmro(cls):
        init = vars(base).get("__init__")
        if init is not None:
            defined = getattr(init, "__module__", None) or ""
            return init if defined.startswith("health_middleware") else None
    return None


def _protocol_methods(publics: list[Public]) -> dict[tuple[str, frozenset[str]], set[str]]:
    """The parameters the public protocols' methods document (``Format.render``), by
    the method's name and parameters: a method of the same name and parameters that
    documents none of them, an implementation of the protocol, is documented there."""
    return {
        (public.obj.__name__, frozenset(_expected(public.obj))): _named(
            _sections(public.obj.__doc__), PARAMETER_SECTIONS
        )
        for public in publics
        if getattr(public.owner, "_is_protocol", False) and inspect.isfunction(public.obj)
    }


def undocumented_parameters(publics: list[Public]) -> tuple[int, list[str]]:
    """How many parameters the public callables take, and those their docstrings do
    not name (or name but do not take: ``name?``)."""
    total, problems = 0, []
    protocols = _protocol_methods(publics)
    for public in publics:
        obj = public.obj
        if isinstance(obj, ModuleType):
            continue
        if inspect.isclass(obj):
            init = _constructor(obj)
            if init is None:
                continue
            expected = _expected(init)
            sections = _sections(obj.__doc__ if "__doc__" in vars(obj) else None)
            sections += _sections(init.__doc__)
            documented = _named(sections, PARAMETER_SECTIONS | FIELD_SECTIONS)
            listed = _named(sections, PARAMETER_SECTIONS)
            where = f"{public.name}()"
        else:
            expected = _expected(obj)
            documented = listed = _named(_sections(obj.__doc__), PARAMETER_SECTIONS)
            if not listed:
                name = getattr(obj, "__name__", "")
                documented = protocols.get((name, frozenset(expected)), documented)
            where = public.name
        total += len(expected)
        problems += [f"{where}: {name}" for name in sorted(expected - documented)]
        problems += [f"{where}: {name}?" for name in sorted(listed - expected)]
    return total, problems


def test_every_parameter_is_named_in_its_docstring() -> None:
    total, problems = undocumented_parameters(public_names())
    assert total > 150
    assert not problems, f"{len(problems)} of {total} parameters: {problems}"


def split_returns(publics: list[Public]) -> list[str]:
    """The public names whose ``Returns:`` or ``Yields:`` section holds more than one
    entry: every callable here returns one value, so a second entry is a description's
    continuation line that lacks its indentation (the site would show two rows)."""
    kinds = {griffe.DocstringSectionKind.returns, griffe.DocstringSectionKind.yields}
    return [
        public.name
        for public in publics
        for section in _sections(getattr(public.obj, "__doc__", None))
        if section.kind in kinds and len(section.value) > 1
    ]


def test_each_returns_section_is_one_entry() -> None:
    assert not split_returns(public_names())


def test_the_measures_see_what_is_missing() -> None:
    """The measures fail a name without a docstring and a parameter left out."""

    def documented(first: int, second: str = "") -> None:
        """Do a thing.

        Args:
            first: The first.
            third: Not a parameter.
        """

    def bare() -> None:
        pass

    publics = [Public("documented", documented), Public("bare", bare)]
    percent, missing = docstring_coverage(publics)
    assert (percent, missing) == (50.0, ["bare"])
    total, problems = undocumented_parameters(publics)
    assert total == 2
    assert problems == ["documented: second", "documented: third?"]

    def split() -> int:
        """Count.

        Returns:
            A number, with a description that goes on
            without the indentation of a continuation.
        """
        return 1

    assert split_returns([Public("split", split), Public("documented", documented)]) == ["split"]


class _Shape(typing.Protocol):
    def area(self, scale: float) -> float:
        """The area.

        Args:
            scale: The scale.
        """
        ...


class _Square:
    def area(self, scale: float) -> float:
        """The square's area (the arguments are ``_Shape.area``'s)."""
        return scale

    def perimeter(self, scale: float) -> float:
        """The square's perimeter: no protocol documents it."""
        return scale


def test_an_implementation_of_a_protocol_is_documented_by_it() -> None:
    publics = [
        Public("_Shape.area", _Shape.area, _Shape),
        Public("_Square.area", _Square.area, _Square),
        Public("_Square.perimeter", _Square.perimeter, _Square),
    ]
    total, problems = undocumented_parameters(publics)
    assert total == 3
    assert problems == ["_Square.perimeter: scale"]

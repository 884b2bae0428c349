"""Typed JSON: the types of the build spec's values, and records read from JSON objects.

A record is an attrs class (a :class:`Record`) whose fields say their JSON key,
type and meaning with :func:`key`::

    name: str = attrs.field(metadata=key(STRING, "the image's AC Identifier"))

``Record.from_json`` makes one of a JSON object, or raises :class:`BuildSpecError`
naming the first key that is unknown, missing or of the wrong type, in one line::

    build spec: unknown key image.foo; image takes annotations, arch, ...
    build spec: missing key image.exec, which must be a list of strings or null
    build spec: image.exec[1] must be a string, got 3

Only JSON kinds are checked here; what a value means (a path in the image, an
account name, an id's range) is checked where it is used, naming the Nix argument.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from ...errors import Nix2AciError
from ...schema import json_path, show

R = TypeVar("R", bound="Record")
# Where a value lies in the build spec: keys and list indexes, from the top (("image", "exec", 1)).
Path = tuple[str | int, ...]


class BuildSpecError(Nix2AciError):
    """A build spec that breaks the contract: ``key`` (``image.exec``) is unknown, missing or mistyped."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"build spec: {problem}")
        self.key = key


def _name(path: Path) -> str:
    """How a message names the value at ``path``: ``image.exec[1]``, ``rootfs.files./etc/motd.mode``."""
    return json_path(path) or "the spec"


def _wrong(path: Path, description: str, value: Any) -> BuildSpecError:
    """The error of ``value`` at ``path``, which is not ``description``."""
    name = _name(path)
    return BuildSpecError(name, f"{name} must be {description}, got {show(value)}")


@attrs.frozen
class Type:
    """The type of a JSON value, and how it becomes a Python value.

    ``description`` completes "KEY must be ..." (``a list of strings``), ``plural`` is
    the same for several values (``strings``); ``accepts`` tests the value's JSON kind;
    ``convert`` turns an accepted value at a path into Python (checking what it holds).
    ``inner`` is the type of what a list, object or null holds, ``record_class`` the
    class a record is read into: what :func:`contract` documents below a key.
    """

    description: str
    plural: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any, Path], Any] = lambda value, path: value
    inner: Type | None = None
    record_class: type[Record] | None = None

    def read(self, value: Any, path: Path) -> Any:
        """``value``, found at ``path``, as Python; BuildSpecError naming the path when it is of another type."""
        if not self.accepts(value):
            raise _wrong(path, self.description, value)
        return self.convert(value, path)

    def records(self) -> Iterator[type[Record]]:
        """The record classes this type reads, itself or inside."""
        if self.record_class is not None:
            yield self.record_class
        if self.inner is not None:
            yield from self.inner.records()


STRING = Type("a string", "strings", lambda value: isinstance(value, str))
BOOLEAN = Type("true or false", "booleans", lambda value: isinstance(value, bool))
INTEGER = Type("an integer", "integers", lambda value: type(value) is int)
# A value nix2aci passes on unread (an isolator's value, which the format's own schema checks).
ANY = Type("any JSON value", "JSON values", lambda value: True)


def integer_from(minimum: int, maximum: int) -> Type:
    """An integer from ``minimum`` to ``maximum``."""
    return Type(
        f"an integer from {minimum} to {maximum}",
        f"integers from {minimum} to {maximum}",
        lambda value: type(value) is int and minimum <= value <= maximum,
    )


def one_of(*values: str) -> Type:
    """One of the strings ``values``."""
    listed = ", ".join(json.dumps(value) for value in values)
    return Type(f"one of {listed}", f"values among {listed}", lambda value: isinstance(value, str) and value in values)


def nullable(item: Type) -> Type:
    """``item``, or null (Python's None)."""
    return Type(
        f"{item.description} or null",
        f"{item.plural} or nulls",
        lambda value: value is None or item.accepts(value),
        lambda value, path: None if value is None else item.convert(value, path),
        inner=item,
    )


def list_of(item: Type) -> Type:
    """A JSON list of ``item`` values, read into a tuple."""
    return Type(
        f"a list of {item.plural}",
        f"lists of {item.plural}",
        lambda value: isinstance(value, list),
        lambda value, path: tuple(item.read(element, (*path, index)) for index, element in enumerate(value)),
        inner=item,
    )


def object_of(item: Type) -> Type:
    """A JSON object whose values are ``item`` values, by any key, read into a dict."""
    return Type(
        f"an object of {item.plural}",
        f"objects of {item.plural}",
        lambda value: isinstance(value, dict),
        lambda value, path: {name: item.read(element, (*path, name)) for name, element in value.items()},
        inner=item,
    )


def record(cls: type[Record]) -> Type:
    """A JSON object with the keys of the record class ``cls``, read into one."""
    return Type(
        f"an object ({cls.__name__})",
        f"{cls.__name__} objects",
        lambda value: isinstance(value, dict),
        lambda value, path: cls.from_json(value, path),
        record_class=cls,
    )


def key(json_type: Type, meaning: str, name: str | None = None) -> dict[str, Any]:
    """The metadata of a record's field (``attrs.field(metadata=key(...))``): it is read from the JSON key
    ``name`` (default: the field's name) as ``json_type``; ``meaning`` says what the value is for, the
    contract's documentation (:func:`contract`)."""
    return {"key": name, "type": json_type, "meaning": meaning}


class Record:
    """A part of the build spec: an attrs class whose :func:`key` fields are read from a JSON object."""

    @classmethod
    def keys(cls) -> dict[str, attrs.Attribute]:
        """{JSON key: the field read from it}, in the class's order."""
        return {field.metadata["key"] or field.name: field for field in attrs.fields(cls) if "type" in field.metadata}

    @classmethod
    def from_json(cls: type[R], value: Any, path: Path = (), shared: frozenset[str] = frozenset(), **others: Any) -> R:
        """The record of the JSON object ``value`` found at ``path``; ``others``: the fields no key gives.

        ``shared``: keys of the object that another record reads (see :meth:`read_fields`).
        Raises BuildSpecError naming the first key that is unknown, missing or of the wrong type.
        """
        return cls(**cls.read_fields(value, path, shared), **others)

    @classmethod
    def read_fields(cls, value: Any, path: Path = (), shared: frozenset[str] | None = frozenset()) -> dict[str, Any]:
        """{field name: value} of the keys of ``cls`` in the JSON object ``value`` found at ``path``.

        ``shared``: keys another record reads from the same object (the top level is
        read by two); None: every key not of ``cls``, left for another record to refuse.
        Raises BuildSpecError naming the first key that is unknown, missing or of the wrong type.
        """
        if not isinstance(value, dict):
            raise _wrong(path, f"an object ({cls.__name__})", value)
        keys = cls.keys()
        unknown = [] if shared is None else sorted(set(value) - set(keys) - shared)
        if unknown:
            name = _name((*path, unknown[0]))
            allowed = ", ".join(sorted({*keys, *(shared or ())}))
            raise BuildSpecError(name, f"unknown key {name}; {_name(path)} takes {allowed}")
        fields = {}
        for json_key, field in keys.items():
            if json_key not in value:
                name = _name((*path, json_key))
                raise BuildSpecError(name, f"missing key {name}, which must be {field.metadata['type'].description}")
            fields[field.name] = field.metadata["type"].read(value[json_key], (*path, json_key))
        return fields


def contract(cls: type[Record], indent: str = "") -> Iterator[str]:
    """Lines documenting the keys of ``cls``: ``key: type: meaning``, the keys of the records it holds indented."""
    for json_key, field in cls.keys().items():
        json_type = field.metadata["type"]
        yield f"{indent}{json_key}: {json_type.description}: {field.metadata['meaning']}"
        for nested in json_type.records():
            yield from contract(nested, indent + "    ")

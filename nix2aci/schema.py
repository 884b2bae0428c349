"""JSON Schemas shipped with nix2aci, and their findings as :class:`SpecError`.

The schemas are the project's own, written from the spec texts. Conventions:

* every ``description`` completes the sentence "VALUE must be ...", so it is
  both the rule of an error message and the wording the Nix side uses;
* every ``pattern`` is a POSIX ERE anchored at both ends (Nix reads it with
  ``builtins.match``), so Python reads it the ERE way (see :func:`compile_pattern`);
* keys are case-sensitive: a key that differs from a known one only in case is
  an error naming the right spelling, any other unknown key only a warning.
"""

from __future__ import annotations

import codecs
import collections
import functools
import importlib.resources
import json
import re
import reprlib
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import jsonschema

from .errors import NotChecked, SpecError

# Keys that read unambiguously after a dot; others are written ["like.this"].
_PLAIN_KEY = re.compile(r'[^.\[\]"\s]+')
# A JSON text starts with one of these only when it has a byte order mark.
_BYTE_ORDER_MARKS = (
    codecs.BOM_UTF8,
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 80


def load_json(package: str, resource: str) -> Any:
    """The parsed JSON file ``resource`` shipped inside ``package``."""
    return json.loads(importlib.resources.files(package).joinpath(resource).read_text("utf-8"))


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The Python regex of a schema pattern, read as the POSIX ERE it is.

    ``.`` matches a newline too, and a final ``$`` matches only at the very end
    (Python's also matches before a trailing newline, which would let
    ``"name\\n"`` pass for an AC Identifier).
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.DOTALL)


def show(value: Any) -> str:
    """A short printable form of a JSON value for messages (bounded in length and depth)."""
    return _SHOW.repr(value)


def json_path(parts: Iterable[str | int]) -> str:
    """The user-facing path of a value: ``app.ports[0].port``, ``app.userLabels["a.b"]``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part) and part.isprintable():
            path += f".{part}" if path else part
        else:
            # json.dumps escapes what cannot be printed (control characters, lone surrogates).
            path += f"[{json.dumps(part, ensure_ascii=not part.isprintable())}]"
    return path


class _NotJson(ValueError):
    """What json.loads accepts but RFC 4627 does not."""


def _refuse_constant(name: str) -> Any:
    """json.loads' hook for NaN, Infinity and -Infinity: not JSON numbers."""
    raise _NotJson(f"{name} is not a JSON value (RFC 4627 numbers are finite)")


@attrs.frozen
class ParsedJson:
    """A parsed JSON text: its ``value``, and ``warnings`` about spec-valid oddities (repeated keys)."""

    value: Any
    warnings: tuple[str, ...] = ()


def json_or_none(data: bytes) -> Any:
    """``data`` read as JSON by Python's reader, or None when it is none or nests deeper than Python reads: for
    a document from elsewhere (a registry, a layout) whose shape the caller checks next."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def parse_json(data: bytes) -> ParsedJson:
    """``data`` read as a JSON text of RFC 4627, the JSON the appc spec names.

    Stricter than ``json.loads`` where the RFC is: no byte order mark, no NaN or
    Infinity, no undecodable bytes. A key repeated within one object is valid
    JSON (names SHOULD be unique) and only a warning; the last value is the one
    read, as Go's decoder also keeps it (actool, though, checks every value).
    Raises SpecError (field "") for what is not JSON, and NotChecked for JSON
    nested deeper than Python parses or with a number of over 4300 digits (the
    RFC lets a parser limit both).
    """
    if data.startswith(_BYTE_ORDER_MARKS):
        raise SpecError("", "must be JSON (RFC 4627): it starts with a byte order mark, which JSON text does not have")
    # id of an object -> (the object, kept alive so that its id stays its own; its repeated keys)
    repeated: dict[int, tuple[dict[str, Any], list[str]]] = {}

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            counts = collections.Counter(key for key, _ in pairs)
            repeated[id(obj)] = (obj, [key for key in obj if counts[key] > 1])
        return obj

    try:
        value = json.loads(
            data.decode(json.detect_encoding(data)), parse_constant=_refuse_constant, object_pairs_hook=pairs_hook
        )
    except RecursionError:
        raise NotChecked("it nests JSON deeper than nix2aci reads (about 1000 levels)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, _NotJson) as error:
        raise SpecError("", f"must be JSON (RFC 4627): {error}") from None
    except ValueError:
        # The only other ValueError: an integer too long for int() (CVE-2020-10735).
        raise NotChecked(
            f"it has a JSON number of over {sys.get_int_max_str_digits()} digits, more than nix2aci reads"
        ) from None
    return ParsedJson(value, tuple(_repeated_key_warnings(value, repeated)))


def _repeated_key_warnings(
    document: Any, repeated: Mapping[int, tuple[dict[str, Any], Sequence[str]]]
) -> Iterator[str]:
    """A warning for each repeated key (see :func:`parse_json`), in document order."""
    if not repeated:
        return
    # Iterative: the document may nest as deep as the parser allows.
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            obj, keys = repeated.get(id(node), (None, ()))
            for key in keys if obj is node else ():
                yield (
                    f"{json_path([*path, key])}: the key is repeated in its object; the last value is the one"
                    " checked (RFC 4627: names SHOULD be unique; actool checks every value)"
                )
            stack.extend(((*path, key), child) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, index), child) for index, child in reversed(list(enumerate(node))))


def join_path(prefix: str, field: str) -> str:
    """``field`` (relative to the value at ``prefix``) as a path from the document root."""
    if not field:
        return prefix
    return prefix + field if not prefix or field.startswith("[") else f"{prefix}.{field}"


def prefixed(prefix: str, errors: Iterable[SpecError]) -> Iterator[SpecError]:
    """``errors`` whose fields are relative to ``prefix``, re-rooted at the document root."""
    for error in errors:
        yield SpecError(join_path(prefix, error.field), error.rule)


def unique(names: Iterable[str], field: str) -> Iterator[SpecError]:
    """An error for each name that repeats an earlier one of ``names``.

    ``field`` is the error's field with ``{}`` standing for the index (``[{}].name``).
    """
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            yield SpecError(
                field.format(index),
                f"must be unique within the list; {name!r} is already used at index {first[name]}",
            )
        first.setdefault(name, index)


def compact(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of ``pairs`` without the absent ones (None or an empty list or object)."""
    return {key: value for key, value in pairs.items() if value is not None and value != [] and value != {}}


@attrs.frozen
class Findings:
    """What a schema says about a document: ``errors`` break it, ``warnings`` are spec-valid oddities."""

    errors: tuple[SpecError, ...]
    warnings: tuple[str, ...]


# jsonschema's own messages for these keywords print the instance whole, which
# fails on deeply nested input; these print it with show() instead.


def _type(validator: Any, types: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``type``."""
    types = [types] if isinstance(types, str) else types
    if not any(validator.is_type(instance, name) for name in types):
        yield jsonschema.ValidationError(f"{show(instance)} is not of type {' or '.join(types)}")


def _enum(validator: Any, values: Sequence[Any], instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``enum`` (with its ``const`` equality, where true is not 1)."""
    if not any(validator.evolve(schema={"const": value}).is_valid(instance) for value in values):
        yield jsonschema.ValidationError(f"{show(instance)} is not one of {show(values)}")


def _not(validator: Any, not_schema: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``not``."""
    if validator.evolve(schema=not_schema).is_valid(instance):
        yield jsonschema.ValidationError(f"{show(instance)} must not be valid under {show(not_schema)}")


def _required(validator: Any, required: Sequence[str], instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``required``, but each error's path ends with the missing key."""
    if validator.is_type(instance, "object"):
        for key in required:
            if key not in instance:
                yield jsonschema.ValidationError(f"{show(key)} is a required property", path=[key])


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``pattern``, with ERE semantics (:func:`compile_pattern`)."""
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{show(instance)} does not match {pattern!r}")


def _is_integer(checker: Any, instance: Any) -> bool:
    """Only JSON integers: Go's decoder, like this, refuses ``80.0`` (and ``true``) for an int."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _inlined(node: Any, definitions: Mapping[str, Any], expanding: tuple[str, ...] = ()) -> Any:
    """``node`` with each bare ``{"$ref": "#/definitions/x"}`` replaced by a copy of ``x``; recursive ones stay."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.removeprefix("#/definitions/")
            if name in definitions and name not in expanding:
                return _inlined(definitions[name], definitions, (*expanding, name))
            return node
        return {key: _inlined(value, definitions, expanding) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(value, definitions, expanding) for value in node]
    return node


@attrs.frozen
class Schema:
    """A draft-07 JSON Schema document, with local ``$ref``s only (nothing is fetched)."""

    document: Mapping[str, Any]
    _validator: Any = attrs.field(init=False, repr=False, eq=False)

    @_validator.default
    def _make_validator(self) -> Any:
        """A validator of the schema's draft, with the keyword and type changes above."""
        base = jsonschema.validators.validator_for(self.document)
        base.check_schema(self.document)
        cls = jsonschema.validators.extend(
            base,
            {"type": _type, "enum": _enum, "not": _not, "required": _required, "pattern": _pattern},
            type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer),
        )
        # Resolving a $ref for each value cost most of the time of long lists (a thin
        # image's 1,000 mount points): the validator, and check's walk of the keys,
        # get them resolved once.
        return cls(_inlined(self.document, self.document.get("definitions", {})))

    def definition(self, name: str) -> Mapping[str, Any]:
        """The subschema ``definitions.<name>``."""
        return self.document["definitions"][name]

    def check(self, instance: Any) -> Findings:
        """Everything the schema finds in ``instance`` (any JSON value), in a stable order.

        Miscased keys come first; a key's "is required" error is dropped when the
        key is present with the wrong case, since the first error says it all.
        """
        errors: list[SpecError] = []
        warnings: list[str] = []
        self._check_keys(self._validator.schema, instance, [], errors, warnings)
        miscased = {error.field for error in errors}
        for error in self._validator.iter_errors(instance):
            spec_error = self._spec_error(error)
            if not (error.validator == "required" and spec_error.field in miscased):
                errors.append(spec_error)
        return Findings(tuple(errors), tuple(warnings))

    def _resolve(self, schema: Any) -> Any:
        """``schema``, or what its local ``$ref`` (``#/definitions/x``) points at."""
        while isinstance(schema, Mapping) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#"):
                raise ValueError(f"only local $refs are supported, got {ref!r}")
            schema = self.document
            for part in ref[1:].split("/")[1:]:
                schema = schema[part.replace("~1", "/").replace("~0", "~")]
        return schema

    def _applicable(self, schema: Any, instance: Any) -> Iterator[Mapping[str, Any]]:
        """``schema`` and the subschemas that apply to ``instance`` as a whole ($ref, allOf, if)."""
        schema = self._resolve(schema)
        if not isinstance(schema, Mapping):
            return
        yield schema
        for subschema in schema.get("allOf", ()):
            yield from self._applicable(subschema, instance)
        if "if" in schema:
            branch = "then" if self._validator.evolve(schema=schema["if"]).is_valid(instance) else "else"
            if branch in schema:
                yield from self._applicable(schema[branch], instance)

    def _check_keys(
        self, schema: Any, instance: Any, path: list[str | int], errors: list[SpecError], warnings: list[str]
    ) -> None:
        """Report miscased keys (errors) and unknown keys (warnings) throughout ``instance``."""
        schemas = list(self._applicable(schema, instance))
        if isinstance(instance, dict):
            known = {key for s in schemas for key in s.get("properties", {})}
            spelling = {key.lower(): key for key in known}
            extra = [s["additionalProperties"] for s in schemas if "additionalProperties" in s]
            for key, value in instance.items():
                if key in known:
                    for s in schemas:
                        if key in s.get("properties", {}):
                            self._check_keys(s["properties"][key], value, [*path, key], errors, warnings)
                elif key.lower() in spelling:
                    right = spelling[key.lower()]
                    errors.append(
                        SpecError(
                            json_path([*path, right]),
                            f"must be spelled {right!r}: keys are case-sensitive; got {show(key)}",
                        )
                    )
                elif extra:
                    for subschema in extra:
                        self._check_keys(subschema, value, [*path, key], errors, warnings)
                elif known:
                    warnings.append(f"{json_path([*path, key])}: unknown key, ignored")
        elif isinstance(instance, list):
            for s in schemas:
                if isinstance(s.get("items"), Mapping):
                    for index, item in enumerate(instance):
                        self._check_keys(s["items"], item, [*path, index], errors, warnings)

    def _description(self, schema: Any) -> str | None:
        """The ``description`` of ``schema`` (following a ``$ref``), if it has one."""
        schema = self._resolve(schema)
        return schema.get("description") if isinstance(schema, Mapping) else None

    def _spec_error(self, error: jsonschema.ValidationError) -> SpecError:
        """``error`` as a SpecError: its path, and the failing subschema's description as the rule."""
        field = json_path(error.absolute_path)
        if error.validator == "required":
            wanted = self._description(error.schema.get("properties", {}).get(error.path[-1]))
            return SpecError(field, f"is required; must be {wanted}" if wanted else "is required")
        wanted = self._description(error.schema)
        return SpecError(field, f"must be {wanted}; got {show(error.instance)}" if wanted else error.message)


@functools.cache
def load_schema(package: str, resource: str) -> Schema:
    """The schema file ``resource`` shipped inside ``package`` (loaded once)."""
    return Schema(load_json(package, resource))

"""The ImageManifest: the ``manifest`` file of an ACI (spec/aci.md, Image Manifest Schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import Findings, compact, prefixed
from .annotations import Annotation, annotation_problems
from .app import App
from .dependencies import Dependency, dependency_problems
from .identifiers import MANIFEST_SCHEMA
from .isolators import isolator_warnings
from .labels import Label, label_problems
from .version import AC_VERSION, version_problems

# Top-level key -> the rules beyond the schema that its (schema-valid) value must follow.
_RULES: Mapping[str, Callable[[Any], Iterable[SpecError]]] = {
    "acVersion": version_problems,
    "labels": lambda labels: label_problems([Label.from_json(label) for label in labels]),
    "app": lambda app: App.from_json(app).problems() if app is not None else (),
    "dependencies": lambda items: dependency_problems([Dependency.from_json(item) for item in items]),
    "annotations": lambda items: annotation_problems([Annotation.from_json(item) for item in items]),
}


def _within(field: str, key: str) -> bool:
    """Whether ``field`` is the top-level ``key`` or lies inside it."""
    return field == key or field.startswith((f"{key}.", f"{key}["))


def _findings(obj: Any) -> Findings:
    """All problems of ``obj`` (any JSON value): the schema's, then the rules beyond it.

    The rules are checked only in the top-level parts the schema passed, as the
    models need well-formed JSON to be built.
    """
    findings = MANIFEST_SCHEMA.check(obj)
    problems = list(findings.errors)
    if isinstance(obj, dict):
        for key, rules in _RULES.items():
            if key in obj and not any(_within(error.field, key) for error in findings.errors):
                problems.extend(prefixed(key, rules(obj[key])))
    return Findings(tuple(problems), findings.warnings)


@attrs.frozen(kw_only=True, init=False)
class ImageManifest:
    """An appc ImageManifest (acKind ``ImageManifest``).

    Constructing one checks every rule of the spec, whatever the origin of the
    values, and raises a SpecError for the first one broken. ``json_warnings``
    holds what :meth:`from_json` noticed in its input (unknown keys); it is not
    part of the manifest's value. :meth:`from_json` checks the JSON it reads
    instead, once (a thin image of a 1,000-path closure has 1,000 mount points).
    """

    name: str
    ac_version: str = AC_VERSION
    labels: tuple[Label, ...] = attrs.field(default=(), converter=tuple)
    app: App | None = None
    dependencies: tuple[Dependency, ...] = attrs.field(default=(), converter=tuple)
    path_whitelist: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    annotations: tuple[Annotation, ...] = attrs.field(default=(), converter=tuple)
    json_warnings: tuple[str, ...] = attrs.field(default=(), converter=tuple, eq=False, repr=False)

    def __init__(self, **fields: Any) -> None:
        """Take the fields (keyword arguments named as the attributes), then check the JSON they stand for."""
        self.__attrs_init__(**fields)
        for problem in _findings(self.to_json()).errors:
            raise problem

    @classmethod
    def problems(cls, obj: Any) -> list[SpecError]:
        """Every problem of the parsed JSON ``obj`` (any JSON value), in a stable order; never raises."""
        return list(_findings(obj).errors)

    @classmethod
    def from_json(cls, obj: Any) -> ImageManifest:
        """The manifest of the parsed JSON ``obj``; raises SpecError for its first problem."""
        findings = _findings(obj)
        if findings.errors:
            raise findings.errors[0]
        app = obj.get("app")
        manifest = cls.__new__(cls)
        manifest.__attrs_init__(
            name=obj["name"],
            ac_version=obj["acVersion"],
            labels=[Label.from_json(label) for label in obj.get("labels", ())],
            app=App.from_json(app) if app is not None else None,
            dependencies=[Dependency.from_json(item) for item in obj.get("dependencies", ())],
            path_whitelist=obj.get("pathWhitelist", ()),
            annotations=[Annotation.from_json(item) for item in obj.get("annotations", ())],
            json_warnings=findings.warnings,
        )
        return manifest

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON: canonical keys in spec order, absent and empty fields left out."""
        return compact(
            {
                "acKind": "ImageManifest",
                "acVersion": self.ac_version,
                "name": self.name,
                "labels": [label.to_json() for label in self.labels],
                "app": self.app.to_json() if self.app is not None else None,
                "dependencies": [dependency.to_json() for dependency in self.dependencies],
                "pathWhitelist": list(self.path_whitelist),
                "annotations": [annotation.to_json() for annotation in self.annotations],
            }
        )

    @property
    def warnings(self) -> list[str]:
        """Spec-valid oddities worth a look: unknown keys in the JSON read, unknown isolators."""
        isolators = self.app.isolators if self.app is not None else ()
        return [*self.json_warnings, *isolator_warnings(isolators, "app.isolators")]

    def label(self, name: str) -> str | None:
        """The value of label ``name``, or None."""
        return _value_of(self.labels, name)

    def annotation(self, name: str) -> str | None:
        """The value of annotation ``name``, or None."""
        return _value_of(self.annotations, name)


def _value_of(pairs: Sequence[Label | Annotation], name: str) -> str | None:
    """The value of the first of ``pairs`` called ``name``, or None."""
    return next((pair.value for pair in pairs if pair.name == name), None)

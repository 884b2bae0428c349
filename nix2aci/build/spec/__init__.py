"""The build spec: the one document Nix writes for the builder, read into typed records.

Input: the build environment nix/builder.nix sets up: ``$nix2aciSpecPath``
names the build spec (a JSON file Nix writes from the derivation's
``nix2aciSpec``; the same value is the derivation's attribute ``nix2aci``),
``closure-0``, ``closure-1``, ... in ``$NIX_BUILD_TOP`` are the closures of the
spec's roots (exportReferencesGraph) and ``$out`` is the output path.
Output: a :class:`BuildSpec`, or one line naming the first key of the spec that
is unknown, missing or of the wrong type (:class:`~.typed.BuildSpecError`).

The spec is one JSON object whose ``format`` says what the build makes. An image's
file tree (an ACI, a runtime bundle, an OCI image's last layer) is a
:class:`BuildSpec`: the common keys below and the keys of its format's part
(:mod:`.aci`, :mod:`.bundle`, :mod:`.layers`), a new such format a module here and
its entry in :data:`OUTPUTS`. The other steps of an OCI image have records of their
own (:data:`STEPS`): how its closure is split into layers and each store layer
(:mod:`.layers`), the image from its layers (:mod:`.layout`), and an index over images
of several platforms (:mod:`.index`). The common keys:

"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Union

import attrs

from ...errors import Nix2AciError
from ..closure import Closure
from .aci import AciOutput
from .bundle import BundleOutput
from .index import IndexSpec
from .layers import LayeringSpec, RootfsLayerOutput, StoreLayerSpec
from .layout import ImageSpec
from .rootfs import Rootfs
from .typed import STRING, BuildSpecError, Path, Record, contract, key, list_of, one_of, record

# The formats of an image's file tree (the spec's "format") -> the record of the keys each adds.
OUTPUTS: dict[str, type[Record]] = {"aci": AciOutput, "oci-bundle": BundleOutput, "oci-rootfs-layer": RootfsLayerOutput}
# The other formats -> their whole record.
STEPS: dict[str, type[Record]] = {
    "oci-layering": LayeringSpec,
    "oci-store-layer": StoreLayerSpec,
    "oci-layout": ImageSpec,
    "docker-archive": ImageSpec,
    "oci-index": IndexSpec,
}
FORMAT = one_of(*OUTPUTS)
ANY_FORMAT = one_of(*OUTPUTS, *STEPS)
STORE_PATHS = list_of(STRING)
# Any build spec.
Spec = Union["BuildSpec", LayeringSpec, StoreLayerSpec, ImageSpec, IndexSpec]

__all__ = [
    "OUTPUTS",
    "STEPS",
    "AciOutput",
    "BuildSpec",
    "BuildSpecError",
    "BundleOutput",
    "ImageSpec",
    "IndexSpec",
    "LayeringSpec",
    "Rootfs",
    "RootfsLayerOutput",
    "Spec",
    "StoreLayerSpec",
    "load",
]


@attrs.frozen
class BuildSpec(Record):
    """What to build, and from what: the common keys, the format's part (``output``), the closure and ``out``.

    ``packages`` make the profile at the image root; the image holds the closure
    of ``roots`` (the packages, and for OCI the store paths its command names).
    ``output`` is the format's own record (an :class:`AciOutput` for ``aci``, ...),
    whose ``image`` holds the image's own arguments, checked for their types only:
    the format's package turns them into its manifest or config and validates that.
    """

    format: str = attrs.field(metadata=key(FORMAT, "the output format, which decides the other keys"))
    mode: str = attrs.field(
        metadata=key(
            one_of("fat", "thin", "static"),
            "fat: the closure copied; thin: each store path a mount of the host's; static: one package is the root",
        )
    )
    packages: tuple[str, ...] = attrs.field(
        metadata=key(STORE_PATHS, "store paths merged into the profile at the image's root")
    )
    roots: tuple[str, ...] = attrs.field(
        metadata=key(STORE_PATHS, "store paths whose closure the image holds; closure-N is root N's")
    )
    prefer: tuple[str, ...] = attrs.field(
        metadata=key(STORE_PATHS, "packages that win a clash in the profile, the first listed first")
    )
    layers: tuple[tuple[str, ...], ...] = attrs.field(
        metadata=key(
            list_of(STORE_PATHS),
            "store paths of the closure grouped into layers, in order, each path in at most one; the closure's "
            "other paths make one more layer ([]: one layer of the whole closure). Nix decides the groups "
            "(nix2aci.build.tree)",
        )
    )
    rootfs: Rootfs = attrs.field(
        metadata=key(record(Rootfs), "the rootfs basics and the user's files (nix2aci.build.spec.rootfs)")
    )
    output: AciOutput | BundleOutput | RootfsLayerOutput
    closure: Closure
    out: str

    @classmethod
    def from_json(cls, value: Any, path: Path = (), shared: frozenset[str] = frozenset(), **others: Any) -> BuildSpec:
        """The build spec of the JSON object ``value``; ``others``: ``closure`` and ``out``.

        The common keys are read first, then the format's part as ``output``: the
        first key that is unknown (to both), missing or mistyped is a BuildSpecError.
        """
        common = cls.read_fields(value, path, shared=None)
        output = OUTPUTS[common["format"]].from_json(value, path, shared=frozenset(cls.keys()))
        return cls(**common, output=output, **others)


def load(environment: Mapping[str, str]) -> Spec:
    """The build spec of a Nix build's ``environment``, with the closure of its roots and its output path.

    The spec's ``format`` picks its record (:data:`OUTPUTS`: a :class:`BuildSpec`;
    :data:`STEPS`: that record). Raises BuildSpecError naming the first key that is
    unknown, missing or mistyped, Nix2AciError when the build's files cannot be read.
    """
    try:
        spec_path, build_top, out = (environment[name] for name in ("nix2aciSpecPath", "NIX_BUILD_TOP", "out"))
    except KeyError as error:
        raise Nix2AciError(f"not a nix2aci build: {error} is missing") from None
    try:
        with open(spec_path, encoding="utf-8") as file:
            document = json.load(file)
        fmt = document.get("format") if isinstance(document, dict) else None
        if fmt is not None:
            ANY_FORMAT.read(fmt, ("format",))
        cls = STEPS.get(fmt) if isinstance(fmt, str) else None
        if cls is None:
            # Checked before the closure is read: its files are counted by the roots.
            spec = BuildSpec.from_json(document, closure=Closure.from_registrations([]), out=out)
        else:
            others = {"closure": Closure.from_registrations([])} if "closure" in attrs.fields_dict(cls) else {}
            spec = cls.from_json(document, out=out, **others)
        if not hasattr(spec, "closure"):
            return spec
        graphs = []
        for index in range(len(spec.roots)):
            with open(os.path.join(build_top, f"closure-{index}"), encoding="utf-8") as file:
                graphs.append(file.read())
    except OSError as error:
        raise Nix2AciError(f"cannot read the build spec: {error}") from None
    except ValueError as error:
        raise Nix2AciError(f"the build spec is malformed: {error}") from None
    return attrs.evolve(spec, closure=Closure.from_registrations(graphs))


__doc__ += "\n".join(contract(BuildSpec, "    ")) + "\n"

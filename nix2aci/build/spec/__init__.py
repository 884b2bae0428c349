"""The build spec: the one document Nix writes for the builder, read into typed records.

Input: the build environment nix/builder.nix sets up: ``$nix2aciSpecPath``
names the build spec (a JSON file Nix writes from the derivation's
``nix2aciSpec``; the same value is the derivation's attribute ``nix2aci``),
``closure-0``, ``closure-1``, ... in ``$NIX_BUILD_TOP`` are the closures of the
spec's roots (exportReferencesGraph) and ``$out`` is the output path.
Output: a :class:`BuildSpec`, or one line naming the first key of the spec that
is unknown, missing or of the wrong type (:class:`~.typed.BuildSpecError`).

The spec is one JSON object: the common keys below, which every format has, and
the keys of its format's part (``image`` and the format's options): :mod:`.aci`,
:mod:`.bundle`, :mod:`.layout`. A new format is a module here and its entry in
:data:`OUTPUTS`. The common keys:

"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ...errors import Nix2AciError
from ..closure import Closure
from .aci import AciOutput
from .bundle import BundleOutput
from .layout import LayoutOutput
from .rootfs import Rootfs
from .typed import STRING, BuildSpecError, Path, Record, contract, key, list_of, one_of, record

# The output formats (the spec's "format") -> the record of the keys each adds.
OUTPUTS: dict[str, type[Record]] = {"aci": AciOutput, "oci-bundle": BundleOutput, "oci-layout": LayoutOutput}
FORMAT = one_of(*OUTPUTS)
STORE_PATHS = list_of(STRING)

__all__ = ["OUTPUTS", "AciOutput", "BuildSpec", "BuildSpecError", "BundleOutput", "LayoutOutput", "Rootfs"]


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
    command: str = attrs.field(
        metadata=key(STRING, "the .drv file of nix2aci's command line, which postprocess.sh runs")
    )
    output: AciOutput | BundleOutput | LayoutOutput
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

    @classmethod
    def load(cls, environment: Mapping[str, str]) -> BuildSpec:
        """Read the build spec, the closure of its roots and the output path from a Nix build's ``environment``."""
        try:
            spec_path, build_top, out = (environment[name] for name in ("nix2aciSpecPath", "NIX_BUILD_TOP", "out"))
        except KeyError as error:
            raise Nix2AciError(f"not a nix2aci build: {error} is missing") from None
        try:
            with open(spec_path, encoding="utf-8") as file:
                document = json.load(file)
            # Checked before the closure is read: its files are counted by the roots.
            spec = cls.from_json(document, closure=Closure.from_registrations([]), out=out)
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

"""The build spec: the one document Nix writes for the builder.

Input: the build environment nix/builder.nix sets up: ``$nix2aciSpecPath``
names the build spec (a JSON file Nix writes from the derivation's
``nix2aciSpec``), ``closure-0``, ``closure-1``, ... in ``$NIX_BUILD_TOP`` are
the closures of the spec's roots (exportReferencesGraph) and ``$out`` is the
output path.
Output: a :class:`BuildSpec`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import Nix2AciError
from .closure import Closure


@attrs.frozen
class BuildSpec:
    """What to build, and from what.

    ``packages`` make the profile at the image root; the image holds the closure
    of ``roots`` (the packages, and for OCI the store paths its command names).
    ``sign``, ``compression`` and ``compression_level`` have defaults for the
    formats without them. ``command`` is the ``.drv`` file of
    nix2aci's command line, which the generated postprocess.sh runs.

    ``image`` holds the image's own arguments (name, version, exec, env, ...) as
    the user gave them to the Nix function, checked only for their types; the
    output format's module turns them into its manifest or config and validates that.
    ``rootfs`` says which basics the file tree gets (see :mod:`nix2aci.build.basics`).
    """

    format: str
    mode: str
    packages: tuple[str, ...]
    roots: tuple[str, ...]
    prefer: tuple[str, ...]
    image: dict[str, Any]
    rootfs: dict[str, Any]
    sign: bool
    compression: str
    compression_level: int | None
    closure: Closure
    out: str
    command: str

    @classmethod
    def load(cls, environment: Mapping[str, str]) -> BuildSpec:
        """Read the build spec, the closure and the output path from a Nix build's ``environment``."""
        try:
            with open(environment["nix2aciSpecPath"], encoding="utf-8") as file:
                spec = json.load(file)
            roots = tuple(spec["roots"])
            graphs = []
            for index in range(len(roots)):
                with open(os.path.join(environment["NIX_BUILD_TOP"], f"closure-{index}"), encoding="utf-8") as file:
                    graphs.append(file.read())
            return cls(
                format=spec["format"],
                mode=spec["mode"],
                packages=tuple(spec["packages"]),
                roots=roots,
                prefer=tuple(spec["prefer"]),
                image=spec["image"],
                rootfs=spec["rootfs"],
                sign=spec.get("sign", False),
                compression=spec.get("compression", "gzip"),
                compression_level=spec.get("compressionLevel"),
                closure=Closure.from_registrations(graphs),
                out=environment["out"],
                command=spec["command"],
            )
        except OSError as error:
            raise Nix2AciError(f"cannot read the build spec: {error}") from None
        except KeyError as error:
            raise Nix2AciError(f"not a nix2aci build: {error} is missing") from None
        except (TypeError, ValueError) as error:
            raise Nix2AciError(f"the build spec is malformed: {error}") from None

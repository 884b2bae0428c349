"""The build spec: the one document Nix writes for the builder.

Input: ``.attrs.json``, which Nix writes into the build directory for a
derivation with structured attributes (see nix/builder.nix). It holds
``nix2aci`` (the build spec proper), ``closure`` (exportReferencesGraph's
closure of the image's packages) and ``outputs.out``.
Output: a :class:`BuildSpec`.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .closure import Closure
from .errors import Nix2AciError


@attrs.frozen
class BuildSpec:
    """What to build, and from what.

    ``packages`` make the profile at the image root; the image holds the closure
    of ``roots`` (the packages, and for OCI the store paths its command names).
    ``sign``, ``compression`` and ``compression_level`` have defaults for the
    formats without them. ``python`` and ``source`` are the interpreter and the nix2aci source the
    build runs with; the generated postprocess.sh runs them too.

    ``image`` holds the image's own arguments (name, version, exec, env, ...) as
    the user gave them to the Nix function, checked only for their types; the
    output format's module turns them into its manifest or config and validates that.
    ``rootfs`` says which basics the file tree gets (see :mod:`nix2aci.basics`).
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
    python: str
    source: str

    @classmethod
    def load(cls, path: str) -> BuildSpec:
        """Read the build spec from a structured-attributes file."""
        try:
            with open(path, encoding="utf-8") as file:
                document = json.load(file)
            spec = document["nix2aci"]
            return cls(
                format=spec["format"],
                mode=spec["mode"],
                packages=tuple(spec["packages"]),
                roots=tuple(spec["roots"]),
                prefer=tuple(spec["prefer"]),
                image=spec["image"],
                rootfs=spec["rootfs"],
                sign=spec.get("sign", False),
                compression=spec.get("compression", "gzip"),
                compression_level=spec.get("compressionLevel"),
                closure=Closure.from_graph(document["closure"]),
                out=document["outputs"]["out"],
                python=spec["python"],
                source=spec["source"],
            )
        except OSError as error:
            raise Nix2AciError(f"cannot read the build spec: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise Nix2AciError(f"{path} is not a nix2aci build spec (missing or malformed {error})") from None

"""The entry point the derivations run: build what ``.attrs.json`` asks for.

Input: ``$NIX_BUILD_TOP/.attrs.json`` (see :mod:`nix2aci.spec`).
Output: the image files in ``$out``, and a summary line in the build log.
Errors are one ``nix2aci: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys

from . import aci
from .errors import Nix2AciError
from .spec import BuildSpec


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def main() -> int:
    """Build the spec in the current Nix build directory; return the exit status."""
    try:
        spec = BuildSpec.load(os.path.join(os.environ.get("NIX_BUILD_TOP", "."), ".attrs.json"))
        if spec.format != "aci":
            raise Nix2AciError(f"unknown output format {spec.format!r}")
        result = aci.build(spec)
    except Nix2AciError as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 1
    summary = result.archive
    print(
        f"nix2aci: wrote {os.path.basename(result.path)}: {summary.members} entries, "
        f"{_mib(summary.uncompressed_size)} tar, {_mib(summary.compressed_size)} {spec.compression}\n"
        f"nix2aci: image ID {result.image_id}",
        file=sys.stderr,
    )
    return 0

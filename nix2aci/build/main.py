"""The entry point the derivations run: build what the build spec asks for.

Input: the Nix build environment (see :mod:`nix2aci.build.spec`).
Output: the files of the spec's format in ``$out``, and a summary in the build log.
Errors are one ``nix2aci: error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys

from ..aci import build as aci
from ..errors import Nix2AciError
from ..oci import bundle, layout
from .spec import BuildSpec


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _aci(spec: BuildSpec) -> str:
    result = aci.build(spec)
    summary = result.archive
    return (
        f"wrote {os.path.basename(result.path)}: {summary.members} entries, "
        f"{_mib(summary.uncompressed_size)} tar, {_mib(summary.compressed_size)} {spec.output.compression}\n"
        f"image ID {result.image_id}"
    )


def _bundle(spec: BuildSpec) -> str:
    config = bundle.build(spec)
    return f"wrote an OCI runtime bundle running {config['process']['args']}"


def _layout(spec: BuildSpec) -> str:
    manifest = layout.build(spec)
    return f"wrote an OCI image layout tagged {spec.output.image.tag!r}, manifest {manifest.digest}"


# Output format (the build spec's "format", one of nix2aci.build.spec.OUTPUTS) -> its builder,
# which returns the log summary.
BUILDERS = {"aci": _aci, "oci-bundle": _bundle, "oci-layout": _layout}


def main() -> int:
    """Build the spec in the current Nix build directory; return the exit status."""
    try:
        spec = BuildSpec.load(os.environ)
        summary = BUILDERS[spec.format](spec)
    except Nix2AciError as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(f"nix2aci: {line}" for line in summary.splitlines()), file=sys.stderr)
    return 0

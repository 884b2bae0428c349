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
from ..oci import bundle, image, index, layer, layering
from .spec import BuildSpec, ImageSpec, IndexSpec, LayeringSpec, Spec, StoreLayerSpec, load


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


def _layering(spec: LayeringSpec) -> str:
    result = layering.build(spec)
    if result["storeInRootfs"]:
        return "the image's own files make one layer, its closure included"
    sizes = ", ".join(str(len(group)) for group in result["groups"])
    return f"{len(result['groups'])} store layers, of {sizes} store paths"


def _layer(spec: BuildSpec | StoreLayerSpec) -> str:
    built = layer.build_store_layer(spec) if isinstance(spec, StoreLayerSpec) else layer.build_rootfs_layer(spec)
    return f"wrote a layer of {_mib(built.descriptor.size)}, {built.descriptor.digest}"


def _image(spec: ImageSpec) -> str:
    config = image.build(spec)
    return f"wrote an OCI image ({spec.format}) tagged {spec.image.tag!r}, config {config.digest}"


def _index(spec: IndexSpec) -> str:
    descriptor = index.build(spec)
    platforms = ", ".join(str(image.platform) for image in spec.images)
    return f"wrote an OCI image index tagged {spec.tag!r} for {platforms}, {descriptor.digest}"


# The spec's "format" -> its builder, which returns the log summary.
BUILDERS = {
    "aci": _aci,
    "oci-bundle": _bundle,
    "oci-layering": _layering,
    "oci-store-layer": _layer,
    "oci-rootfs-layer": _layer,
    "oci-layout": _image,
    "docker-archive": _image,
    "oci-index": _index,
}


def main() -> int:
    """Build the spec in the current Nix build directory; return the exit status."""
    try:
        spec: Spec = load(os.environ)
        summary = BUILDERS[spec.format](spec)
    except Nix2AciError as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(f"nix2aci: {line}" for line in summary.splitlines()), file=sys.stderr)
    return 0

"""``nix2aci postprocess --build-output STORE_DIR [OUTDIR]``: what a build's ``postprocess.sh`` runs.

For ACIs (mkACI) :mod:`nix2aci.signing.postprocess`: link, GC-root, sign, verify.
For an OCI image (buildOCIImage, whose script adds ``--oci-layout NAME`` or
``--docker-archive FILE``) :mod:`nix2aci.oci_postprocess`: link, GC-root, and
push on ``--push DEST``.

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse

from ..errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``postprocess`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "postprocess", help="link, GC-root, sign and verify a build's images, or push an OCI image (postprocess.sh)"
    )
    command.add_argument(
        "--no-sign", dest="sign", action="store_false", help="only link (sign = false); an OCI image is pushed unsigned"
    )
    command.add_argument("--force", action="store_true", help="replace files or links of yours at the images' names")
    command.add_argument(
        "--build-output", dest="store_output", metavar="STORE_DIR", required=True, help="a build output"
    )
    image = command.add_mutually_exclusive_group()
    image.add_argument("--oci-layout", metavar="NAME", help="the output is an OCI image layout, linked as OUTDIR/NAME")
    image.add_argument("--docker-archive", metavar="FILE", help="the output holds the docker-archive FILE")
    command.add_argument(
        "--push", metavar="DEST", help="then push the OCI image: nix2aci push [--sign] OUTDIR/NAME DEST"
    )
    command.add_argument(
        "outdir", nargs="?", metavar="OUTDIR", help="where the links go (default: ./ACIs, ./images for an OCI image)"
    )
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Link, GC-root, sign and verify a build output's ACIs, or link and push its OCI image (postprocess.sh)."""
    oci = [
        (name, value)
        for name, value in (("oci-layout", options.oci_layout), ("docker-archive", options.docker_archive))
        if value is not None
    ]
    if oci:
        from .. import oci_postprocess

        ((image_format, name),) = oci
        return oci_postprocess.main(
            options.store_output, image_format, name, options.outdir, options.sign, options.force, options.push
        )
    if options.push is not None:
        raise UsageError("--push: only an OCI image (buildOCIImage) is pushed; this postprocess.sh is an ACI build's")
    from ..signing import postprocess

    return postprocess.main(options.store_output, options.outdir, sign=options.sign, force=options.force)

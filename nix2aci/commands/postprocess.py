"""``nix2aci postprocess --build-output STORE_DIR [OUTDIR]``: what a build's ``postprocess.sh`` runs.

For ACIs (mkACI) :mod:`nix2aci.signing.postprocess`: link, GC-root, sign, verify.
For an OCI image (buildOCIImage, whose script adds ``--oci-layout NAME`` or
``--docker-archive FILE``) :mod:`nix2aci.oci_postprocess`: link, GC-root, and
push on ``--push DEST``, with push's own registry options (``--registries.d``,
``--authfile``, ``--tls-verify``: :func:`push.add_registry_options`), checked as
push checks them before anything is linked.

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from . import push


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
        "--push",
        metavar="DEST",
        help="then push the OCI image: nix2aci push [--sign] [the options below] OUTDIR/NAME DEST",
    )
    push.add_registry_options(command)
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
    if options.push is not None and not oci:
        raise UsageError("--push: only an OCI image (buildOCIImage) is pushed; this postprocess.sh is an ACI build's")
    request = push_request(options)
    if oci:
        from .. import oci_postprocess

        ((image_format, name),) = oci
        return oci_postprocess.main(
            options.store_output, image_format, name, options.outdir, options.sign, options.force, request
        )
    from ..signing import postprocess

    return postprocess.main(options.store_output, options.outdir, sign=options.sign, force=options.force)


def push_request(options: argparse.Namespace):
    """``--push DEST`` and push's registry options, checked as ``nix2aci push`` checks them (a UsageError of one
    line), as an :class:`oci_postprocess.PushRequest`; None without ``--push``, when those options are refused."""
    from ..oci_postprocess import PushRequest

    if options.push is None:
        if (options.registries_d, options.authfile, options.tls_verify) != (None, None, None):
            raise UsageError("--registries.d, --authfile and --tls-verify say how to push: give them with --push DEST")
        return None
    from ..distribution import reference

    destination = reference.parse_destination(options.push, "--push")
    return PushRequest(destination, push.registry_options(options, need_registries_d=options.sign))

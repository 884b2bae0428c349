"""``nix2aci sbom IMAGE``: print the SBOM nix2aci built with an image (see :mod:`nix2aci.sbom`), or the one
pushed with it to a registry (``docker://``, :mod:`nix2aci.distribution.registry_sbom`)."""

from __future__ import annotations

import argparse
import sys

from .push import registry_options, tls_verify

REGISTRY = "docker://"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sbom`` to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "sbom",
        help="print an image's SBOM (SPDX 2.3 JSON)",
        description="Print the SPDX 2.3 SBOM nix2aci built with IMAGE: an ACI (the file its manifest names), an "
        "OCI image layout (its SBOM artifact), an OCI runtime bundle, or a docker-archive (.tar, or its "
        "directory), checked against the digest the image records; or, for docker://HOST[:PORT]/REPO:TAG, the "
        "SBOM pushed with it (a referrer of its manifest: the referrers API, else the tag sha256-<hex>), checked "
        "against the digests the registry lists. Exit status: 0 printed, 1 no SBOM or not the recorded one (or "
        "the registry failed), 2 IMAGE does not exist or is not a file or directory.",
    )
    command.add_argument("--authfile", metavar="FILE", help="docker://: credentials (default: containers')")
    command.add_argument("--tls-verify", type=tls_verify, default=True, metavar="true|false", help="default: true")
    command.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="docker:// image index: whose image (default: the host's)"
    )
    command.add_argument("image", metavar="IMAGE")
    command.set_defaults(handler=handle, registries_d=None)


def handle(options: argparse.Namespace) -> int:
    """Print the image's SBOM as it is stored."""
    from .. import sbom

    if options.image.startswith(REGISTRY):
        from ..distribution import reference, registry_sbom

        platform = registry_sbom.check_platform(options.platform) if options.platform is not None else None
        image = reference.parse_destination(options.image, "IMAGE")
        data = registry_sbom.fetch(image, registry_options(options, False), platform)
    else:
        data = sbom.find(options.image)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0

"""``nix2aci sbom IMAGE``: print the SBOM nix2aci built with an image (see :mod:`nix2aci.sbom`)."""

from __future__ import annotations

import argparse
import sys

from .. import sbom


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sbom`` to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "sbom",
        help="print an image's SBOM (SPDX 2.3 JSON)",
        description="Print the SPDX 2.3 SBOM nix2aci built with IMAGE: an ACI (the file its manifest names), an "
        "OCI image layout (its SBOM artifact), an OCI runtime bundle, or a docker-archive (.tar, or its "
        "directory), checked against the digest the image records. Exit status: 0 printed, 1 no SBOM or not the "
        "recorded one, 2 IMAGE does not exist or is not a file or directory.",
    )
    command.add_argument("image", metavar="IMAGE")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Print the image's SBOM as it is stored."""
    sys.stdout.buffer.write(sbom.find(options.image))
    sys.stdout.flush()
    return 0

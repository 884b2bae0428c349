"""``nix2aci inspect IMAGE``: an ACI's manifest, ID, sizes and file count, a docker-archive's images, or an OCI
image layout's images and artifacts (see
:mod:`nix2aci.inspect`)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``inspect`` to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "inspect",
        help="show an ACI's manifest, image ID, sizes and file count, or a docker-archive's or OCI layout's images",
        description="Check IMAGE as validate does and print, as JSON: of an ACI, its manifest, image ID, sizes and "
        "file count, from one read of the file; of a docker-archive (a tar not named .aci, or a directory holding "
        "only one), each image's tags, config and layers (member, size, digest, diffID, compression); of an OCI image "
        "layout, each image (an image index's, per platform: tag, platform, manifest digest, config, layers with "
        "digest, size, mediaType, diffID) and each artifact (artifactType, digest, subject). Exit status: "
        "0 shown, 1 invalid or not checkable (a layout missing a blob too), 2 IMAGE does not exist or is not a regular "
        "file or such a directory.",
    )
    command.add_argument("image", metavar="IMAGE")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Print what an image holds."""
    from .. import inspect

    print(json.dumps(inspect.inspect(options.image), indent=2))
    return 0

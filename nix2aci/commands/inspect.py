"""``nix2aci inspect IMAGE``: an ACI's manifest, ID, sizes and file count, or a docker-archive's images (see
:mod:`nix2aci.inspect`)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``inspect`` to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "inspect",
        help="show an ACI's manifest, image ID, sizes and file count, or a docker-archive's images",
        description="Check IMAGE as validate does and print, as JSON: of an ACI, its manifest, image ID, sizes and "
        "file count, from one read of the file; of a docker-archive (a tar not named .aci, or a directory holding "
        "only one), each image's tags, config and layers (member, size, digest, diffID, compression). Exit status: "
        "0 shown, 1 invalid or not checkable, 2 IMAGE does not exist or is not a regular file.",
    )
    command.add_argument("image", metavar="IMAGE")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Print what an image holds."""
    from .. import inspect

    print(json.dumps(inspect.inspect(options.image), indent=2))
    return 0

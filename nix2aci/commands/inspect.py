"""``nix2aci inspect IMAGE.aci``: an image's manifest, ID, sizes and file count (see :mod:`nix2aci.inspect`)."""

from __future__ import annotations

import argparse
import json

from .. import inspect


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``inspect`` to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "inspect",
        help="show an ACI's manifest, image ID, sizes and file count",
        description="Check IMAGE.aci as validate does and print its manifest, image ID, sizes and file count as "
        "JSON, from one read of the file. Exit status: 0 shown, 1 invalid or not checkable, 2 IMAGE does not exist "
        "or is not a regular file.",
    )
    command.add_argument("image", metavar="IMAGE.aci")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Print an image's manifest, ID, sizes and file count."""
    print(json.dumps(inspect.inspect(options.image), indent=2))
    return 0

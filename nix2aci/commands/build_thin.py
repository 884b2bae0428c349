"""``nix2aci build-thin NAME BINARY PKG...``: a thin ACI of packages, built with nix-build (see
:mod:`nix2aci.build_thin`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``build-thin`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "build-thin",
        help="build a thin ACI of packages with nix-build",
        description="Build a thin ACI named NAME of the packages PKG... of the package set, running the program "
        "BINARY found in their merged profile; leave OUTDIR/NAME.aci and OUTDIR/NAME.mounts.",
    )
    command.add_argument("--file", "-f", help="nix2aci's default.nix (default: $NIX2ACI_FILE, else this checkout's)")
    command.add_argument("--outdir", default="ACIs", help="where the links go (default: ./ACIs)")
    command.add_argument(
        "--force", action="store_true", help="replace files or links of yours at NAME.aci, NAME.mounts"
    )
    command.add_argument("name", metavar="NAME")
    command.add_argument("binary", metavar="BINARY")
    command.add_argument("packages", nargs="+", metavar="PKG")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Build a thin image of packages and link it into OUTDIR."""
    from .. import build_thin

    file = options.file or build_thin.default_file()
    links = build_thin.build_thin(options.name, options.binary, options.packages, file, options.outdir, options.force)
    for link in links:
        print(link)
    return 0

"""``nix2aci postprocess --build-output STORE_DIR [OUTDIR]``: what a build's ``postprocess.sh`` runs
(see :mod:`nix2aci.signing.postprocess`).

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``postprocess`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "postprocess", help="link, GC-root, sign and verify a build's images (postprocess.sh)"
    )
    command.add_argument("--no-sign", dest="sign", action="store_false", help="only link (mkACI sign = false)")
    command.add_argument("--force", action="store_true", help="replace files or links of yours at the images' names")
    command.add_argument(
        "--build-output", dest="store_output", metavar="STORE_DIR", required=True, help="a build output"
    )
    command.add_argument("outdir", nargs="?", metavar="OUTDIR", help="where the links go (default: ./ACIs)")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Link, GC-root, sign and verify a build output's images (what postprocess.sh runs)."""
    from ..signing import postprocess

    return postprocess.main(options.store_output, options.outdir, sign=options.sign, force=options.force)

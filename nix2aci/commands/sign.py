"""``nix2aci sign IMAGE.aci``: sign an image with the dedicated key (see :mod:`nix2aci.signing.openpgp`).

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sign`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser("sign", help="sign an ACI with the dedicated key (IMAGE.aci.asc)")
    command.add_argument("--key", help="fingerprint or user id (default: $NIX2ACI_SIGNING_KEY)")
    command.add_argument("image", metavar="IMAGE.aci")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Sign IMAGE.aci with the dedicated key into IMAGE.aci.asc, then verify it with the public key."""
    from ..signing import openpgp

    gpg, key = openpgp.find_key(wanted=options.key)
    signer = openpgp.sign_and_verify(gpg, key, options.image)
    print(f"{openpgp.signature_path(options.image)}: signed by {signer.name} ({signer.fingerprint}), {signer.digest}")
    return 0

"""``nix2aci verify IMAGE.aci``: check its signature with only a public keyring, as a consumer would.

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse
import os

from ..errors import Nix2AciError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``verify`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser("verify", help="verify IMAGE.aci.asc with only a public key, as a consumer would")
    command.add_argument("--keyring", metavar="pubkeys.gpg", help="armored public keys (default: the key home's)")
    command.add_argument("--signature", metavar="SIG.asc", help="default: IMAGE.aci.asc")
    command.add_argument("image", metavar="IMAGE.aci")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Verify IMAGE.aci.asc with only a public keyring; name the signer."""
    from ..signing import openpgp

    keyring = options.keyring or os.path.join(openpgp.default_home(), openpgp.PUBLIC_KEY_FILE)
    if not options.keyring and not os.path.isfile(keyring):
        raise Nix2AciError(f"no public keyring at {keyring}: pass --keyring pubkeys.gpg")
    signer = openpgp.verify_file(options.image, keyring, options.signature)
    print(f"{options.image}: good signature by {signer.name} ({signer.fingerprint}), {signer.digest}")
    return 0

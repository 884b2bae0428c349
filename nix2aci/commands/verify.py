"""``nix2aci verify IMAGE.aci`` or ``docker://HOST/REPO:TAG``: check its signature with only a public keyring, as a
consumer would. An ACI's is the detached ``IMAGE.aci.asc``; a registry image's are the simple signatures in the
registries.d lookaside (:mod:`nix2aci.distribution.simple_signing`).

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse
import os

from .. import inputs
from ..errors import Nix2AciError
from . import push


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``verify`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "verify", help="verify IMAGE.aci.asc, or a registry image's signatures, with only a public key"
    )
    command.add_argument("--keyring", metavar="pubkeys.gpg", help="armored public keys (default: the key home's)")
    command.add_argument("--signature", metavar="SIG.asc", help="default: IMAGE.aci.asc")
    push.add_registry_options(command)
    command.add_argument("image", metavar="IMAGE.aci|docker://HOST/REPO:TAG")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Verify IMAGE.aci.asc with only a public keyring; name the signer."""
    from ..signing import openpgp

    keyring = options.keyring or os.path.join(openpgp.default_home(), openpgp.PUBLIC_KEY_FILE)
    if not options.keyring and not os.path.isfile(keyring):
        raise Nix2AciError(f"no public keyring at {keyring}: pass --keyring pubkeys.gpg")
    if options.image.startswith("docker://"):
        return verify_registry_image(options, keyring)
    signer = openpgp.verify_file(options.image, keyring, options.signature)
    print(f"{options.image}: good signature by {signer.name} ({signer.fingerprint}), {signer.digest}")
    return 0


def verify_registry_image(options: argparse.Namespace, keyring: str) -> int:
    """Verify the simple signatures of the registry image ``options.image`` with the keys of ``keyring``."""
    from ..distribution import publish, reference

    destination = reference.parse_destination(options.image, "IMAGE")
    with inputs.open_input(keyring, "keyring") as file:
        keys = file.read()
    for platform, digest, signer in publish.verify_pushed(destination, keys, push.registry_options(options, True)):
        print(f"{destination}{f' {platform}' if platform else ''}: {digest} good signature by {signer}")
    return 0

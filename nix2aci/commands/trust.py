"""``nix2aci trust --prefix NAME | --root PUBKEYS...``: trust public keys to sign images (see
:mod:`nix2aci.signing.trust`).

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``trust`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "trust",
        help="trust the public keys in PUBKEYS to sign images (rkt's trust store)",
        description="Store each public key of PUBKEYS (armored) as trusted to sign images named NAME or NAME/... "
        "(--prefix) or every image (--root), in /etc/nix2aci/trustedkeys (as root) or "
        "${XDG_CONFIG_HOME:-~/.config}/nix2aci/trustedkeys; $NIX2ACI_TRUSTED_KEYS replaces both.",
    )
    scope = command.add_mutually_exclusive_group(required=True)
    scope.add_argument("--prefix", metavar="NAME", help="an image name (AC identifier) or a parent of image names")
    scope.add_argument("--root", dest="prefix", action="store_const", const=None, help="trust for every image")
    where = command.add_mutually_exclusive_group()
    where.add_argument("--system", dest="system", action="store_const", const=True, help="/etc/nix2aci/trustedkeys")
    where.add_argument("--user", dest="system", action="store_const", const=False, help="the per-user store")
    command.add_argument("pubkeys", nargs="+", metavar="PUBKEYS")
    command.set_defaults(handler=handle, system=None)


def handle(options: argparse.Namespace) -> int:
    """Store the keys of PUBKEYS as trusted for a prefix or every image; show what was trusted, and where."""
    from ..signing import trust

    store = trust.store_to_write(options.system)
    for pubkeys in options.pubkeys:
        for key in trust.trust(pubkeys, options.prefix, store):
            scope = f"images named {options.prefix} or {options.prefix}/..." if options.prefix else "every image"
            print(f"trusted {key.fingerprint} ({key.uid}) for {scope}: {key.path}")
    return 0

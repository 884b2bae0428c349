"""``nix2aci prepare-signing-key``: create the dedicated GnuPG key nix2aci signs images with
(scripts/prepare-signing-key runs it).

python-gnupg is imported when the command runs: only the signing commands need it.
"""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare-signing-key`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "prepare-signing-key", help="create the dedicated GnuPG key nix2aci signs images with"
    )
    command.add_argument("--home", help="the GnuPG home (default: $NIX2ACI_GNUPGHOME or ~/.config/nix2aci/gnupg)")
    command.add_argument("--name", help="the key's user id name")
    command.add_argument("--email", help="the key's user id email")
    command.add_argument("--bits", type=int, choices=(3072, 4096), default=3072, help="RSA key size")
    command.add_argument(
        "--no-protection", action="store_true", help="no passphrase (CI, tests): whoever reads the home can sign"
    )
    command.add_argument("--force", action="store_true", help="replace an existing key (the old home is moved aside)")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Create the dedicated signing key (scripts/prepare-signing-key); print how to trust it."""
    from ..signing import openpgp

    home = os.path.abspath(options.home) if options.home else openpgp.default_home()
    key, public, retired = openpgp.prepare_key(
        home,
        options.name or openpgp.default_name(),
        options.email,
        bits=options.bits,
        protect=not options.no_protection,
        force=options.force,
    )
    if retired:
        print(f"moved the old key home to {retired}")
    print(f"signing key: {key.fingerprint} ({key.uid}), RSA-{options.bits}")
    print(f"key home:    {home}{' (no passphrase)' if options.no_protection else ''}")
    print(f"public key:  {public}")
    print("trust it in rkt for images whose name starts with NAME:")
    print(f"  sudo rkt trust --prefix=NAME {public}")
    print(f"  (rkt keeps it as /etc/rkt/trustedkeys/prefix.d/NAME/{key.fingerprint.lower()})")
    return 0

"""``nix2aci policy --key PUBKEYS --registry HOST[/REPO]``: the files a consumer installs so that podman,
CRI-O and skopeo accept only images from that registry signed by that key (see
:mod:`nix2aci.distribution.policy`)."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``policy`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser(
        "policy", help="write policy.json and registries.d for consumers of images signed with a key"
    )
    command.add_argument("--key", required=True, metavar="PUBKEYS", help="armored public keys (pubkeys.gpg)")
    command.add_argument("--registry", required=True, metavar="HOST[/REPO]", help="the images the rule covers")
    command.add_argument("--lookaside", metavar="URL", help="where signatures are read (default: registries.d's)")
    command.add_argument("--registries.d", dest="registries_d", metavar="DIR", help="read --lookaside's default here")
    command.add_argument("--output", default=".", metavar="DIR", help="default: the current directory")
    command.add_argument("--force", action="store_true", help="replace existing files")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Check the key, registry and lookaside; write the two files; print their paths."""
    from ..distribution import policy, publish, reference, registries_d
    from ..errors import Nix2AciError

    scope = reference.parse_scope(options.registry)
    policy.check_public_keys(options.key)
    lookaside = options.lookaside
    if lookaside is None:
        directory = publish.default_registries_d(options.registries_d)
        stores = registries_d.stores_for(directory, scope)
        if stores is None or stores.read is None:
            raise Nix2AciError(f"{directory} configures no lookaside for {scope}: pass --lookaside URL")
        lookaside = stores.read
    written = policy.write_consumer_files(
        scope, os.path.abspath(options.key), policy.check_lookaside(lookaside), options.output, options.force
    )
    for path in written:
        print(path)
    return 0

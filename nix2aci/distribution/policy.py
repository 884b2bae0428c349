"""What a consumer needs to accept only images signed by a key: a policy.json and a registries.d file.

- ``policy.json`` (containers-policy.json(5)) is complete, ready for ``--policy`` /
  ``--signature-policy`` or for /etc/containers/policy.json: its ``transports.docker`` entry
  for ``HOST[/REPO]`` requires a ``signedBy`` GPGKeys signature by the given public keys
  (``keyPath``: their absolute path), with the default identity rule (the signature must name
  the exact tag pulled, or its digest). Everything else keeps containers' shipped default,
  ``insecureAcceptAnything``: the file narrows one registry, it does not lock the machine.
  A consumer who wants the reverse edits ``default`` to ``[{"type": "reject"}]``.
- ``registries.d/nix2aci-<registry>.yaml`` (containers-registries.d(5)) tells where the
  signatures are read: ``docker: HOST[/REPO]: lookaside: URL``.

Neither file replaces one that exists unless asked (``force``); a directory is never replaced.
"""

from __future__ import annotations

import json
import os
import re

from .. import inputs
from ..errors import Nix2AciError, UsageError
from ..signing import openpgp
from ..signing.atomic import write_atomically

ACCEPT_ANYTHING = [{"type": "insecureAcceptAnything"}]
LOOKASIDE_SCHEMES = ("file://", "http://", "https://")


def policy_document(scope: str, key_path: str) -> dict:
    """The policy.json requiring signatures by the keys at ``key_path`` for images under ``scope``."""
    rule = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": key_path}
    return {"default": ACCEPT_ANYTHING, "transports": {"docker": {scope: [rule]}}}


def registries_document(scope: str, lookaside: str) -> dict:
    """The registries.d document saying that ``scope``'s signatures are at ``lookaside``."""
    return {"docker": {scope: {"lookaside": lookaside}}}


def registries_file_name(scope: str) -> str:
    """``nix2aci-<scope>.yaml`` with the scope's '/' and ':' made '_'."""
    return "nix2aci-" + re.sub(r"[/:]", "_", scope) + ".yaml"


def check_public_keys(path: str) -> None:
    """``path`` must hold armored OpenPGP public keys, and no secret key."""
    with inputs.open_input(path, "--key") as file:
        keys = file.read(openpgp.SIGNATURE_LIMIT + 1)
    if b"PRIVATE KEY BLOCK" in keys:
        raise UsageError(f"--key {path} holds a SECRET key: give consumers the public key (gpg --armor --export)")
    with openpgp.public_keyring(keys, f"--key {path}"):
        pass


def check_lookaside(url: str) -> str:
    """A lookaside URL must be file://, http:// or https://."""
    if not url.startswith(LOOKASIDE_SCHEMES) or any(character.isspace() for character in url):
        raise UsageError(f"--lookaside {url!r}: give a file://, http:// or https:// URL")
    return url


def write_consumer_files(scope: str, key_path: str, lookaside: str, output: str, force: bool = False) -> list[str]:
    """Write ``OUTPUT/policy.json`` and ``OUTPUT/registries.d/<name>.yaml``; return their paths.

    Both destinations are checked before either is written: an existing file stops the run with one
    line unless ``force``, a directory always does.
    """
    import yaml  # PyYAML: only the publishing commands need it

    files = {
        os.path.join(output, "policy.json"): json.dumps(policy_document(scope, key_path), indent=2) + "\n",
        os.path.join(output, "registries.d", registries_file_name(scope)): yaml.safe_dump(
            registries_document(scope, lookaside), default_flow_style=False
        ),
    }
    for path in files:
        if os.path.isdir(path):
            raise Nix2AciError(f"{path} is a directory: choose another --output")
        if os.path.lexists(path) and not force:
            raise Nix2AciError(f"{path} exists: pass --force to replace it, or choose another --output")
    for path, text in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, text.encode())
    return list(files)

"""Trusted keys, as rkt kept them, and checking an image's signature against them.

``nix2aci trust (--prefix NAME | --root) PUBKEYS`` stores each public key of
PUBKEYS (armored, one key per file, named by its fingerprint in lower case) as

- ``STORE/prefix.d/NAME/<fingerprint>``: trusted for images named NAME or
  NAME/... (NAME is an AC identifier, so it may hold ``/``: nested directories);
- ``STORE/root.d/<fingerprint>``: trusted for every image.

STORE is the system-wide ``/etc/nix2aci/trustedkeys`` (what ``sudo nix2aci
run`` reads, and where root writes by default) or the per-user
``${XDG_CONFIG_HOME:-~/.config}/nix2aci/trustedkeys`` (where other users write by
default). ``$NIX2ACI_TRUSTED_KEYS=DIR`` replaces both with DIR, for reading and
writing (tests, and the quickstart's throw-away trust).

:func:`verify_trusted` checks a detached signature against every trusted key
of every store, with :func:`nix2aci.signing.openpgp.verify_stream`, and says which
prefixes the signer is trusted for; :meth:`TrustedSignature.covers` applies
the prefix rule to an image name.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import BinaryIO

from .. import inputs
from ..appc import is_ac_identifier
from ..errors import Nix2AciError
from . import openpgp
from .atomic import write_atomically

SYSTEM_STORE = "/etc/nix2aci/trustedkeys"
KEY_FILE_LIMIT = 1 << 20
FINGERPRINT_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # v4 keys; v5 keys have 32-byte fingerprints
HOW_TO_TRUST = (
    "trust the signer's public key with `nix2aci trust --prefix NAME PUBKEYS` (or --root for every image), "
    "or skip the check with --insecure-options=image"
)


@dataclass(frozen=True)
class TrustedKey:
    """A key :func:`trust` stored: its primary fingerprint (upper case, as gpg shows it), first user id, file."""

    fingerprint: str
    uid: str
    path: str


@dataclass(frozen=True)
class TrustedSignature:
    """A good signature by a trusted key.

    ``digest``: the hex SHA-512 of the bytes checked; ``prefixes``: the names
    the signer is trusted for, ``""`` for a root key.
    """

    signer: openpgp.Signer
    digest: str
    prefixes: tuple[str, ...]

    def covers(self, image_name: str) -> bool:
        """Whether the signer is trusted for ``image_name``: a root key, or a prefix that is the name or a parent.

        ``example.com/app`` covers ``example.com/app`` and ``example.com/app/db``,
        never ``example.com/application`` (rkt matched plain strings there; we
        match whole components).
        """
        return any(prefix in ("", image_name) or image_name.startswith(prefix + "/") for prefix in self.prefixes)


def user_store() -> str:
    """The per-user store: ``${XDG_CONFIG_HOME:-$HOME/.config}/nix2aci/trustedkeys``."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "nix2aci", "trustedkeys")


def stores() -> list[str]:
    """The stores keys are read from: ``$NIX2ACI_TRUSTED_KEYS`` alone, else the system's and the user's."""
    if os.environ.get("NIX2ACI_TRUSTED_KEYS"):
        return [os.path.abspath(os.environ["NIX2ACI_TRUSTED_KEYS"])]
    return [SYSTEM_STORE, user_store()]


def store_to_write(system: bool | None) -> str:
    """Where :func:`trust` writes: ``$NIX2ACI_TRUSTED_KEYS``; else the system store when ``system`` (default:
    when we run as root), the user's otherwise."""
    if os.environ.get("NIX2ACI_TRUSTED_KEYS"):
        return os.path.abspath(os.environ["NIX2ACI_TRUSTED_KEYS"])
    if system is None:
        system = os.geteuid() == 0
    return SYSTEM_STORE if system else user_store()


def key_directory(store: str, prefix: str | None) -> str:
    """``STORE/prefix.d/PREFIX`` (a checked AC identifier), or ``STORE/root.d`` when ``prefix`` is None."""
    if prefix is None:
        return os.path.join(store, "root.d")
    if not is_ac_identifier(prefix):
        raise Nix2AciError(
            f"--prefix {prefix!r} is not an AC identifier (an image name: lower-case letters and digits "
            "separated by single - . _ ~ /, like example.com/app)"
        )
    return os.path.join(store, "prefix.d", prefix)


def _primary_keys(home: str) -> list[tuple[str, str]]:
    """(fingerprint, first user id) of every primary public key in ``home``.

    gpg lists ``pub``, its ``fpr``, its ``uid`` lines, then ``sub`` and their ``fpr``:
    the first fpr and uid after each pub are the primary key's.
    """
    listing = openpgp.run_gpg(home, ["--with-colons", "--list-keys"]).stdout.decode("utf-8", "replace")
    keys: list[dict[str, str]] = []
    for fields in (line.split(":") for line in listing.splitlines()):
        if fields[0] == "pub":
            keys.append({})
        elif fields[0] in ("fpr", "uid") and keys:
            keys[-1].setdefault(fields[0], fields[9])
    return [(key["fpr"], key.get("uid", "")) for key in keys if "fpr" in key]


def _read_bounded(path: str, what: str) -> bytes:
    """The bytes of the regular file ``path`` (at most :data:`KEY_FILE_LIMIT`); one line naming ``what`` otherwise."""
    with inputs.open_input(path, what) as file:
        data = file.read(KEY_FILE_LIMIT + 1)
    if len(data) > KEY_FILE_LIMIT:
        raise Nix2AciError(f"{what} {path} is larger than {KEY_FILE_LIMIT} bytes: not a public key")
    return data


def trust(pubkeys: str, prefix: str | None, store: str) -> list[TrustedKey]:
    """Store every public key of the file ``pubkeys`` in ``store`` for ``prefix`` (None: a root key).

    Each key is exported on its own, armored, to ``<key directory>/<fingerprint in lower case>``
    (atomically; directories 0755, files 0644). Returns what was stored. A
    file that holds no OpenPGP public key is refused with one line.
    """
    directory = key_directory(store, prefix)
    armored = _read_bounded(pubkeys, "PUBKEYS")
    with openpgp.public_keyring(armored, f"PUBKEYS {pubkeys}") as home:
        keys = _primary_keys(home)
        exported = {fpr: openpgp.run_gpg(home, ["--armor", "--export", fpr]).stdout for fpr, _uid in keys}
    os.makedirs(directory, mode=0o755, exist_ok=True)
    stored = []
    for fingerprint, uid in keys:
        path = os.path.join(directory, fingerprint.lower())
        write_atomically(path, exported[fingerprint], mode=0o644)
        stored.append(TrustedKey(fingerprint, uid, path))
    return stored


def _key_files(store: str) -> list[tuple[str, str]]:
    """(prefix, path) of every key file of ``store``: ``""`` for root.d; names that are not fingerprints are skipped.

    Never follows a symlinked directory; only non-empty regular files count.
    """
    found = []
    for kind in ("root.d", "prefix.d"):
        top = os.path.join(store, kind)
        for directory, _subdirectories, files in os.walk(top):
            prefix = "" if kind == "root.d" else os.path.relpath(directory, top)
            if (kind == "root.d" and directory != top) or prefix == ".":
                continue  # root.d is flat; files right in prefix.d name no prefix
            for name in files:
                path = os.path.join(directory, name)
                status = os.lstat(path)
                if FINGERPRINT_NAME.fullmatch(name) and stat.S_ISREG(status.st_mode) and status.st_size:
                    found.append((prefix, path))
    return found


def trusted_keys() -> tuple[dict[str, set[str]], bytes]:
    """Every trusted key of every store: {fingerprint in lower case: its prefixes}, and all their bytes.

    A fingerprint counts as the file's name says; a file holding another key
    than its name gives that key no trust (verification reports the key it found).
    """
    prefixes: dict[str, set[str]] = {}
    keys = []
    for store in stores():
        for prefix, path in _key_files(store):
            keys.append(_read_bounded(path, "the trusted key"))
            prefixes.setdefault(os.path.basename(path), set()).add(prefix)
    return prefixes, b"\n".join(keys)


def verify_trusted(data: BinaryIO, signature: str) -> TrustedSignature:
    """Check the detached armored signature file ``signature`` of the bytes of ``data`` against all trusted keys.

    Output: the signer, the hex SHA-512 of all the bytes read, and the prefixes
    the signer is trusted for (check them with :meth:`TrustedSignature.covers`).
    Raises :class:`Nix2AciError` saying how to trust a key or skip the check when
    the signature is missing, refused, or made by a key nobody trusts.
    """
    if not os.path.lexists(signature):
        raise Nix2AciError(f"the image is not signed: {signature} does not exist; sign it, {HOW_TO_TRUST}")
    armored = openpgp.read_signature(signature)
    prefixes, keys = trusted_keys()
    if not prefixes:
        raise Nix2AciError(f"no trusted keys in {' or '.join(stores())} to check {signature}: {HOW_TO_TRUST}")
    with openpgp.public_keyring(keys, "the trusted keys") as home:
        try:
            signer, digest = openpgp.verify_stream(home, data, armored)
        except openpgp.UnknownSigner as error:
            raise Nix2AciError(
                f"{signature}: signed by key {error.key_id}, which is not trusted: {HOW_TO_TRUST}"
            ) from None
        except Nix2AciError as error:
            raise Nix2AciError(f"{signature} is refused: {error}; {HOW_TO_TRUST}") from None
    trusted_for = prefixes.get(signer.fingerprint.lower())
    if not trusted_for:
        raise Nix2AciError(f"{signature}: signed by {signer.fingerprint}, which is not trusted: {HOW_TO_TRUST}")
    return TrustedSignature(signer, digest, tuple(sorted(trusted_for)))

"""The login nix2aci's own registry requests use: the one skopeo would, from the same auth file.

Input: the image's ``HOST[:PORT]/REPO`` and ``--authfile`` (or None). Output: a user and password, or None
(anonymous). The files read, as containers-auth.json(5) says: ``--authfile``, else ``REGISTRY_AUTH_FILE``,
else the first of ``${XDG_RUNTIME_DIR}/containers/auth.json``, ``${XDG_CONFIG_HOME:-~/.config}/containers/
auth.json`` and ``~/.docker/config.json`` that has an entry for the registry. An entry is the most specific
of ``HOST/REPO`` ... ``HOST`` (Docker's ``https://HOST/v1/`` keys too); its ``auth`` is base64 of
``USER:PASSWORD``. Credential helpers are not run: a registry only they know is reached anonymously.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from .. import inputs
from ..errors import Nix2AciError

# An auth file holds a few logins; more is not one.
AUTH_FILE_LIMIT = 1 << 20


def auth_files(authfile: str | None) -> list[str]:
    """The auth files to look in, in order (see the module's docstring)."""
    if authfile is not None:
        return [authfile]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [os.environ["REGISTRY_AUTH_FILE"]]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return [
        os.path.join(runtime, "containers", "auth.json"),
        os.path.join(config, "containers", "auth.json"),
        os.path.expanduser("~/.docker/config.json"),
    ]


def _key_name(key: str) -> str:
    """An ``auths`` key as ``HOST[/REPO]``: Docker's ``https://HOST/v1/`` keys name the host only."""
    if "://" in key:
        return key.split("://", 1)[1].split("/", 1)[0]
    return key


def _entries(path: str) -> dict[str, dict]:
    """The ``auths`` of the auth file ``path`` by ``HOST[/REPO]``; {} when it does not exist."""
    if not os.path.exists(path):
        return {}
    with inputs.open_input(path, "--authfile") as file:
        data = file.read(AUTH_FILE_LIMIT + 1)
    if len(data) > AUTH_FILE_LIMIT:
        raise Nix2AciError(f"auth file {inputs.shown(path)} is over {AUTH_FILE_LIMIT} bytes: it is no auth file")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise Nix2AciError(f"auth file {inputs.shown(path)} is not JSON") from None
    auths = document.get("auths") if isinstance(document, dict) else None
    if auths is None:
        return {}
    if not isinstance(auths, dict) or not all(isinstance(entry, dict) for entry in auths.values()):
        raise Nix2AciError(f"auth file {inputs.shown(path)}: auths must map registries to objects")
    return {_key_name(key): entry for key, entry in auths.items()}


def _decoded(entry: dict, path: str, key: str) -> tuple[str, str]:
    """The user and password of an ``auths`` entry (base64 ``USER:PASSWORD`` in ``auth``)."""
    try:
        user, colon, password = base64.b64decode(entry.get("auth") or "", validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, TypeError):
        colon = ""
    if not colon:
        raise Nix2AciError(f"auth file {inputs.shown(path)}: auths[{key!r}].auth is not base64 of USER:PASSWORD")
    return user, password


def login(name: str, authfile: str | None) -> tuple[str, str] | None:
    """The user and password for the image ``name`` (``HOST[:PORT]/REPO``), or None (see the module's docstring)."""
    parts = name.split("/")
    keys = ["/".join(parts[:count]) for count in range(len(parts), 0, -1)]
    for path in auth_files(authfile):
        entries = _entries(path)
        for key in keys:
            if key in entries and entries[key].get("auth"):
                return _decoded(entries[key], path, key)
    return None

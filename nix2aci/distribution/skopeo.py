"""The one place nix2aci runs skopeo: copying an image to its destination, reading a manifest.

- ``skopeo copy --preserve-digests``: layers travel as they are, never recompressed, so the
  manifest digest in the registry is the one nix2aci built; blobs the destination already holds
  are not uploaded (skopeo asks the registry first). Docker Engine (``docker-daemon:``) is the
  exception: it takes only Docker's manifest, so skopeo writes one (the layers stay as they are).
- Credentials come from ``--authfile`` (or containers' default, ``REGISTRY_AUTH_FILE``); TLS is
  verified unless the caller says otherwise.
- Progress bars when stdout is a terminal, ``--quiet`` otherwise.
- skopeo's error becomes one line (:func:`explain`): an unreachable registry, a refused login,
  a missing tag, a TLS problem, or skopeo's own message.
- The source is the user's own build result: nix2aci reads it under a policy of its own that
  accepts local layouts and archives and nothing else, whatever the user's policy.json says
  about images from elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .. import inputs
from ..errors import Nix2AciError

# What nix2aci reads its own results under: local sources only.
SOURCE_POLICY = {
    "default": [{"type": "reject"}],
    "transports": {
        transport: {"": [{"type": "insecureAcceptAnything"}]} for transport in ("oci", "docker-archive", "oci-archive")
    },
}
MANIFEST_LIMIT = 4 << 20


@dataclass(frozen=True)
class Options:
    """How to reach a registry: an auth file (None: containers' default), whether TLS is verified, and the
    registries.d directory (None: containers' default)."""

    authfile: str | None = None
    tls_verify: bool = True
    registries_d: str | None = None


def _message(stderr: str) -> str:
    """skopeo's own error text: the last ``msg="..."`` of its log lines, else its last line."""
    messages = re.findall(r'msg="((?:[^"\\]|\\.)*)"', stderr)
    if messages:
        message = messages[-1].encode().decode("unicode_escape", "replace")
        # A registry's own text can hold line breaks or terminal controls: then skopeo's escaped form is shown.
        return message if message.isprintable() else messages[-1]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return inputs.shown(lines[-1]) if lines else "skopeo gave no reason"


def explain(stderr: str, where: str) -> str:
    """One line for skopeo's failure (its ``stderr``), ``where`` naming the registry or image concerned."""
    message = _message(stderr)
    if re.search(r"connection refused|no such host|i/o timeout|network is unreachable|no route to host", message):
        return f"cannot reach the registry {where}: {message}"
    if re.search(r"\b401\b|unauthorized|authentication required|invalid username/password", message, re.I):
        return (
            f"the registry {where} refused the login (401 unauthorized): give credentials with --authfile FILE "
            f"(or REGISTRY_AUTH_FILE; podman login / skopeo login write it): {message}"
        )
    if re.search(r"manifest unknown|not found|no descriptor found for reference|does not exist", message, re.I):
        return f"{where}: no such image or tag: {message}"
    if re.search(r"x509|certificate|HTTP response to HTTPS client|tls:", message):
        return f"{where}: TLS failed (--tls-verify=false for a registry that serves plain HTTP): {message}"
    return f"{where}: {message}"


@contextmanager
def _source_policy() -> Iterator[str]:
    """A policy.json accepting only local sources (SOURCE_POLICY), removed afterwards; yields its path."""
    with tempfile.NamedTemporaryFile("w", prefix="nix2aci-policy-", suffix=".json") as policy:
        json.dump(SOURCE_POLICY, policy)
        policy.flush()
        yield policy.name


def _run(arguments: list[str], where: str, *, capture: bool = True, env: dict | None = None) -> bytes:
    """Run ``skopeo ARGUMENTS``; its stdout when ``capture``, else it writes to ours. One line on failure."""
    try:
        result = subprocess.run(
            ["skopeo", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise Nix2AciError("skopeo is not installed (Debian: apt-get install skopeo)") from None
    if result.returncode != 0:
        raise Nix2AciError(explain(result.stderr.decode("utf-8", "replace"), where))
    return result.stdout or b""


def _common(options: Options) -> list[str]:
    """The global options that apply to every command."""
    return ["--registries.d", options.registries_d] if options.registries_d else []


def copy(
    source: str,
    destination: str,
    where: str,
    options: Options,
    *,
    all_images: bool = False,
    sign_by: str | None = None,
    gnupg_home: str | None = None,
) -> None:
    """``skopeo copy --preserve-digests SOURCE DESTINATION`` (both transport references).

    ``where`` names the destination in errors; ``all_images`` copies every image of an index;
    ``sign_by`` (a fingerprint in the GnuPG home ``gnupg_home``) signs the manifest the simple-signing
    way, stored where ``options.registries_d`` says.
    """
    show_progress = sys.stdout.isatty()
    with _source_policy() as policy:
        arguments = [*_common(options), "--policy", policy, "copy"]
        # Docker Engine takes Docker's manifest only: skopeo converts the OCI one, which changes its digest.
        arguments += [] if destination.startswith("docker-daemon:") else ["--preserve-digests"]
        arguments += [] if show_progress else ["--quiet"]
        arguments += ["--all"] if all_images else []
        if destination.startswith("docker://"):
            arguments += [f"--dest-tls-verify={'true' if options.tls_verify else 'false'}"]
            arguments += ["--dest-authfile", options.authfile] if options.authfile else []
        elif destination.startswith("docker-daemon:") and os.environ.get("DOCKER_HOST"):
            arguments += ["--dest-daemon-host", os.environ["DOCKER_HOST"]]
        arguments += ["--sign-by", sign_by] if sign_by else []
        env = {**os.environ, "GNUPGHOME": gnupg_home} if gnupg_home else None
        _run([*arguments, source, destination], where, capture=False, env=env)


def raw_manifest(reference: str, where: str, options: Options) -> bytes:
    """The exact bytes of the manifest of ``reference`` (``docker://HOST/REPO:TAG``), as the registry serves it."""
    arguments = [*_common(options), "inspect", "--raw", f"--tls-verify={'true' if options.tls_verify else 'false'}"]
    arguments += ["--authfile", options.authfile] if options.authfile else []
    manifest = _run([*arguments, reference], where)
    if len(manifest) > MANIFEST_LIMIT:
        raise Nix2AciError(f"{where}: the manifest is larger than {MANIFEST_LIMIT} bytes")
    return manifest

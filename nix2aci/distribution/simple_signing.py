"""containers "simple signing": a GnuPG-signed claim that a manifest digest is a named image.

A signature is an OpenPGP message (``gpg --sign``: binary, holding its data) whose data is the
JSON "atomic container signature" (containers-signature(5))::

    {"critical": {"type": "atomic container signature",
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "identity": {"docker-reference": "HOST/REPO:TAG"}},
     "optional": {"creator": "...", "timestamp": 1700000000}}

A lookaside store (:mod:`nix2aci.distribution.registries_d`) keeps the signatures of
``HOST/REPO`` at digest ``sha256:HEX`` as ``<lookaside>/REPO@sha256=HEX/signature-1``, ``-2``, ...;
a reader stops at the first missing number. ``nix2aci push --sign`` has skopeo write them
(``--sign-by``); :func:`verify` reads and checks them as containers/image does for a
``signedBy`` policy with the default ``matchRepoDigestOrExact`` identity: some signature by a
trusted key names this digest and exactly this ``HOST/REPO:TAG``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .. import inputs
from ..errors import Nix2AciError
from ..signing import openpgp
from .deadline import PastDeadline, within

SIGNATURE_TYPE = "atomic container signature"
SIGNATURE_LIMIT = 4 << 20
# Past this many, a store is not one nix2aci should read to the end.
MOST_SIGNATURES = 64
FETCH_TIMEOUT = 30


@dataclass(frozen=True)
class Claim:
    """What a signature's data says: the manifest digest and the image it is."""

    digest: str
    identity: str


def parse_claim(data: bytes) -> Claim:
    """The claim of a signature's data; one line naming the field that breaks containers-signature(5)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise Nix2AciError("its data is not JSON") from None
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict):
        raise Nix2AciError("its data has no critical object")
    if critical.get("type") != SIGNATURE_TYPE:
        raise Nix2AciError(f"critical.type is {critical.get('type')!r}, not {SIGNATURE_TYPE!r}")
    image, identity = critical.get("image"), critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(digest, str) or not isinstance(reference, str):
        raise Nix2AciError("critical.image.docker-manifest-digest or critical.identity.docker-reference is missing")
    return Claim(digest, reference)


def signature_url(lookaside: str, repository: str, digest: str, number: int) -> str:
    """The URL of signature ``number`` (from 1) of ``repository`` (no host) at ``digest`` in a lookaside store."""
    algorithm, _, hexadecimal = digest.partition(":")
    return f"{lookaside.rstrip('/')}/{repository}@{algorithm}={hexadecimal}/signature-{number}"


def _fetch_http(url: str) -> bytes:
    """The first SIGNATURE_LIMIT + 1 bytes at the http(s) ``url``, read within FETCH_TIMEOUT seconds in all."""

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            return response.read(SIGNATURE_LIMIT + 1)

    try:
        return within(FETCH_TIMEOUT, fetch)
    except PastDeadline:
        raise Nix2AciError(f"cannot read the signature {url}: no whole answer within {FETCH_TIMEOUT} s") from None


def _fetch(url: str) -> bytes | None:
    """The bytes at a ``file://``, ``http://`` or ``https://`` URL; None when there is nothing there."""
    parsed = urllib.parse.urlparse(url)
    try:
        if parsed.scheme == "file":
            # Opened as a user's input: a FIFO or device there would block the read for ever.
            with inputs.open_input(urllib.parse.unquote(parsed.path), "the signature") as file:
                return file.read(SIGNATURE_LIMIT + 1)
        if parsed.scheme in ("http", "https"):
            return _fetch_http(url)
    except inputs.InputError as error:  # a store's content, not the command line's: no usage error
        if error.missing:
            return None
        raise Nix2AciError(str(error)) from None
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise Nix2AciError(f"cannot read the signature {url}: HTTP {error.code}") from None
    except (OSError, urllib.error.URLError) as error:
        raise Nix2AciError(f"cannot read the signature {url}: {getattr(error, 'reason', None) or error}") from None
    raise Nix2AciError(f"the lookaside {url} is not a file://, http:// or https:// URL")


def read_signatures(lookaside: str, repository: str, digest: str) -> list[tuple[str, bytes]]:
    """``(url, bytes)`` of each signature of ``repository`` at ``digest`` in the store ``lookaside``."""
    found = []
    for number in range(1, MOST_SIGNATURES + 1):
        url = signature_url(lookaside, repository, digest, number)
        data = _fetch(url)
        if data is None:
            break
        if len(data) > SIGNATURE_LIMIT:
            raise Nix2AciError(f"{url} is larger than {SIGNATURE_LIMIT} bytes: not a signature")
        found.append((url, data))
    return found


def verify(signatures: list[tuple[str, bytes]], keys: bytes, reference: str, digest: str) -> openpgp.Signer:
    """The signer of the first of ``signatures`` that a key of ``keys`` (armored public keys) made and that
    claims ``digest`` is ``reference`` (``HOST/REPO:TAG``); one line listing why each was refused otherwise."""
    if not signatures:
        raise Nix2AciError(f"{reference} ({digest}) has no signature")
    refusals = []
    with openpgp.public_keyring(keys) as home:
        for url, data in signatures:
            try:
                signer, payload = openpgp.verify_attached(home, data)
                claim = parse_claim(payload)
                if claim.digest != digest:
                    raise Nix2AciError(f"it signs the manifest {claim.digest}, not {digest}")
                if claim.identity != reference:
                    raise Nix2AciError(f"it signs the image {claim.identity}, not {reference}")
                return signer
            except Nix2AciError as error:
                refusals.append(f"{os.path.basename(url)}: {error}")
    raise Nix2AciError(f"{reference} ({digest}): no signature is accepted: {'; '.join(refusals)}")

"""The OpenPGP packets of a detached signature, read before gpg sees it (RFC 4880: armor 6.2, packet headers 4.2).

gpg's ``--verify`` processes whatever packets it is given before it finds that
they are no detached signature: a compressed message of a few hundred KiB,
armored as a signature, makes it inflate gigabytes first. A detached signature
is signature packets (tag 2) only, so that is checked here, without
decompressing or verifying anything: the armor is decoded and the packet
headers are walked, and any other packet (compressed or literal data, a
one-pass signature, a key...) is refused in one line before gpg runs.
"""

from __future__ import annotations

import binascii

from ..errors import Nix2AciError

ARMOR_BEGIN = b"-----BEGIN PGP SIGNATURE-----"
ARMOR_END = b"-----END PGP SIGNATURE-----"
SIGNATURE_TAG = 2
# The packet tags of RFC 4880 4.3 (and RFC 9580's later ones), named as the refusal says them.
KINDS = {
    0: "reserved",
    1: "public-key encrypted session key",
    3: "symmetric-key encrypted session key",
    4: "one-pass signature",
    5: "secret key",
    6: "public key",
    7: "secret subkey",
    8: "compressed data",
    9: "symmetrically encrypted data",
    10: "marker",
    11: "literal data",
    12: "trust",
    13: "user ID",
    14: "public subkey",
    17: "user attribute",
    18: "symmetrically encrypted integrity protected data",
    19: "modification detection code",
    20: "OCB encrypted data",
    21: "padding",
}


def dearmor(signature: bytes) -> bytes:
    """The packets of the ASCII-armored ``signature``: the base64 between its BEGIN and END PGP SIGNATURE lines,
    after the armor headers (``Key: value`` lines up to an empty one), the checksum line (``=XXXX``) optional.
    Nothing but whitespace may follow the END line. Raises Nix2AciError (one line) for other text."""
    lines = [line.rstrip(b" \t\r") for line in signature.split(b"\n")]
    if lines[0] != ARMOR_BEGIN:
        raise Nix2AciError("it is not armored as a signature: its first line is not " + ARMOR_BEGIN.decode())
    if ARMOR_END not in lines:
        raise Nix2AciError(f"its armor has no {ARMOR_END.decode()} line")
    end = lines.index(ARMOR_END)
    if any(line.strip() for line in lines[end + 1 :]):
        raise Nix2AciError(f"it has more after its {ARMOR_END.decode()} line")
    body = lines[1:end]
    headers = next((number for number, line in enumerate(body) if not line), None)
    if headers is None or not all(b": " in line for line in body[:headers]):
        raise Nix2AciError("its armor headers (Key: value lines) are not ended by an empty line")
    body = body[headers + 1 :]
    if body and body[-1].startswith(b"="):  # the checksum, which gpg checks
        body = body[:-1]
    try:
        return binascii.a2b_base64(b"".join(body), strict_mode=True)
    except binascii.Error as error:
        raise Nix2AciError(f"its armor is not base64: {error}") from None


def _length(data: bytes, offset: int, new_format: bool, length_type: int) -> tuple[int, int, bool]:
    """The body length of the packet whose length field starts at ``offset`` (RFC 4880 4.2.1, 4.2.2): the
    length, the offset of the body, and whether it is a partial length (more of the body follows it, after
    another length). An old-format indeterminate length runs to the end of ``data``. Raises IndexError when
    ``data`` ends within the field."""
    if not new_format:
        if length_type == 3:
            return len(data) - offset, offset, False
        size = (1, 2, 4)[length_type]
        if offset + size > len(data):
            raise IndexError
        return int.from_bytes(data[offset : offset + size], "big"), offset + size, False
    first = data[offset]
    if first < 192:
        return first, offset + 1, False
    if first < 224:
        return ((first - 192) << 8) + data[offset + 1] + 192, offset + 2, False
    if first == 255:
        if offset + 5 > len(data):
            raise IndexError
        return int.from_bytes(data[offset + 1 : offset + 5], "big"), offset + 5, False
    return 1 << (first & 0x1F), offset + 1, True


def packet_tags(data: bytes) -> list[int]:
    """The tag of each OpenPGP packet of ``data``, in order, their headers walked and bodies skipped. Raises
    Nix2AciError (one line) for a packet of another tag than a signature's, before reading further, and for
    bytes that are no packet or end within one."""
    tags, offset = [], 0
    while offset < len(data):
        header = data[offset]
        if not header & 0x80:
            raise Nix2AciError(f"it is not OpenPGP data: byte {offset} (0x{header:02x}) starts no packet")
        new_format = bool(header & 0x40)
        tag = header & 0x3F if new_format else (header >> 2) & 0x0F
        if tag != SIGNATURE_TAG:
            kind = f"a {KINDS[tag]} packet (tag {tag})" if tag in KINDS else f"a packet of tag {tag}"
            raise Nix2AciError(f"it is not a detached signature: it holds {kind}")
        offset, partial = offset + 1, True
        try:
            while partial:
                length, offset, partial = _length(data, offset, new_format, header & 0x03)
                offset += length
        except IndexError:
            offset = len(data) + 1
        if offset > len(data):
            raise Nix2AciError(f"it is truncated: its packet {len(tags) + 1} ends past its {len(data)} bytes")
        tags.append(tag)
    if not tags:
        raise Nix2AciError("it holds no OpenPGP packet")
    return tags


def check_detached(signature: bytes) -> None:
    """Refuse ``signature`` (armored, or binary) unless its packets are signature packets only: see the module's
    docstring. Raises Nix2AciError, one line saying what it holds, without the file's name (callers add it)."""
    packet_tags(dearmor(signature) if signature.startswith(b"-----") else signature)

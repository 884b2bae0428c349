"""The packet check of a detached signature before gpg runs (nix2aci/signing/packets.py): armor and packet
headers of hand-made packet streams (no gpg needed: with PATH emptied, a refusal that needed gpg would say
that gpg is not installed)."""

from __future__ import annotations

import base64
import io
import zlib

import pytest

from nix2aci.errors import Nix2AciError
from nix2aci.signing import openpgp, packets

BODY = bytes(range(40))  # a signature packet's body: its contents are gpg's to judge


def new_packet(tag: int, body: bytes) -> bytes:
    """A new-format packet (RFC 4880 4.2.2) with a one-, two- or five-octet length as ``body`` needs."""
    size = len(body)
    if size < 192:
        length = bytes([size])
    elif size < 8384:
        length = bytes([((size - 192) >> 8) + 192, (size - 192) & 0xFF])
    else:
        length = b"\xff" + size.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body


def old_packet(tag: int, body: bytes, length_type: int) -> bytes:
    """An old-format packet (RFC 4880 4.2.1) with a length of 1, 2 or 4 octets (``length_type`` 0-2) or none (3:
    the packet runs to the end)."""
    length = b"" if length_type == 3 else len(body).to_bytes((1, 2, 4)[length_type], "big")
    return bytes([0x80 | tag << 2 | length_type]) + length + body


def partial_packet(tag: int, body: bytes) -> bytes:
    """A new-format packet whose body comes in partial lengths of 4, then 2 bytes, then the rest."""
    return bytes([0xC0 | tag, 0xE2]) + body[:4] + bytes([0xE1]) + body[4:6] + bytes([len(body) - 6]) + body[6:]


def armored(data: bytes, headers: str = "", checksum: bool = True, label: str = "PGP SIGNATURE") -> bytes:
    """``data`` in ASCII armor, 64 columns, with ``headers`` lines and (``checksum``) a CRC line (not checked)."""
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    crc = ["=AAAA"] if checksum else []
    return "\n".join(
        [f"-----BEGIN {label}-----", *headers.splitlines(), "", *lines, *crc, f"-----END {label}-----", ""]
    ).encode()


@pytest.mark.parametrize(
    "data, count",
    [
        (new_packet(2, BODY), 1),
        (new_packet(2, BODY * 10), 1),  # a two-octet length
        (new_packet(2, BODY * 300), 1),  # a five-octet length
        (old_packet(2, BODY, 0), 1),
        (old_packet(2, BODY * 10, 1), 1),
        (old_packet(2, BODY, 2), 1),
        (old_packet(2, BODY, 3), 1),
        (partial_packet(2, BODY), 1),
        (new_packet(2, BODY) + old_packet(2, BODY, 0), 2),  # two signatures: gpg says it holds two
    ],
)
def test_signature_packets_pass_in_every_header_format(data, count):
    assert packets.packet_tags(data) == [2] * count
    packets.check_detached(data)
    packets.check_detached(armored(data))
    packets.check_detached(armored(data, "Version: GnuPG v2\nComment: made by hand", checksum=False))


def bomb() -> bytes:
    """A compressed data packet (old format, to the end: what gpg --sign writes) inflating to 64 MiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # algorithm 1, ZIP: raw deflate
    deflated = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()
    return old_packet(8, b"\x01" + deflated, 3)


@pytest.mark.parametrize(
    "data, kind",
    [
        (bomb(), "a compressed data packet (tag 8)"),
        (new_packet(11, b"b\x00\x00\x00\x00\x00data"), "a literal data packet (tag 11)"),
        (old_packet(4, bytes(13), 0) + old_packet(11, b"data", 3), "a one-pass signature packet (tag 4)"),
        (new_packet(2, BODY) + bomb(), "a compressed data packet (tag 8)"),  # after a signature, too
        (partial_packet(2, BODY) + new_packet(6, BODY), "a public key packet (tag 6)"),
        (new_packet(0, BODY), "a reserved packet (tag 0)"),
        (new_packet(60, BODY), "a packet of tag 60"),
    ],
)
def test_any_other_packet_is_refused_naming_it_without_gpg(data, kind, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gpg to run
    for signature in (data, armored(data)):
        with pytest.raises(Nix2AciError) as caught:
            openpgp.verify_stream(str(tmp_path), io.BytesIO(b"image"), signature)
        assert str(caught.value) == f"it is not a detached signature: it holds {kind}"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "it holds no OpenPGP packet"),
        (b"\x00garbage", "it is not OpenPGP data: byte 0 (0x00) starts no packet"),
        (new_packet(2, BODY) + b"x", "it is not OpenPGP data: byte 42 (0x78) starts no packet"),
        (new_packet(2, BODY)[:-1], "it is truncated: its packet 1 ends past its 41 bytes"),
        (old_packet(2, BODY, 2)[:3], "it is truncated: its packet 1 ends past its 3 bytes"),
        (b"\xc2\xff\x00", "it is truncated: its packet 1 ends past its 3 bytes"),  # in a five-octet length
        (b"\xc2\xc0", "it is truncated: its packet 1 ends past its 2 bytes"),  # in a two-octet length
        (partial_packet(2, BODY)[:8], "it is truncated: its packet 1 ends past its 8 bytes"),  # after a partial
        (b"\xc2", "it is truncated: its packet 1 ends past its 1 bytes"),
    ],
)
def test_garbage_and_truncated_packets_are_one_line(data, message):
    with pytest.raises(Nix2AciError) as caught:
        packets.check_detached(data)
    assert str(caught.value) == message


SIGNATURE = armored(new_packet(2, BODY))


@pytest.mark.parametrize(
    "signature, message",
    [
        (armored(new_packet(2, BODY), label="PGP MESSAGE"), "it is not armored as a signature: its first line is"),
        (SIGNATURE.replace(b"-----END PGP SIGNATURE-----", b""), "its armor has no -----END PGP SIGNATURE----- line"),
        (SIGNATURE + armored(bomb(), label="PGP MESSAGE"), "it has more after its -----END PGP SIGNATURE----- line"),
        (SIGNATURE.replace(b"-----\n\n", b"-----\n", 1), "its armor headers (Key: value lines) are not ended"),
        (SIGNATURE.replace(b"-----\n\n", b"-----\nno header\n\n", 1), "its armor headers (Key: value lines)"),
        (SIGNATURE.replace(b"\n=AAAA", b"\n*AAAA"), "its armor is not base64: "),
        (SIGNATURE.replace(b"\n=AAAA", b"\n=AAAA\nwgA="), "its armor is not base64: "),  # no data after the CRC
    ],
)
def test_bad_armor_is_one_line(signature, message):
    with pytest.raises(Nix2AciError) as caught:
        packets.check_detached(signature)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)

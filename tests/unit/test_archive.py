"""The archive writer: deterministic tar bytes, digests in the same pass, every compression."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile

import pytest

from nix2aci.archive.compression import named
from nix2aci.archive.write import write_archive
from nix2aci.build import plan

DECOMPRESS = {"gzip": gzip.decompress, "xz": lzma.decompress, "bzip2": bz2.decompress, "none": bytes}


def sample(tmp_path) -> list[plan.Entry]:
    source = tmp_path / "data"
    source.write_bytes(b"x" * 5000)
    source.chmod(0o555)
    return [
        plan.directory("rootfs"),
        plan.Entry("rootfs/data", plan.Kind.FILE, 0o555, source=str(source), size=5000),
        plan.file_with_content("rootfs/made", b"made by nix2aci\n"),
        plan.symlink("rootfs/link", "data"),
        plan.directory("rootfs/" + "long-" * 40),
    ]


@pytest.mark.parametrize("compression", sorted(DECOMPRESS))
def test_digests_describe_the_bytes_written(tmp_path, compression):
    output = io.BytesIO()
    summary = write_archive(sample(tmp_path), output, compression=named(compression))
    written = output.getvalue()
    tar_bytes = DECOMPRESS[compression](written)
    assert summary.uncompressed_digest == hashlib.sha512(tar_bytes).hexdigest()
    assert summary.uncompressed_size == len(tar_bytes)
    assert summary.compressed_digest == hashlib.sha256(written).hexdigest()
    assert summary.compressed_size == len(written)
    assert summary.members == 5


def test_members_keep_plan_order_and_normalised_headers(tmp_path):
    output = io.BytesIO()
    write_archive(sample(tmp_path), output)
    with tarfile.open(fileobj=io.BytesIO(output.getvalue()), mode="r:gz") as tar:
        members = tar.getmembers()
        assert tar.extractfile("rootfs/made").read() == b"made by nix2aci\n"
        assert tar.extractfile("rootfs/data").read() == b"x" * 5000
    assert [m.name for m in members] == [
        "rootfs",
        "rootfs/data",
        "rootfs/made",
        "rootfs/link",
        "rootfs/" + "long-" * 40,
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(1, 0, 0, "root", "root")}
    assert members[1].mode == 0o555
    assert members[3].issym() and members[3].linkname == "data"


def test_same_plan_same_bytes(tmp_path):
    first, second = io.BytesIO(), io.BytesIO()
    write_archive(sample(tmp_path), first)
    write_archive(sample(tmp_path), second)
    assert first.getvalue() == second.getvalue()
    # gzip -n: no name, mtime zero.
    assert first.getvalue()[3] & 0x08 == 0 and first.getvalue()[4:8] == b"\0\0\0\0"

"""The archive writer's own tar stream: tarfile's bytes, written faster, compressed on every core."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nix2aci.archive.compression import named
from nix2aci.archive.write import _READ_SIZE, _tar_header, _tar_info, write_archive
from nix2aci.build import plan
from nix2aci.errors import Nix2AciError


def tarfile_stream(entries: list[plan.Entry]) -> bytes:
    """The reference: the same entries written by tarfile's stream mode, PAX format."""
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if entry.kind is plan.Kind.FILE and entry.source is not None:
                with open(entry.source, "rb") as source:
                    tar.addfile(_tar_info(entry), source)
            elif entry.kind is plan.Kind.FILE:
                tar.addfile(_tar_info(entry), io.BytesIO(entry.content))
            else:
                tar.addfile(_tar_info(entry))
    return output.getvalue()


def tree(tmp_path) -> list[plan.Entry]:
    """Entries of every kind, sizes around tar's 512-byte blocks, names that need pax records."""
    rng = random.Random(5)
    entries = [plan.directory("rootfs"), plan.directory("rootfs/" + "d" * 120), plan.directory("rootfs/é")]
    for size in (0, 1, 511, 512, 513, 3 * (1 << 20) + 17):
        source = tmp_path / f"file-{size}"
        source.write_bytes(rng.randbytes(size))
        entries.append(plan.Entry(f"rootfs/file-{size}", plan.Kind.FILE, 0o444, source=str(source), size=size))
    entries += [
        plan.file_with_content("rootfs/made", b"made by nix2aci\n"),
        plan.symlink("rootfs/short", "file-1"),
        plan.symlink("rootfs/long", "/nix/store/" + "x" * 120),
        plan.Entry("rootfs/user", plan.Kind.FILE, 0o4755, uid=1000, gid=100, content=b"u", size=1),
        plan.Entry("rootfs/big-id", plan.Kind.DIRECTORY, 0o700, uid=8**7, gid=0),
    ]
    return entries


def test_the_tar_stream_is_byte_for_byte_what_tarfile_writes(tmp_path):
    entries = tree(tmp_path)
    output = io.BytesIO()
    summary = write_archive(entries, output, compression=named("none"))
    assert output.getvalue() == tarfile_stream(entries)
    assert summary.members == len(entries)


# Owners around the largest number a ustar field holds (8**7 - 1), where tarfile switches to pax.
ids = st.one_of(st.sampled_from([0, 1, 8**7 - 1, 8**7, 8**8 - 1, 8**8, 2**32 - 1]), st.integers(0, 2**32 - 1))
# Mostly ASCII (packed by nix2aci), sometimes not (encoded by tarfile); joined, paths
# of any length.
names = st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/"), min_size=1, max_size=12),
    st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/"), min_size=1, max_size=4),
)
paths = st.one_of(
    st.lists(names, min_size=1, max_size=12).map("/".join),
    # Around ustar's limit, and where a pax record's length gains a digit (99, 999).
    st.integers(80, 1100).map(lambda length: "p/" + "a" * (length - 2)),
)


@settings(max_examples=300, deadline=None)
@given(
    path=paths,
    kind=st.sampled_from(list(plan.Kind)),
    mode=st.integers(0, 0o7777),
    uid=ids,
    gid=ids,
    size=st.one_of(st.integers(0, 10**6), st.integers(8**11 - 2, 8**11 + 2)),
    target=paths,
)
def test_every_header_is_the_one_tarfile_encodes(path, kind, mode, uid, gid, size, target):
    entry = plan.Entry(
        path,
        kind,
        mode,
        uid=uid,
        gid=gid,
        size=size if kind is plan.Kind.FILE else 0,
        target=target if kind is plan.Kind.SYMLINK else None,
    )
    assert _tar_header(entry) == _tar_info(entry).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_gzip_bytes_are_the_same_for_any_number_of_workers(tmp_path):
    entries = tree(tmp_path)
    outputs = {}
    for workers in (1, 2, 4):
        output = io.BytesIO()
        summary = write_archive(entries, output, workers=workers)
        outputs[workers] = output.getvalue()
        assert summary.compressed_digest == hashlib.sha256(outputs[workers]).hexdigest()
    assert outputs[1] == outputs[2] == outputs[4]
    assert gzip.decompress(outputs[1]) == tarfile_stream(entries)


@pytest.mark.parametrize("planned", [100, _READ_SIZE, 2 * _READ_SIZE + 7])
@pytest.mark.parametrize(("change", "error"), [(-1, "became shorter"), (+1, "became longer")])
def test_a_file_that_changes_size_while_archived_is_an_error(tmp_path, planned, change, error):
    source = tmp_path / "data"
    source.write_bytes(b"x" * (planned + change))
    entry = plan.Entry("data", plan.Kind.FILE, 0o444, source=str(source), size=planned)
    with pytest.raises(Nix2AciError, match=error):
        write_archive([entry], io.BytesIO())


@pytest.mark.parametrize("size", [0, 1, _READ_SIZE - 1, _READ_SIZE, _READ_SIZE + 1, 3 * _READ_SIZE])
def test_files_around_the_read_size_are_archived_whole(tmp_path, size):
    source = tmp_path / "data"
    source.write_bytes(bytes(range(256)) * (size // 256) + b"y" * (size % 256))
    entries = [plan.Entry("data", plan.Kind.FILE, 0o444, source=str(source), size=size)]
    output = io.BytesIO()
    write_archive(entries, output, compression=named("none"))
    assert output.getvalue() == tarfile_stream(entries)


def test_content_that_does_not_match_its_size_is_an_error():
    entry = plan.Entry("made", plan.Kind.FILE, 0o444, content=b"four", size=5)
    with pytest.raises(Nix2AciError, match="4 bytes of content, but size 5"):
        write_archive([entry], io.BytesIO())

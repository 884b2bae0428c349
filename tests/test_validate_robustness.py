"""`nix2aci validate` on hostile inputs: a clear verdict every time, never a traceback, a hang or a memory blow-up.

Each input runs the real CLI as a subprocess with a hang guard (HANG_GUARD
seconds, generous: it catches hangs, it is not a benchmark), and the peak RSS
of that one process (its own VmHWM, which it reports at exit) must stay under MEMORY_BOUND. What
"not read" means is measured, not timed: the bytes the process read (its rchar) stay under READ_BOUND. Big inputs are
made without costing disk or time: a 1 GB manifest is a sparse file, a 1 GB
gzip member is compressed while it is generated, and nothing big is stored.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import stat
import struct
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import MANIFEST, nix2aci_environment, run_guarded

from nix2aci import inputs, validate

pytestmark = pytest.mark.slow

HANG_GUARD = 300
MEMORY_BOUND = 200 << 20
# A check that must not read a big input reads less than this (Python's start-up reads a few MiB of modules).
READ_BOUND = 64 << 20
GIB = 1 << 30
MANIFEST_BYTES = json.dumps(MANIFEST).encode()
# What the CLI prints for an input it read whole but could not check.
NOT_CHECKED = ": not checked: "


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished run of the CLI."""

    status: int
    stdout: str
    stderr: str
    max_rss: int  # bytes, the process's own peak
    bytes_read: int  # bytes, all its reads (rchar): Python's own start-up included


# `python -m nix2aci` that writes its own peak memory (VmHWM, kB) and the bytes it read (rchar) to the file named by
# its first argument at exit. wait4's ru_maxrss would not do: a child spawned by a big pytest process starts with the
# parent's peak.
_MEASURED_MAIN = """
import atexit, runpy, sys
report = sys.argv.pop(1)
def write_peak():
    with open("/proc/self/status") as status, open("/proc/self/io") as io, open(report, "w") as out:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        read = next(line.split()[1] for line in io if line.startswith("rchar:"))
        out.write(peak + " " + read)
atexit.register(write_peak)
sys.argv[0] = "nix2aci"
runpy.run_module("nix2aci", run_name="__main__", alter_sys=True)
"""


def nix2aci_validate(*args: str | Path) -> Run:
    """Run `nix2aci validate ARGS` of this checkout with the hang guard; measure its peak memory (its own: VmHWM)
    and bytes read.

    Fails the test on a hang, a traceback, or more than MEMORY_BOUND of memory.
    """
    with tempfile.NamedTemporaryFile() as peak:
        command = [sys.executable, "-c", _MEASURED_MAIN, peak.name, "validate", *map(str, args)]
        result = run_guarded(command, check=False, env=nix2aci_environment(), timeout=HANG_GUARD)
        peak_kib, bytes_read = (peak.read().split() or [b"0", b"0"])[:2]
    run = Run(result.returncode, result.stdout, result.stderr, int(peak_kib) * 1024, int(bytes_read))
    assert "Traceback" not in run.stderr, run.stderr
    assert run.max_rss, "the run did not report its peak memory"
    assert run.max_rss < MEMORY_BOUND, f"{run.max_rss >> 20} MiB for nix2aci validate {args}"
    return run


def expect(run: Run, status: int, *says: str) -> None:
    """The run ended with ``status`` and printed each of ``says``."""
    output = run.stdout + run.stderr
    assert run.status == status, output
    for text in says:
        assert text in output, output


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member and its contents."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, len(data), 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def tar_members(members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """The members of an uncompressed tar, without its end (names may hold raw bytes as surrogates)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT, errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()  # before closing writes the end


END = bytes(2 * tarfile.BLOCKSIZE)  # the end-of-archive marker


def tar_bytes(members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """An uncompressed tar of ``members``, ending with its end-of-archive marker (and no record padding)."""
    return tar_members(members) + END


def standard(manifest: bytes = MANIFEST_BYTES) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The members of a small valid ACI, with ``manifest`` as its manifest."""
    return [
        member("manifest", manifest),
        member("rootfs", kind=tarfile.DIRTYPE),
        member("rootfs/bin", kind=tarfile.DIRTYPE),
        member("rootfs/bin/hello", random.Random(7).randbytes(100_000)),
    ]


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One ustar header block claiming ``size`` bytes of contents."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.USTAR_FORMAT)


# --- Garbage, empty, cut ------------------------------------------------------------------


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.aci"
    path.write_bytes(b"\x00garbage" + random.Random(1).randbytes(1 << 20))
    expect(nix2aci_validate(path), 1, f"{path}: must be a tar archive, plain or compressed with gzip, bzip2 or xz: ")


def test_empty_file_as_aci_and_as_manifest(tmp_path: Path) -> None:
    path = tmp_path / "empty.aci"
    path.touch()
    expect(
        nix2aci_validate(path), 1, f"{path}: must be a tar archive, plain or compressed with gzip, bzip2 or xz: empty"
    )
    expect(nix2aci_validate("--type", "manifest", path), 1, f"{path}: must be JSON (RFC 4627): Expecting value")


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_aci_cut_at_many_offsets(tmp_path: Path, compression: str) -> None:
    """Every cut of a valid ACI is invalid and says it is cut (one CLI run checks all cuts)."""
    whole = tar_bytes(standard())
    data = gzip.compress(whole, mtime=0) if compression == "gzip" else whole
    cuts = sorted({1, 10, 100, 511, 512, 700, 1024, 1536, 2048, 2600, len(data) // 2, len(data) - 1024, len(data) - 1})
    paths = []
    for offset in cuts:
        paths.append(tmp_path / f"cut-{offset}.aci")
        paths[-1].write_bytes(data[:offset])
    (tmp_path / "whole.aci").write_bytes(data)
    assert nix2aci_validate(tmp_path / "whole.aci").status == 0
    run = nix2aci_validate(*paths)
    expect(run, 1)
    lines = run.stdout.splitlines()
    for path in paths:
        said = [line for line in lines if line.startswith(f"{path}: ")]
        assert len(said) == 1, said
        assert "it is cut short" in said[0] or said[0].endswith(": truncated header"), said


# --- Deep, huge -------------------------------------------------------------------------------

DEEP = b"[" * 10_000 + b"]" * 10_000


def test_json_nested_10000_deep(tmp_path: Path) -> None:
    """As a manifest, inside a manifest's unknown key, and as an ACI's manifest: not checked, clearly."""
    bare, keyed, image = tmp_path / "deep.json", tmp_path / "keyed.json", tmp_path / "deep.aci"
    bare.write_bytes(DEEP)
    keyed.write_bytes(MANIFEST_BYTES[:-1] + b', "x": ' + DEEP + b"}")
    image.write_bytes(gzip.compress(tar_bytes(standard(DEEP)), mtime=0))
    for path in (bare, keyed, image):
        expect(nix2aci_validate(path), 3, f"{path}{NOT_CHECKED}it nests JSON deeper than nix2aci reads")


def test_json_nested_as_deep_as_python_parses(tmp_path: Path) -> None:
    """A spec-valid manifest with a value nested 900 deep: parsed, checked, valid, without a recursion error."""
    path = tmp_path / "deep-but-parsed.json"
    path.write_bytes(MANIFEST_BYTES[:-1] + b', "x": ' + b"[" * 900 + b"]" * 900 + b"}")
    expect(nix2aci_validate(path), 0, f"{path}: warning: x: unknown key, ignored", f"{path}: valid manifest")


def test_1gb_manifest_file_is_not_checked_quickly(tmp_path: Path) -> None:
    """A sparse 1 GB manifest (detected, and as --type manifest): not read, exit 3 in seconds."""
    path = tmp_path / "huge.json"
    path.write_bytes(b'{"name": "')
    os.truncate(path, GIB)
    for args in ((path,), ("--type", "manifest", path)):
        run = nix2aci_validate(*args)
        expect(run, 3, f"{path}{NOT_CHECKED}it is over 1048576 bytes, more than nix2aci reads")
        assert run.bytes_read < READ_BOUND


def test_tar_header_claiming_a_1gb_manifest(tmp_path: Path) -> None:
    """A manifest member claiming 1 GB (and a sparse file holding it): not read, exit 3."""
    path = tmp_path / "huge-manifest.aci"
    path.write_bytes(header("manifest", GIB))
    os.truncate(path, 512 + GIB + 1024)
    run = nix2aci_validate(path)
    expect(run, 3, f"{path}{NOT_CHECKED}its manifest is over 1048576 bytes")
    assert run.bytes_read < READ_BOUND


def test_tar_header_claiming_a_1gb_member_that_is_not_there(tmp_path: Path) -> None:
    """A member claiming 1 GB in a small file: cut short, found at once."""
    path = tmp_path / "liar.aci"
    path.write_bytes(tar_members(standard()) + header("rootfs/big", GIB) + bytes(4096))
    run = nix2aci_validate(path)
    expect(run, 1, f"{path}: ends in the middle of a member's contents: it is cut short")
    assert run.bytes_read < READ_BOUND


def test_pax_header_claiming_1gb(tmp_path: Path) -> None:
    """A PAX extended header claiming 1 GB (sparse): tarfile would read it whole; nix2aci does not."""
    path = tmp_path / "pax.aci"
    path.write_bytes(tar_members(standard()) + header("././@PaxHeader", GIB, tarfile.XHDTYPE))
    os.truncate(path, path.stat().st_size + GIB + 1024)
    expect(nix2aci_validate(path), 3, f"{path}{NOT_CHECKED}it has tar headers")


def test_sparse_1gb_member_in_a_plain_tar_is_valid(tmp_path: Path) -> None:
    """A real 1 GB member (zeros, sparse on disk) of a plain tar: read through in bounded memory, valid."""
    path = tmp_path / "big.aci"
    start = tar_members(standard()) + header("rootfs/zeros", GIB)
    path.write_bytes(start)
    os.truncate(path, len(start) + GIB + 1024)
    expect(nix2aci_validate(path), 0, f"{path}: valid aci")


# --- Bombs ---------------------------------------------------------------------------------------


def test_tar_bomb_of_200000_members(tmp_path: Path) -> None:
    """200,000 tiny members (gzip): valid, in bounded memory (tarfile's member list is not kept)."""
    path = tmp_path / "many.aci"
    with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as stream:
        stream.write(tar_members(standard()[:2]))
        for number in range(200_000):
            stream.write(header(f"rootfs/{number:06d}", 0))
        stream.write(END)
    expect(nix2aci_validate(path), 0, f"{path}: valid aci")


def gzip_of_zeros(path: Path, size: int) -> None:
    """A valid gzip ACI whose member rootfs/zeros holds ``size`` zero bytes, compressed as it is generated."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    with open(path, "wb") as file:
        file.write(compressor.compress(tar_members(standard()) + header("rootfs/zeros", size)))
        for _ in range(size // len(zeros)):
            file.write(compressor.compress(zeros))
        file.write(compressor.compress(END))
        file.write(compressor.flush())


def test_gzip_bomb(tmp_path: Path) -> None:
    """1 GB of zeros in a few MB of gzip: decompressed as a stream, valid, in bounded memory."""
    path = tmp_path / "bomb.aci"
    gzip_of_zeros(path, GIB)
    assert path.stat().st_size < 10 << 20
    expect(nix2aci_validate(path), 0, f"{path}: valid aci")


def test_gzip_of_zeros_only(tmp_path: Path) -> None:
    """A gzip of 64 MB of zeros and nothing else: an empty tar, so no manifest and no rootfs."""
    path = tmp_path / "zeros.aci"
    path.write_bytes(gzip.compress(bytes(64 << 20), compresslevel=1, mtime=0))
    expect(nix2aci_validate(path), 1, f"{path}: an ACI must contain manifest", f"{path}: an ACI must contain rootfs")


def test_xz_asking_for_a_4gb_dictionary(tmp_path: Path) -> None:
    """An xz block header asking for a 4 GiB dictionary: not decompressed (memory limit), exit 3."""
    data = lzma.compress(tar_bytes(standard()), format=lzma.FORMAT_XZ, filters=[{"id": lzma.FILTER_LZMA2}])
    size = (data[12] + 1) * 4  # the block header after the 12-byte stream header
    block = bytearray(data[12 : 12 + size])
    block[block.index(0x21) + 2] = 40  # LZMA2 filter (0x21), its 1-byte properties: dictionary size 4 GiB - 1
    block[-4:] = struct.pack("<I", zlib.crc32(bytes(block[:-4])))
    path = tmp_path / "dictionary.aci"
    path.write_bytes(data[:12] + bytes(block) + data[12 + size :])
    assert lzma.decompress(path.read_bytes()) == tar_bytes(standard())  # a valid xz file
    expect(nix2aci_validate(path), 3, f"{path}{NOT_CHECKED}its xz data needs over 128 MiB of memory")


# --- Names, encodings, file types ---------------------------------------------------------------


def test_non_utf8_member_names(tmp_path: Path) -> None:
    """Raw bytes in names: valid under rootfs; at the top level, named (escaped) in the problem."""
    good, bad = tmp_path / "good.aci", tmp_path / "bad.aci"
    good.write_bytes(tar_bytes([*standard(), member("rootfs/caf\udce9"), member("rootfs/\udcff\udcfe/x")]))
    bad.write_bytes(tar_bytes([*standard(), member("\udcff")]))
    expect(nix2aci_validate(good), 0, f"{good}: valid aci")
    expect(nix2aci_validate(bad), 1, f"{bad}: member '\\udcff': only manifest and rootfs/... may be in an ACI")


def test_non_utf8_json(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps({**MANIFEST, "name": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"))
    expect(nix2aci_validate(path), 1, f"{path}: must be JSON (RFC 4627): 'utf-8' codec can't decode byte 0xe9")
    image = tmp_path / "latin1.aci"
    image.write_bytes(tar_bytes(standard(path.read_bytes())))
    expect(nix2aci_validate(image), 1, f"{image}: manifest: must be JSON (RFC 4627): 'utf-8' codec")


def test_json_escapes_of_lone_surrogates_print_safely(tmp_path: Path) -> None:
    """A key and a value holding lone surrogates (valid JSON escapes): printed escaped, not crashing the output."""
    key, value = tmp_path / "key.json", tmp_path / "value.json"
    key.write_bytes(MANIFEST_BYTES[:-1] + b', "\\udcff\\u001b": 1}')
    value.write_bytes(MANIFEST_BYTES.replace(b'"os"', b'"\\udcff"'))
    expect(nix2aci_validate(key), 0, f'{key}: warning: ["\\udcff\\u001b"]: unknown key, ignored')
    expect(nix2aci_validate(value), 1, f"{value}: labels[0].name: must be an AC Identifier", "got '\\udcff'")


def test_directory_given_as_aci_and_file_as_layout(tmp_path: Path) -> None:
    expect(nix2aci_validate("--type", "aci", tmp_path), 1, f"{tmp_path}: must be a file to be an aci")
    path = tmp_path / "m.json"
    path.write_bytes(MANIFEST_BYTES)
    expect(nix2aci_validate("--type", "layout", path), 1, f"{path}: must be a directory to be a layout")


@pytest.mark.parametrize("kind", [None, "aci", "manifest"])
def test_fifo_is_not_read(tmp_path: Path, kind: str | None) -> None:
    """A FIFO with no writer would block any read: not checked, at once."""
    path = tmp_path / "pipe.aci"
    os.mkfifo(path)
    run = nix2aci_validate(*(("--type", kind) if kind else ()), path)
    expect(run, 3, f"{path}{NOT_CHECKED}it is neither a regular file nor a directory")
    assert run.bytes_read < READ_BOUND


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_not_read(device: str) -> None:
    """/dev/zero and friends never end: not checked, at once."""
    expect(nix2aci_validate(device), 3, f"{device}{NOT_CHECKED}it is neither a regular file nor a directory")


# --- OCI image layouts: each blob read once, never through a link, never a FIFO -----------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def put_blob(root: Path, data: bytes, media_type: str) -> dict:
    """Store ``data`` in the layout ``root`` under its sha256; return its descriptor."""
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(root: Path, layer_tar: bytes, references: int = 1, tags: int = 1) -> dict[str, dict]:
    """A valid OCI image layout whose manifest names one gzip layer ``references`` times, tagged ``tags`` times.

    Returns the descriptors of the layer, config and manifest.
    """
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    layer = put_blob(root, gzip.compress(layer_tar, compresslevel=1, mtime=0), OCI_LAYER)
    diff_id = f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"
    config_document = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id] * references},
    }
    config = put_blob(root, json.dumps(config_document).encode(), "application/vnd.oci.image.config.v1+json")
    manifest_document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer] * references,
    }
    manifest = put_blob(root, json.dumps(manifest_document).encode(), OCI_MANIFEST)
    index = {"schemaVersion": 2, "manifests": [manifest] * tags}
    (root / "index.json").write_text(json.dumps(index))
    return {"layer": layer, "config": config, "manifest": manifest}


def blob_path(root: Path, descriptor: dict) -> Path:
    return root / "blobs" / "sha256" / descriptor["digest"].split(":")[1]


def test_20000_references_to_one_layer_read_it_once(tmp_path: Path, monkeypatch) -> None:
    """However many descriptors name a blob, it is opened (and hashed) once, and the layout is valid."""
    descriptors = oci_layout(
        tmp_path, tar_bytes([*standard(), member("rootfs/big", random.Random(3).randbytes(1 << 20))]), 20_000, 50
    )
    opened: collections.Counter[str] = collections.Counter()
    real_open_beneath = inputs.open_beneath

    def counting(root: str, relative: str, what: str, **options):
        opened[relative] += 1
        return real_open_beneath(root, relative, what, **options)

    monkeypatch.setattr(inputs, "open_beneath", counting)
    verdict = validate.check(str(tmp_path))
    assert (verdict.kind, verdict.problems, verdict.not_checked) == ("oci-layout", (), None)
    for name in ("layer", "config", "manifest"):
        assert opened[str(blob_path(tmp_path, descriptors[name]).relative_to(tmp_path))] == 1, opened


def test_a_repeated_manifest_is_checked_once_and_its_problem_said_once(tmp_path: Path) -> None:
    descriptors = oci_layout(tmp_path, tar_bytes(standard()), tags=3)
    blob_path(tmp_path, descriptors["layer"]).write_bytes(b"damaged")
    run = nix2aci_validate(tmp_path)
    expect(run, 1, "index.json.manifests[0] layers[0].size: must be the blob's size 7")
    assert "manifests[1]" not in run.stdout and "manifests[2]" not in run.stdout, run.stdout


def test_blobs_that_are_links_are_invalid_and_never_read(tmp_path: Path) -> None:
    """A layer linked to /proc/self/pagemap (reads as 256 GiB), a manifest linked to its own good copy outside
    the layout, blobs/sha256 linked elsewhere: each invalid, said clearly; following the link would read it.
    (A blob may link into the Nix store only, as nix2aci's layouts link their layers' builds.)"""
    outside = tmp_path / "outside"
    outside.mkdir()
    pagemap, copied, linked_directory = tmp_path / "pagemap", tmp_path / "copied", tmp_path / "linked-directory"
    for root, name in ((pagemap, "layer"), (copied, "manifest")):
        descriptors = oci_layout(root, tar_bytes(standard()))
        blob = blob_path(root, descriptors[name])
        if name == "manifest":  # the same bytes outside: following the link would call the layout valid
            (outside / blob.name).write_bytes(blob.read_bytes())
            blob.unlink()
            blob.symlink_to(outside / blob.name)
        else:
            blob.unlink()
            blob.symlink_to("/proc/self/pagemap")
        run = nix2aci_validate(root)
        expect(
            run, 1, f"names blob {descriptors[name]['digest']}, which is a symbolic link to ", "not in the Nix store"
        )
    descriptors = oci_layout(linked_directory, tar_bytes(standard()))
    (linked_directory / "blobs" / "sha256").rename(outside / "sha256")
    (linked_directory / "blobs" / "sha256").symlink_to(outside / "sha256")
    expect(nix2aci_validate(linked_directory), 1, "names blob sha256:", "which is or goes through a symbolic link")
    assert sorted(path.name for path in (outside / "sha256").iterdir()) == sorted(
        descriptor["digest"].split(":")[1] for descriptor in descriptors.values()
    )  # the canary: what the links name is unchanged


@pytest.mark.parametrize("name", ["layer", "config", "manifest"])
def test_a_fifo_blob_is_invalid_at_once(tmp_path: Path, name: str) -> None:
    descriptors = oci_layout(tmp_path, tar_bytes(standard()))
    blob = blob_path(tmp_path, descriptors[name])
    blob.unlink()
    os.mkfifo(blob)
    expect(
        nix2aci_validate(tmp_path), 1, f"names blob {descriptors[name]['digest']}, which is a FIFO, not a regular file"
    )
    assert stat.S_ISFIFO(blob.lstat().st_mode)


@pytest.mark.parametrize("name", ["index.json", "oci-layout"])
@pytest.mark.parametrize("shape", ["fifo", "link"])
def test_layout_documents_must_be_regular_files_in_the_layout(tmp_path: Path, name: str, shape: str) -> None:
    """index.json or oci-layout as a FIFO (would block) or a link to a good copy outside (would pass): invalid."""
    root = tmp_path / "layout"
    oci_layout(root, tar_bytes(standard()))
    document = root / name
    copy = tmp_path / f"copy-of-{name}"
    copy.write_bytes(document.read_bytes())
    document.unlink()
    if shape == "fifo":
        os.mkfifo(document)
    else:
        document.symlink_to(copy)
    reason = "is a FIFO, not a regular file" if shape == "fifo" else "is or goes through a symbolic link"
    expect(nix2aci_validate(root), 1, f"{name}: must be a regular file holding a JSON ", f": it {reason}")


# --- Unpacked ACI layouts and OCI bundles: their files are regular files of the directory --------


def unpacked_layout(root: Path) -> Path:
    root.mkdir()
    (root / "rootfs").mkdir()
    (root / "manifest").write_bytes(MANIFEST_BYTES)
    return root


def runtime_bundle(root: Path, root_path: str = "rootfs") -> Path:
    root.mkdir()
    (root / "rootfs").mkdir()
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": root_path},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
    }
    (root / "config.json").write_text(json.dumps(config))
    return root


@pytest.mark.parametrize("shape", ["fifo", "link"])
def test_layout_manifest_and_bundle_config_must_be_regular_files(tmp_path: Path, shape: str) -> None:
    """A FIFO (would block) or a link to a good copy outside (would pass): invalid, at once."""
    layout_root = unpacked_layout(tmp_path / "layout")
    bundle_root = runtime_bundle(tmp_path / "bundle")
    for root, name, says in (
        (layout_root, "manifest", "manifest: must be a regular file"),
        (bundle_root, "config.json", "config.json: must be a regular file in the bundle's directory"),
    ):
        copy = tmp_path / f"copy-of-{name}"
        copy.write_bytes((root / name).read_bytes())
        (root / name).unlink()
        if shape == "fifo":
            os.mkfifo(root / name)
        else:
            (root / name).symlink_to(copy)
        expect(nix2aci_validate(root), 1, f"{root}: {says}")


def test_bundle_root_path_must_be_a_directory_inside_the_bundle(tmp_path: Path) -> None:
    """root.path naming a file, leading out through '..' or a link: invalid; a link or absolute path inside: valid."""
    outside = tmp_path / "outside"
    outside.mkdir()
    file_root = runtime_bundle(tmp_path / "file", "config.json")
    expect(nix2aci_validate(file_root), 1, f"{file_root}: config.json.root.path: must name a directory of the bundle")
    dotdot = runtime_bundle(tmp_path / "dotdot", "../outside")
    expect(nix2aci_validate(dotdot), 1, "config.json.root.path: must name a directory inside the bundle; '../outside'")
    linked = runtime_bundle(tmp_path / "linked", "escape")
    (linked / "escape").symlink_to(outside)
    expect(nix2aci_validate(linked), 1, "config.json.root.path: must name a directory inside the bundle; 'escape'")
    nul = runtime_bundle(tmp_path / "nul", "root\0fs")
    expect(nix2aci_validate(nul), 1, f"{nul}: config.json.root.path: must name a directory of the bundle")
    itself = runtime_bundle(tmp_path / "itself", ".")
    expect(nix2aci_validate(itself), 1, "config.json.root.path: must name a directory inside the bundle")
    inside = runtime_bundle(tmp_path / "inside", "current")
    (inside / "current").symlink_to("rootfs")
    expect(nix2aci_validate(inside), 0, f"{inside}: valid oci-bundle")
    absolute = runtime_bundle(tmp_path / "absolute", str(tmp_path / "absolute" / "rootfs"))
    expect(nix2aci_validate(absolute), 0, f"{absolute}: valid oci-bundle")
    assert list(outside.iterdir()) == []


def test_a_blob_may_link_into_the_nix_store_but_no_further(tmp_path: Path) -> None:
    """nix2aci's layouts link each layer to its build's output in the store: such a link is followed, once. A
    store path holding a link out (to /proc/self/pagemap) is not followed through: one line, never read."""
    good, hostile = tmp_path / "good", tmp_path / "hostile"
    for root in (good, hostile):
        descriptors = oci_layout(root, tar_bytes(standard()))
    layer = blob_path(good, descriptors["layer"])
    content = tmp_path / "content"
    content.mkdir()
    (content / "blob").write_bytes(layer.read_bytes())
    (content / "out").symlink_to("/proc/self/pagemap")
    stored = Path(run_guarded(["nix-store", "--add", str(content)]).stdout.strip())
    layer.unlink()
    layer.symlink_to(stored / "blob")
    expect(nix2aci_validate(good), 0, f"{good}: valid oci-layout")
    layer = blob_path(hostile, descriptors["layer"])
    layer.unlink()
    layer.symlink_to(stored / "out")
    expect(
        nix2aci_validate(hostile),
        1,
        f"which is a symbolic link to {stored}/out, which is or goes through a symbolic link",
    )

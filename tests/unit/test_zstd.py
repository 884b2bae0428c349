"""zstd, the OCI layers' compression of image-spec 1.1 (``layerCompression = "zstd"``): frames whose bytes do
not depend on the cores, read back in bounded memory, checked by ``nix2aci validate`` in a layout, refused in an
ACI, and one clear line when the interpreter lacks the zstandard module."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import zstandard
from conftest import REPO, nix2aci
from handmade import oci_layout

from nix2aci.aci import members
from nix2aci.archive import compression
from nix2aci.archive.compression import ZSTD_WINDOW_LIMIT, MissingLibrary, named, uncompressed
from nix2aci.archive.read import PIECE_SIZE, Unreadable
from nix2aci.archive.write import write_archive
from nix2aci.build import plan
from nix2aci.errors import NotChecked
from nix2aci.oci import layout

ZSTD = named("zstd")
# Many zstd blocks: text, on which each level makes other bytes; what hardly compresses; zeros.
DATA = (
    b"".join(b"%d: the %d-th line of %d words\n" % (i, i * 7919 % 1000, i % 13) for i in range(100000))
    + b"".join(hashlib.sha256(b"%d" % i).digest() * (i % 5 + 1) for i in range(20000))
    + bytes(1 << 20)
)
MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/toy"}
ENTRIES = [
    plan.file_with_content("manifest", json.dumps(MANIFEST).encode()),
    plan.directory("rootfs"),
    plan.file_with_content("rootfs/data", DATA),
]
# What image-spec 1.1 calls a zstd layer.
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def zstd_of(data: bytes, write_size: int = 1 << 20, level: int | None = None) -> bytes:
    """``data`` through the registry's zstd writer, in writes of ``write_size`` bytes."""
    sink = io.BytesIO()
    with ZSTD.writer(sink, level) as writer:
        for start in range(0, len(data), write_size):
            writer.write(data[start : start + write_size])
    return sink.getvalue()


def read_zstd(data: bytes) -> bytes:
    """The bytes the registry's reader makes of the zstd file ``data``."""
    pieces, found = uncompressed(io.BytesIO(data), layout.LAYER_COMPRESSIONS)
    assert found is ZSTD
    return b"".join(pieces)


def test_zstd_is_an_oci_layer_compression_with_image_spec_1_1_s_media_type():
    assert layout.LAYER_COMPRESSIONS.named("zstd") is ZSTD
    assert layout.layer_media_type(ZSTD) == ZSTD_LAYER
    for media_type in (ZSTD_LAYER, f"{layout.NONDISTRIBUTABLE_LAYER}+zstd", f"{layout.LAYER}+lz4"):
        layer = {"mediaType": media_type, "digest": "sha256:" + "0" * 64, "size": 1}
        manifest = {"schemaVersion": 2, "mediaType": layout.MANIFEST, "config": {**layer, "mediaType": layout.CONFIG}}
        errors = layout.SCHEMAS["manifest"].check({**manifest, "layers": [layer]}).errors
        assert bool(errors) is media_type.endswith("+lz4"), errors


def test_zstd_frames_read_back_one_after_another_and_damage_is_found():
    frame = zstd_of(DATA)
    assert frame.startswith(ZSTD.magic)
    assert read_zstd(frame + zstd_of(b"more")) == DATA + b"more"
    with pytest.raises(Unreadable, match=r"^has bytes after the end of its zstd data that are not zstd data$"):
        read_zstd(frame + b"\0" * 600)
    with pytest.raises(Unreadable, match=r"^has zstd data that ends early: it is cut short$"):
        read_zstd(frame[:-100])
    damaged = bytearray(frame)
    damaged[len(frame) // 2] ^= 0xFF
    with pytest.raises(Unreadable, match=r"^has damaged zstd data: "):
        read_zstd(bytes(damaged))


def test_a_zstd_frame_is_level_3_with_a_checksum_and_no_size_or_dictionary():
    frame = zstd_of(DATA)
    assert frame == zstd_of(DATA, level=3)
    assert frame not in (zstd_of(DATA, level=2), zstd_of(DATA, level=4))
    parameters = zstandard.get_frame_parameters(frame)
    assert parameters.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert parameters.has_checksum and parameters.dict_id == 0


def test_zstd_layer_bytes_do_not_depend_on_the_cores_the_workers_or_the_write_sizes(monkeypatch):
    layers = set()
    for cores in ("1", "2", "7"):
        monkeypatch.setenv("NIX_BUILD_CORES", cores)
        for workers in (None, 1, 3):
            sink = io.BytesIO()
            write_archive(ENTRIES, sink, compression=ZSTD, workers=workers)
            layers.add(sink.getvalue())
    assert len(layers) == 1
    assert zstd_of(DATA, write_size=1000) == zstd_of(DATA, write_size=len(DATA))


def test_a_zstd_bomb_is_read_in_bounded_memory():
    # 512 MiB of zeros in 16 KiB of zstd: zstandard's decompressor would make it in one call.
    compressor = zstandard.ZstdCompressor().compressobj()
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(512)) + compressor.flush()
    assert len(bomb) < 32 << 10
    tracemalloc.start()
    try:
        pieces, _ = uncompressed(io.BytesIO(bomb), layout.LAYER_COMPRESSIONS)
        total = sum(len(piece) for piece in pieces if len(piece) <= PIECE_SIZE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 512 << 20
    assert peak < 24 << 20, f"reading the bomb held {peak >> 20} MiB at once"


# A zstd frame header asking for a 2 GiB window (Window_Descriptor: exponent 31 - 10), then block bytes.
HUGE_WINDOW = ZSTD.magic + bytes([0x00, (31 - 10) << 3]) + bytes(600)
REFUSAL = f"its zstd data needs a window over {ZSTD_WINDOW_LIMIT >> 20} MiB to decompress, more than nix2aci uses"


def test_a_frame_asking_for_a_huge_window_is_not_decompressed():
    with pytest.raises(NotChecked) as raised:
        read_zstd(HUGE_WINDOW)
    assert str(raised.value) == REFUSAL


def test_validate_checks_a_zstd_layer_s_diff_id(tmp_path):
    sink = io.BytesIO()
    summary = write_archive(ENTRIES[1:], sink, compression=ZSTD, uncompressed_digest="sha256")
    layer, diff_id = sink.getvalue(), f"sha256:{summary.uncompressed_digest}"
    good = oci_layout(tmp_path / "good", layer, ZSTD_LAYER, diff_id)
    assert nix2aci("validate", good).stdout == f"{good}: valid oci-layout\n"
    wrong = oci_layout(tmp_path / "wrong", layer, ZSTD_LAYER, "sha256:" + "0" * 64)
    result = nix2aci("validate", wrong, check=False)
    assert result.returncode == 1
    assert result.stdout == (
        f"{wrong}: index.json.manifests[0] config.rootfs.diff_ids: must be the uncompressed layers' digests"
        f" ['{diff_id}']\n"
    )


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (lambda layer: layer[: len(layer) // 2] + bytes([layer[len(layer) // 2] ^ 0xFF]) + layer[len(layer) // 2 + 1 :],
         "has damaged zstd data: "),
        (lambda layer: layer[:-100], "has zstd data that ends early: it is cut short"),
    ],
    ids=["a byte changed", "cut short"],
)  # fmt: skip
def test_validate_finds_a_damaged_zstd_layer_in_one_line(tmp_path, damage, found):
    sink = io.BytesIO()
    summary = write_archive(ENTRIES[1:], sink, compression=ZSTD, uncompressed_digest="sha256")
    damaged = oci_layout(tmp_path / "oci", damage(sink.getvalue()), ZSTD_LAYER, f"sha256:{summary.uncompressed_digest}")
    result = nix2aci("validate", damaged, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"{damaged}: index.json.manifests[0] layers[0]: must be a readable layer: it {found}"
    ), result.stdout
    assert result.stdout.count("\n") == 1 and result.stderr == ""


def test_validate_refuses_a_layer_asking_for_a_huge_window_in_one_line(tmp_path):
    hostile = oci_layout(tmp_path / "oci", HUGE_WINDOW, ZSTD_LAYER, "sha256:" + "0" * 64)
    result = nix2aci("validate", hostile, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, f"{hostile}: not checked: {REFUSAL}\n", "")


def test_an_aci_compressed_with_zstd_is_refused(tmp_path):
    assert "zstd" not in members.COMPRESSIONS.names
    aci = tmp_path / "toy.aci"
    with aci.open("wb") as output:
        write_archive(ENTRIES, output, compression=ZSTD)
    result = nix2aci("validate", aci, check=False)
    assert result.returncode == 1
    assert result.stdout == f"{aci}: is compressed with zstd; images may only be compressed with gzip, bzip2 or xz\n"


def test_without_zstandard_using_zstd_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # what `import zstandard` finds in a Python without it
    with pytest.raises(MissingLibrary) as raised:
        ZSTD.writer(io.BytesIO())
    assert str(raised.value) == (
        f"zstd needs the Python module zstandard, which {sys.executable} lacks:"
        " install Debian's python3-zstandard, or nixpkgs' python3Packages.zstandard"
    )
    with pytest.raises(MissingLibrary):  # reading, as `nix2aci validate` does: not checked, saying why
        read_zstd(HUGE_WINDOW)
    assert compression.named("gzip").writer(io.BytesIO()) is not None  # the others need no module


# A store path for a layer of its own (format oci-store-layer, see tests/unit/test_spec.py).
STORE_PATH = "1" * 32 + "-app"


def run_builder(build: Path, store_path: Path, without_zstandard: bool) -> subprocess.CompletedProcess:
    """The builder run as Nix runs it, in ``build``, on a zstd layer of ``store_path``; ``without_zstandard``:
    in a Python where ``import zstandard`` fails."""
    spec = {"format": "oci-store-layer", "paths": [str(store_path)], "compression": "zstd"}
    (build / ".attr-spec").write_text(json.dumps(spec))
    block = "sys.modules['zstandard'] = None; " if without_zstandard else ""
    command = [sys.executable, "-B", "-c", f"import sys; {block}from nix2aci.build.main import main; sys.exit(main())"]
    environment = {"nix2aciSpecPath": str(build / ".attr-spec"), "NIX_BUILD_TOP": str(build), "out": str(build / "out")}
    return subprocess.run(command, env=environment, cwd=REPO, capture_output=True, text=True, check=False)


def test_a_zstd_image_builds_and_without_zstandard_fails_in_one_line_naming_layer_compression(tmp_path):
    store_path = tmp_path / "nix" / "store" / STORE_PATH
    (store_path / "bin").mkdir(parents=True)
    (store_path / "bin" / "app").write_text("#!/bin/sh\n")
    (tmp_path / "build").mkdir()
    failed = run_builder(tmp_path / "build", store_path, without_zstandard=True)
    assert failed.returncode == 1
    assert failed.stderr == (
        'nix2aci: error: layerCompression = "zstd": zstd needs the Python module zstandard, which'
        f" {sys.executable} lacks: install Debian's python3-zstandard, or nixpkgs' python3Packages.zstandard\n"
    )
    assert not (tmp_path / "build" / "out").exists()
    built = run_builder(tmp_path / "build", store_path, without_zstandard=False)
    assert built.returncode == 0, built.stderr
    out = tmp_path / "build" / "out"
    record = json.loads((out / "layer.json").read_text())
    assert record["mediaType"] == ZSTD_LAYER
    assert (out / "blob").read_bytes().startswith(ZSTD.magic)

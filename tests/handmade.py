"""Images made by hand: ACIs written with tarfile, member by member (the hostile archives of the unpacking
tests), and OCI image layouts of one given layer (the layer checks of the compression tests).

Shared by tests/test_unpack.py and tests/test_attack_findings.py, and by tests/unit/test_compression.py and
tests/unit/test_zstd.py, so that no test module imports another (which tied each to the other's private
helpers). A module of its own rather than conftest.py: conftest holds what runs processes (nix-build, runc,
the command line) and the fixtures; this only writes files.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from nix2aci.aci import unpack
from nix2aci.oci import layout

# A manifest that passes the checks, so an archive is refused for its members only.
HOSTILE_MANIFEST = json.dumps(
    {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "evil",
        "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
    }
).encode()


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    link: str = "",
    mode: int = 0o644,
    data: bytes = b"planted\n",
    pax_path: str | None = None,
) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member and its contents; ``pax_path`` puts a name in a PAX header as written (NUL included)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid = kind, link, mode, 1234, 4321
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax_path is not None:
        info.pax_headers = {"path": pax_path}
    return info, data


def write_aci(
    path: Path,
    members: list[tuple[tarfile.TarInfo, bytes]],
    tar_format: int = tarfile.PAX_FORMAT,
    manifest: bytes = HOSTILE_MANIFEST,
) -> Path:
    """An ACI at ``path``: ``manifest``, rootfs, then ``members``."""
    with tarfile.open(path, "w", format=tar_format) as tar:
        for info, data in [entry("manifest", data=manifest), entry("rootfs", tarfile.DIRTYPE, mode=0o755), *members]:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def unpack_file(image: Path, bundle: Path, **options) -> unpack.Unpacked:
    """``image`` unpacked by nix2aci's extractor into the new directory ``bundle`` (``options`` go to it)."""
    bundle.mkdir()
    with open(image, "rb") as file:
        return unpack.unpack_image(file, str(image), str(bundle), **options)


def _write_blob(blobs: Path, media_type: str, content: bytes) -> layout.Descriptor:
    """``content`` stored under its digest in ``blobs`` (``blobs/sha256``)."""
    digest = hashlib.sha256(content).hexdigest()
    (blobs / digest).write_bytes(content)
    return layout.Descriptor(media_type, f"sha256:{digest}", len(content))


def oci_layout(root: Path, layer: bytes, media_type: str, diff_id: str) -> Path:
    """A one-layer OCI image layout at ``root``, its blobs files, whatever
    ``layer`` holds, its descriptor's ``media_type`` and its config's ``diff_id`` say."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer_descriptor = _write_blob(blobs, media_type, layer)
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_descriptor = _write_blob(blobs, layout.CONFIG, layout.canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": layout.MANIFEST,
        "config": config_descriptor.to_json(),
        "layers": [layer_descriptor.to_json()],
    }
    manifest_descriptor = _write_blob(blobs, layout.MANIFEST, layout.canonical(manifest))
    index = {"schemaVersion": 2, "manifests": [manifest_descriptor.to_json()]}
    (root / "index.json").write_bytes(layout.canonical(index))
    (root / "oci-layout").write_bytes(layout.canonical({"imageLayoutVersion": "1.0.0"}))
    return root

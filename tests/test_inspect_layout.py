"""`nix2aci inspect` of an OCI image layout: busyboxImage (an image and its SBOM artifact) and busyboxMultiArch (an
image index over linux/amd64 and linux/arm64, each image with its SBOM artifact), built with nix-build; the values
shown are compared with what `skopeo inspect --raw` and the layout's own files say. Hostile layouts (a blob linking
out of the store, FIFOs, a huge index.json, an index naming itself, indexes nested deeply, a missing blob) give one
line and exit status 1, no traceback, no hang.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import image_entry, nix2aci, nix_build, nix_eval_json, require, run

from nix2aci.oci import layout

pytestmark = pytest.mark.slow

GIB = 1 << 30


@pytest.fixture(scope="module")
def image_layout() -> Path:
    """busyboxImage: one image and its SBOM artifact."""
    return nix_build("busyboxImage")


@pytest.fixture(scope="module")
def index_layout() -> Path:
    """busyboxMultiArch: an image index over two platforms, and each image's SBOM artifact."""
    return nix_build("busyboxMultiArch")


def inspected(path: Path) -> dict:
    """What `nix2aci inspect PATH` prints, parsed."""
    return json.loads(nix2aci("inspect", path).stdout)


@functools.cache
def tag() -> str:
    """busyboxImage's (and busyboxMultiArch's) tag, as the package set gives it."""
    return nix_eval_json("n.busyboxImage.ociImage.tag")


def skopeo_raw(path: Path, *options: str) -> dict:
    """`skopeo [OPTIONS] inspect --raw oci:PATH:TAG`, parsed (OPTIONS before `inspect`, say --override-arch)."""
    require("skopeo")
    return json.loads(run(["skopeo", *options, "inspect", "--raw", f"oci:{path}:{tag()}"]).stdout)


def skopeo_config(path: Path, architecture: str) -> dict:
    """The config of the ``architecture`` image of the layout, as skopeo reads it."""
    require("skopeo")
    command = ["skopeo", "--override-arch", architecture, "inspect", "--config", "--raw", f"oci:{path}:{tag()}"]
    return json.loads(run(command).stdout)


def blob(path: Path, digest: str) -> bytes:
    """The blob of the layout at ``path`` named ``digest``, checked against it."""
    algorithm, _, encoded = digest.partition(":")
    data = (path / "blobs" / algorithm / encoded).read_bytes()
    assert hashlib.new(algorithm, data).hexdigest() == encoded
    return data


def expected_image(path: Path, descriptor: dict, manifest: dict, config: dict) -> dict:
    """What inspect must show of an image: from its manifest's descriptor, manifest and config as read elsewhere;
    each layer's diffID is the sha256 of the layer blob gunzipped."""
    layers = [
        {
            "digest": layer["digest"],
            "size": layer["size"],
            "mediaType": layer["mediaType"],
            "diffID": f"sha256:{hashlib.sha256(gzip.decompress(blob(path, layer['digest']))).hexdigest()}",
        }
        for layer in manifest["layers"]
    ]
    return {
        "tag": tag(),
        "platform": f"{config['os']}/{config['architecture']}",
        "digest": descriptor["digest"],
        "size": descriptor["size"],
        "configDigest": manifest["config"]["digest"],
        "layers": layers,
        "config": config,
    }


def artifacts_of(path: Path) -> list[dict]:
    """The layout's artifacts as inspect must show them: from index.json and each artifact's manifest blob."""
    entries = json.loads((path / "index.json").read_text())["manifests"]
    return [
        {
            "artifactType": entry["artifactType"],
            "digest": entry["digest"],
            "size": entry["size"],
            "subject": json.loads(blob(path, entry["digest"]))["subject"]["digest"],
        }
        for entry in entries
        if "artifactType" in entry
    ]


def test_inspect_shows_an_image_layout_as_skopeo_reads_it(image_layout: Path) -> None:
    manifest_bytes = blob(image_layout, image_entry(image_layout)["digest"])
    manifest = skopeo_raw(image_layout)
    assert manifest == json.loads(manifest_bytes)
    descriptor = {"digest": f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}", "size": len(manifest_bytes)}
    config = skopeo_config(image_layout, "amd64")
    assert config["created"] and config["history"] and config["config"]["Cmd"]
    summary = inspected(image_layout)
    assert summary["format"] == "oci-layout"
    assert summary["images"] == [expected_image(image_layout, descriptor, manifest, config)]
    (artifact,) = summary["artifacts"]
    assert artifact == artifacts_of(image_layout)[0]
    assert artifact["artifactType"] == "application/spdx+json"
    assert artifact["subject"] == descriptor["digest"]


def test_inspect_shows_each_platform_of_an_index_layout(index_layout: Path) -> None:
    index = skopeo_raw(index_layout)
    index_digest = image_entry(index_layout)["digest"]
    assert json.loads(blob(index_layout, index_digest)) == index
    expected = []
    for descriptor in index["manifests"]:
        architecture = descriptor["platform"]["architecture"]
        manifest = json.loads(blob(index_layout, descriptor["digest"]))
        config = skopeo_config(index_layout, architecture)
        assert json.loads(blob(index_layout, manifest["config"]["digest"])) == config
        expected.append({"index": index_digest, **expected_image(index_layout, descriptor, manifest, config)})
    summary = inspected(index_layout)
    assert summary["images"] == expected
    assert [image["platform"] for image in summary["images"]] == ["linux/amd64", "linux/arm64"]
    assert summary["artifacts"] == artifacts_of(index_layout)
    assert sorted(artifact["subject"] for artifact in summary["artifacts"]) == sorted(
        descriptor["digest"] for descriptor in index["manifests"]
    )


# --- hostile layouts ------------------------------------------------------------------------------


def writable_copy(source: Path, destination: Path) -> Path:
    """A copy of the layout ``source`` that a test may change: its links (blobs in the store) kept as links."""
    shutil.copytree(source, destination, symlinks=True)
    for directory, _, files in os.walk(destination):
        os.chmod(directory, 0o755)
        for name in files:
            if not os.path.islink(os.path.join(directory, name)):
                os.chmod(os.path.join(directory, name), 0o644)
    return destination


def add_blob(layout_path: Path, data: bytes, digest: str | None = None) -> dict:
    """Write ``data`` as a blob (named ``digest``, default its own); return an image index descriptor of it."""
    digest = digest or f"sha256:{hashlib.sha256(data).hexdigest()}"
    path = layout_path / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    return {"mediaType": layout.INDEX, "digest": digest, "size": len(data)}


def name_only(layout_path: Path, descriptor: dict) -> None:
    """Make index.json list ``descriptor`` alone."""
    index = {"schemaVersion": 2, "mediaType": layout.INDEX, "manifests": [descriptor]}
    (layout_path / "index.json").write_text(json.dumps(index))


def manifest_linked_out_of_the_store(path: Path) -> str:
    """The image manifest's blob a link to a copy of its bytes outside the store. Canary: the bytes are right,
    so had the link been followed the layout would be valid and inspect would show it."""
    manifest = path / "blobs" / "sha256" / image_entry(path)["digest"].removeprefix("sha256:")
    outside = path.parent / "outside-manifest"
    outside.write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(outside)
    return "is not a valid OCI image layout: index.json.manifests[0]: names blob sha256:"


def index_json_a_fifo(path: Path) -> str:
    """index.json a FIFO no one writes to: opening it for reading would block forever."""
    (path / "index.json").unlink()
    os.mkfifo(path / "index.json")
    return "is not a valid OCI image layout: index.json: must be a regular file holding a JSON index: it is a FIFO"


def config_a_fifo(path: Path) -> str:
    """The image's config blob a FIFO."""
    manifest = json.loads(blob(path, image_entry(path)["digest"]))
    config = path / "blobs" / "sha256" / manifest["config"]["digest"].removeprefix("sha256:")
    config.unlink()
    os.mkfifo(config)
    return "index.json.manifests[0] config: names blob sha256:"


def huge_index_json(path: Path) -> str:
    """index.json a sparse GiB: read no further than the bound."""
    (path / "index.json").unlink()
    with open(path / "index.json", "wb") as file:
        file.truncate(GIB)
    return f"cannot be inspected: index.json is over {layout.MAX_DOCUMENT} bytes"


def index_naming_itself(path: Path) -> str:
    """An image index blob whose one entry names the index's own blob (its file name, not its digest, which no
    content can hold)."""
    name = "sha256:" + "ab" * 32
    inner = {"mediaType": layout.INDEX, "digest": name, "size": 0}
    data = json.dumps({"schemaVersion": 2, "mediaType": layout.INDEX, "manifests": [inner]}).encode()
    inner["size"] = len(data)
    data = json.dumps({"schemaVersion": 2, "mediaType": layout.INDEX, "manifests": [inner]}).encode()
    name_only(path, add_blob(path, data, name))
    return "is not a valid OCI image layout: index.json.manifests[0].digest: must be the blob's digest"


def indexes_nested_deeply(path: Path) -> str:
    """A chain of 1000 image indexes, each naming the next, the last naming busybox's image."""
    descriptor = {key: image_entry(path)[key] for key in ("mediaType", "digest", "size")}
    for _ in range(1000):
        data = json.dumps({"schemaVersion": 2, "mediaType": layout.INDEX, "manifests": [descriptor]}).encode()
        descriptor = add_blob(path, data)
    name_only(path, descriptor)
    return f"cannot be inspected whole: index.json.manifests[0] manifests[0]: a '{layout.INDEX}', not an image manifest"


def missing_layer(path: Path) -> str:
    """A layer's blob not in blobs/ (which the spec allows: validate warns)."""
    manifest = json.loads(blob(path, image_entry(path)["digest"]))
    (path / "blobs" / "sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")).unlink()
    return "cannot be inspected whole: index.json.manifests[0] layers[0]: blob sha256:"


@pytest.mark.parametrize(
    "spoil",
    [
        manifest_linked_out_of_the_store,
        index_json_a_fifo,
        config_a_fifo,
        huge_index_json,
        index_naming_itself,
        indexes_nested_deeply,
        missing_layer,
    ],
    ids=lambda spoil: spoil.__name__,
)
def test_inspect_of_a_hostile_layout_is_one_line(image_layout: Path, tmp_path: Path, spoil) -> None:
    path = writable_copy(image_layout, tmp_path / "layout")
    says = spoil(path)
    before = {name: os.lstat(path / name).st_mode for name in os.listdir(path)}
    result: subprocess.CompletedProcess = nix2aci("inspect", path, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"nix2aci: error: {path} "), result.stderr
    assert says in result.stderr, result.stderr
    assert {name: os.lstat(path / name).st_mode for name in os.listdir(path)} == before  # a FIFO left as it was

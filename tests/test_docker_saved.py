"""Docker Engine 20.10's own docker-archives (`docker save` of what `docker load` took), read by `nix2aci validate`,
`nix2aci inspect` and buildOCIImage's fromImage. Docker writes `ID/layer.tar`, `ID/json`, `ID/VERSION`,
`CONFIG.json`, `manifest.json` and `repositories`, and a layer identical to an earlier one as a symbolic link
`ID/layer.tar -> ../ID0/layer.tar`: nix2aci follows it (once, inside the archive).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build
from test_oci_base_archive import archive_members, assert_inherits, assert_runs, derived, in_store
from test_oci_layers import image_documents

pytestmark = pytest.mark.slow


def busybox_archive() -> Path:
    """busyboxArchive's tar."""
    (tar_path,) = nix_build("busyboxArchive").glob("*.tar")
    return tar_path


def with_last_layer_twice(source: Path, path: Path, tag: str) -> Path:
    """The docker-archive ``source`` rewritten at ``path`` as the image ``tag``: its layers uncompressed, the last
    one twice (two identical layers, which docker save links), its config's diff_ids to match."""
    members = archive_members(source)
    (entry,) = json.loads(members["manifest.json"])
    config = json.loads(members[entry["Config"]])
    layers = [gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data for data in map(members.get, entry["Layers"])]
    layers.append(layers[-1])
    config["rootfs"]["diff_ids"] = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    config.pop("history", None)  # its entries count the layers of busyboxArchive
    config_data = json.dumps(config).encode()
    names = [f"layer{i}.tar" for i in range(len(layers))]
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": names}]
    with tarfile.open(path, "w") as tar:
        documents = [("config.json", config_data), ("manifest.json", json.dumps(manifest).encode())]
        for name, data in [*zip(names, layers, strict=True), *documents]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def saved(dockerd, tmp_path_factory) -> dict[str, Path]:
    """Archives docker save wrote: "busybox" (busyboxArchive loaded) and "twin" (its last layer twice)."""
    directory = tmp_path_factory.mktemp("docker-saved")
    sources = {
        "busybox": busybox_archive(),
        "twin": with_last_layer_twice(busybox_archive(), directory / "twin-source.tar", "nix2aci-twin:t"),
    }
    archives = {}
    for name, source in sources.items():
        (image,) = dockerd.load(source)
        archives[name] = directory / f"{name}-saved.tar"
        dockerd("save", "-o", archives[name], image)
    return archives


def layer_members(path: Path) -> tuple[list[str], dict[str, tarfile.TarInfo]]:
    """manifest.json's Layers of the one image in the tar ``path``, and its members by name."""
    with tarfile.open(path) as tar:
        members = {member.name: member for member in tar.getmembers()}
        (entry,) = json.loads(tar.extractfile("manifest.json").read())
    return entry["Layers"], members


def test_docker_saves_its_own_shape_and_links_a_twin_layer(saved):
    layers, members = layer_members(saved["busybox"])
    assert {"manifest.json", "repositories"} <= set(members)
    for layer in layers:
        directory = layer.removesuffix("/layer.tar")
        assert {f"{directory}/json", f"{directory}/VERSION"} <= set(members)
        assert members[layer].isreg()
    layers, members = layer_members(saved["twin"])
    # The second of the two identical layers is a symbolic link to the first, relative to its directory.
    assert [members[layer].isreg() for layer in layers] == [True] * (len(layers) - 1) + [False]
    assert members[layers[-1]].issym() and members[layers[-1]].linkname == f"../{layers[-2]}"


@pytest.mark.parametrize("name", ["busybox", "twin"])
def test_a_docker_saved_archive_is_valid_and_inspect_shows_its_layers(saved, name):
    path = saved[name]
    result = nix2aci("validate", path, check=False)
    assert (result.returncode, result.stdout) == (0, f"{path}: valid docker-archive\n"), result.stdout
    (image,) = json.loads(nix2aci("inspect", path).stdout)["images"]
    layers, _ = layer_members(path)
    assert [layer["member"] for layer in image["layers"]] == layers
    assert [layer["diffID"] for layer in image["layers"]] == image["config"]["rootfs"]["diff_ids"]
    # docker save writes layers uncompressed: each one's digest is its diff_id.
    assert all(layer["compression"] == "none" and layer["digest"] == layer["diffID"] for layer in image["layers"])


def test_from_image_takes_a_docker_saved_archive_with_a_linked_layer(saved, podman_engine):
    members = archive_members(saved["twin"])
    (entry,) = json.loads(members["manifest.json"])
    base_config = json.loads(members[entry["Config"]])
    layout = derived(in_store(saved["twin"]))
    manifest, config = image_documents(layout)
    inherited = len(entry["Layers"])
    base_layers = manifest["layers"][:inherited]
    assert [layer["digest"] for layer in base_layers] == base_config["rootfs"]["diff_ids"]
    assert base_layers[-1] == base_layers[-2]  # the twin, one blob named twice
    assert_inherits(config, base_config, inherited)
    assert_runs(podman_engine, layout)

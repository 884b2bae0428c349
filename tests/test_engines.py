"""The OCI image layout that buildOCIImage makes today, run by the real container engines: podman, Docker Engine,
containerd and buildah (tests/engines.py), and inspected by skopeo.

Docker and containerd take a docker-archive: until buildOCIImage writes one itself, skopeo converts the layout.
Every run replaces the image's Entrypoint and Cmd by ``/bin/busybox sh -c ...`` and prints the PATH the image's
config sets, so it shows both that the layer was unpacked and that the config was read.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from conftest import nix_build, require, run
from engines import layout_image_name

pytestmark = pytest.mark.slow

# What the image's config says (pkgs/linux/busyboxImage.nix): PATH=/bin.
PROBE = ("/bin/busybox", "sh", "-c", "echo hi from $PATH")
PROBE_OUTPUT = "hi from /bin\n"
ARCHIVE_NAME = "localhost/nix2aci-busybox"


@pytest.fixture(scope="module")
def layout() -> Path:
    """The busybox image's OCI layout."""
    return nix_build("busyboxImage")


@pytest.fixture(scope="module")
def tag(layout: Path) -> str:
    """The tag of the layout's one image (index.json's ``org.opencontainers.image.ref.name``)."""
    (manifest,) = json.loads((layout / "index.json").read_text())["manifests"]
    return manifest["annotations"]["org.opencontainers.image.ref.name"]


@pytest.fixture(scope="module")
def archive(layout: Path, tag: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout's image as a docker-archive named ARCHIVE_NAME:TAG, written by skopeo."""
    require("skopeo")
    path = tmp_path_factory.mktemp("archive") / "busybox.tar"
    run(["skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker-archive:{path}:{ARCHIVE_NAME}:{tag}"])
    return path


def blob(layout: Path, digest: str) -> dict:
    """The JSON blob ``digest`` of ``layout``."""
    algorithm, hex_digest = digest.split(":")
    return json.loads((layout / "blobs" / algorithm / hex_digest).read_text())


def image_manifest(layout: Path) -> dict:
    """The manifest of the layout's one image."""
    (descriptor,) = json.loads((layout / "index.json").read_text())["manifests"]
    return blob(layout, descriptor["digest"])


def test_skopeo_inspect_shows_the_layers_and_the_config(layout, tag, archive):
    manifest = image_manifest(layout)
    config = blob(layout, manifest["config"]["digest"])
    shown = json.loads(run(["skopeo", "inspect", f"oci:{layout}:{tag}"]).stdout)
    assert shown["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert shown["Env"] == config["config"]["Env"]
    assert json.loads(run(["skopeo", "inspect", "--config", f"oci:{layout}:{tag}"]).stdout) == config
    # The archive's layers are the layout's, uncompressed: their digests are the config's diff_ids.
    with tarfile.open(archive) as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))
        layers = [hashlib.sha256(tar.extractfile(layer).read()).hexdigest() for layer in entry["Layers"]]
    assert [f"sha256:{digest}" for digest in layers] == config["rootfs"]["diff_ids"]


def test_podman_pulls_the_layout_and_runs_it(podman_engine, layout, tag):
    image = podman_engine.pull(f"oci:{layout}:{tag}")
    (inspected,) = json.loads(podman_engine("image", "inspect", image))
    assert inspected["RepoTags"] == [layout_image_name(layout)]
    assert podman_engine.run(image, *PROBE) == PROBE_OUTPUT
    assert podman_engine.run(layout_image_name(layout), *PROBE) == PROBE_OUTPUT


def test_podman_loads_the_docker_archive_and_runs_it(podman_engine, archive, tag):
    assert podman_engine.load(archive) == [f"{ARCHIVE_NAME}:{tag}"]
    assert podman_engine.run(f"{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_docker_loads_the_docker_archive_and_runs_it(dockerd, layout, archive, tag):
    assert dockerd.load(archive) == [f"{ARCHIVE_NAME}:{tag}"]
    config = blob(layout, image_manifest(layout)["config"]["digest"])
    inspected = dockerd.inspect(f"{ARCHIVE_NAME}:{tag}")
    assert inspected["Config"]["Env"] == config["config"]["Env"]
    assert inspected["Config"]["Labels"] == config["config"]["Labels"]
    assert dockerd.run(f"{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_containerd_imports_the_docker_archive_and_runs_it(containerd, archive, tag):
    assert containerd.import_archive(archive) == {f"{ARCHIVE_NAME}:{tag}"}
    assert containerd.run(f"{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_buildah_runs_a_container_from_the_layout(buildah_engine, layout, tag):
    assert buildah_engine.run(f"oci:{layout}:{tag}", *PROBE) == PROBE_OUTPUT

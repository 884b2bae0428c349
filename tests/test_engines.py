"""buildOCIImage's images run by the real container engines: podman, Docker Engine, containerd and buildah
(tests/engines.py), and inspected by skopeo. The OCI layout (busyboxImage) is pulled by podman and buildah; the
docker-archive (busyboxArchive) is loaded by docker, podman and containerd.

The image sets Cmd, not Entrypoint, as Docker Hub's busybox does: run as it is, it prints its greeting; given
``/bin/busybox sh -c ...`` in place of its Cmd it prints the PATH the image's config sets, which shows both that
the layers were unpacked and that the config was read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from conftest import nix_build, run
from engines import layout_image_name

pytestmark = pytest.mark.slow

# What the image's config says (pkgs/linux/busyboxImage.nix): PATH=/bin.
PROBE = ("/bin/busybox", "sh", "-c", "echo hi from $PATH")
PROBE_OUTPUT = "hi from /bin\n"
# What the image's Cmd prints.
GREETING = "Hello from busybox\n"
# The name busyboxArchive tags its image with (the package's pname).
ARCHIVE_NAME = "busybox"


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
def archive(tag: str) -> Path:
    """The same image as a docker-archive, tagged ARCHIVE_NAME:TAG: busyboxArchive's .tar (beside postprocess.sh)."""
    (path,) = nix_build("busyboxArchive").glob("*.tar")
    assert path.name == f"{ARCHIVE_NAME}-{tag}.tar"
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
    # The archive's Docker manifest names the layout's layers, whose uncompressed digests are the diff_ids.
    with tarfile.open(archive) as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))
        assert entry["RepoTags"] == [f"{ARCHIVE_NAME}:{tag}"]
        assert entry["Layers"] == [
            f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}" for layer in manifest["layers"]
        ]
        layers = [
            hashlib.sha256(gzip.decompress(tar.extractfile(layer).read())).hexdigest() for layer in entry["Layers"]
        ]
    assert [f"sha256:{digest}" for digest in layers] == config["rootfs"]["diff_ids"]


def test_podman_pulls_the_layout_and_runs_it(podman_engine, layout, tag):
    image = podman_engine.pull(f"oci:{layout}:{tag}")
    (inspected,) = json.loads(podman_engine("image", "inspect", image))
    assert inspected["RepoTags"] == [layout_image_name(layout)]
    assert podman_engine.run(image) == GREETING
    assert podman_engine.run(image, *PROBE) == PROBE_OUTPUT
    assert podman_engine.run(layout_image_name(layout), *PROBE) == PROBE_OUTPUT


def test_podman_loads_the_docker_archive_and_runs_it(podman_engine, archive, tag):
    assert podman_engine.load(archive) == [f"localhost/{ARCHIVE_NAME}:{tag}"]
    assert podman_engine.run(f"localhost/{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_docker_loads_the_docker_archive_and_runs_it(dockerd, layout, archive, tag):
    assert dockerd.load(archive) == [f"{ARCHIVE_NAME}:{tag}"]
    config = blob(layout, image_manifest(layout)["config"]["digest"])
    inspected = dockerd.inspect(f"{ARCHIVE_NAME}:{tag}")
    assert inspected["Config"]["Env"] == config["config"]["Env"]
    assert inspected["Config"]["Labels"] == config["config"]["Labels"]
    assert dockerd.run(f"{ARCHIVE_NAME}:{tag}") == GREETING
    # As with Docker Hub's busybox: the arguments replace the Cmd.
    assert dockerd.run(f"{ARCHIVE_NAME}:{tag}", "/bin/busybox", "echo", "hi") == "hi\n"
    assert dockerd.run(f"{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_containerd_imports_the_docker_archive_and_runs_it(containerd, archive, tag):
    assert containerd.import_archive(archive) == {f"docker.io/library/{ARCHIVE_NAME}:{tag}"}
    assert containerd.run(f"docker.io/library/{ARCHIVE_NAME}:{tag}", *PROBE) == PROBE_OUTPUT


def test_buildah_runs_a_container_from_the_layout(buildah_engine, layout, tag):
    assert buildah_engine.run(f"oci:{layout}:{tag}", *PROBE) == PROBE_OUTPUT

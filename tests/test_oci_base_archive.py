"""buildOCIImage's fromImage given a docker-archive, end to end with nix-build (sandbox on) and podman: ours
(busyboxArchive) and one `podman save` wrote, added to the store with `nix-store --add`. Its layers come first, as
blobs of the new image (gzip kept, an uncompressed layer's digest its diff_id), they count against maxLayers at
evaluation, its config is inherited; a hostile base archive fails the build with one line.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from conftest import nix_build, nix_build_expression, nix_eval_error, run
from test_oci_layers import image_documents

pytestmark = pytest.mark.slow

DERIVED = """n.lib.buildOCIImage {{
  packages = [ n.pkgs.hello ]; fromImage = {base}; name = "derived"; tag = "t";
  cmd = [ "/bin/hello" ]; env.GREETING = "hi"; labels."org.example.derived" = "yes"; {more}
}}"""


def archive_members(path: Path) -> dict[str, bytes]:
    """The regular members of the tar ``path``, by name."""
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isreg()}


def in_store(path: Path) -> str:
    """``path`` added to the Nix store, as a Nix expression with its context."""
    stored = run(["nix-store", "--add", str(path)]).stdout.strip()
    return f'(builtins.storePath "{stored}")'


def derived(base: str, more: str = "") -> Path:
    """The layout of hello over ``base`` (a Nix expression)."""
    return Path(nix_build_expression(DERIVED.format(base=base, more=more)).stdout.split()[-1])


def assert_inherits(config: dict, base_config: dict, inherited: int) -> None:
    """The derived image's config: the base's diff_ids first, Env merged, Labels merged, User and WorkingDir kept."""
    assert config["rootfs"]["diff_ids"][:inherited] == base_config["rootfs"]["diff_ids"]
    base = base_config["config"]
    assert config["config"]["Env"] == sorted([*base["Env"], "GREETING=hi"])
    assert config["config"]["Labels"] == {**(base.get("Labels") or {}), "org.example.derived": "yes"}
    assert (config["config"].get("User"), config["config"].get("WorkingDir")) == (
        base.get("User"),
        base.get("WorkingDir"),
    )
    assert config["config"]["Cmd"] == ["/bin/hello"]


def assert_runs(podman_engine, layout: Path) -> None:
    """podman runs the derived image: hello from the image, busybox from the base."""
    image = podman_engine.pull(f"oci:{layout}:t")
    assert podman_engine.run(image) == "Hello, world!\n"
    assert podman_engine.run(image, "/bin/busybox", "echo", "from the base") == "from the base\n"


def test_from_image_takes_our_docker_archive(podman_engine):
    (tar_path,) = nix_build("busyboxArchive").glob("*.tar")
    members = archive_members(tar_path)
    (entry,) = json.loads(members["manifest.json"])
    base_config = json.loads(members[entry["Config"]])
    layout = derived("n.busyboxArchive")
    manifest, config = image_documents(layout)
    inherited = len(entry["Layers"])
    # The archive's gzip layers are the image's first blobs, byte for byte.
    for descriptor, name in zip(manifest["layers"][:inherited], entry["Layers"], strict=True):
        data = members[name]
        assert descriptor == {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": f"sha256:{hashlib.sha256(data).hexdigest()}",
            "size": len(data),
        }
    assert len(manifest["layers"]) > inherited
    assert_inherits(config, base_config, inherited)
    assert_runs(podman_engine, layout)


def test_from_image_takes_an_archive_podman_saved(podman_engine, tmp_path):
    (tar_path,) = nix_build("busyboxArchive").glob("*.tar")
    (name,) = podman_engine.load(tar_path)
    saved = tmp_path / "podman-saved.tar"
    podman_engine("save", "--format", "docker-archive", "-o", saved, name)
    members = archive_members(saved)
    (entry,) = json.loads(members["manifest.json"])
    base_config = json.loads(members[entry["Config"]])
    layout = derived(in_store(saved))
    manifest, config = image_documents(layout)
    inherited = len(entry["Layers"])
    # podman's layers are uncompressed tars: they stay so, their digest their diff_id.
    for descriptor, diff_id in zip(manifest["layers"][:inherited], base_config["rootfs"]["diff_ids"], strict=True):
        assert descriptor["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
        assert descriptor["digest"] == diff_id
    assert_inherits(config, base_config, inherited)
    assert_runs(podman_engine, layout)


def test_an_archive_base_layers_count_against_max_layers_at_evaluation():
    (tar_path,) = nix_build("busyboxArchive").glob("*.tar")
    (entry,) = json.loads(archive_members(tar_path)["manifest.json"])
    inherited = len(entry["Layers"])
    message = nix_eval_error(f"({DERIVED.format(base='n.busyboxArchive', more=f'maxLayers = {inherited};')}).drvPath")
    assert f"fromImage has {inherited} layers, which count against maxLayers" in message, message


def hostile_archive(path: Path, source: Path, change) -> Path:
    """A copy of the docker-archive ``source`` whose manifest.json's first image ``change`` changed, at ``path``."""
    with tarfile.open(source) as tar, tarfile.open(path, "w") as out:
        for member in tar.getmembers():
            data = tar.extractfile(member).read() if member.isreg() else None
            if member.name == "manifest.json":
                document = json.loads(data)
                change(document[0])
                data = json.dumps(document).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    ("case", "change", "line"),
    [
        ("swapped", lambda image: image["Layers"].reverse(), "has the uncompressed sha256 sha256:"),
        (
            "missing",
            lambda image: image["Layers"].append("blobs/sha256/gone"),
            "is not a valid docker-archive: manifest.json[0].Layers[3]: names 'blobs/sha256/gone',"
            " which is not a member of the archive",
        ),
    ],
)
def test_a_hostile_base_archive_fails_the_build_with_one_line(case, change, line, tmp_path):
    (tar_path,) = nix_build("busyboxArchive").glob("*.tar")
    hostile = hostile_archive(tmp_path / f"hostile-{case}.tar", tar_path, change)
    result = nix_build_expression(DERIVED.format(base=in_store(hostile), more=""), check=False)
    assert result.returncode != 0
    errors = [shown for shown in result.stderr.splitlines() if shown.startswith("nix2aci: error: ")]
    assert len(errors) == 1 and errors[0].startswith("nix2aci: error: fromImage: /nix/store/"), result.stderr
    assert line in errors[0], errors[0]
    assert "Traceback" not in result.stderr


def test_a_base_that_is_neither_a_layout_nor_an_archive_fails_with_one_line(tmp_path):
    not_an_image = tmp_path / "not-an-image"
    not_an_image.mkdir()
    (not_an_image / "a.txt").write_text("hi")
    (not_an_image / "b.txt").write_text("ho")
    result = nix_build_expression(DERIVED.format(base=in_store(not_an_image), more=""), check=False)
    assert result.returncode != 0
    assert "nix2aci: error: fromImage: /nix/store/" in result.stderr
    assert "is neither an OCI image layout (oci-layout, index.json, blobs/) nor a directory holding exactly one" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr

"""`nix2aci validate` and `nix2aci inspect` on docker-archives: buildOCIImage's (busyboxArchive), one `podman save`
wrote, and hostile ones made from ours, each answered by one line naming what is wrong, the exit status validate
documents (1 invalid, 3 not checked), never a traceback or a hang (the CLI runs with conftest's hang guard).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build

pytestmark = pytest.mark.slow

Members = list[tuple[tarfile.TarInfo, bytes | None]]


@pytest.fixture(scope="module")
def archive_output() -> Path:
    """busyboxArchive's output: a directory holding NAME-TAG.tar."""
    return nix_build("busyboxArchive")


@pytest.fixture(scope="module")
def members(archive_output: Path) -> Members:
    """The members of busyboxArchive's tar, headers and contents."""
    (tar_path,) = archive_output.glob("*.tar")
    with tarfile.open(tar_path) as tar:
        return [(member, tar.extractfile(member).read() if member.isreg() else None) for member in tar.getmembers()]


def docker_manifest(members: Members) -> list[dict]:
    """manifest.json of ``members``."""
    return json.loads(next(data for member, data in members if member.name == "manifest.json"))


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular member ``name`` holding ``data``."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special_member(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    """A member of tar type ``kind`` (a link to ``target``, a FIFO...)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def replaced(members: Members, name: str, data: bytes) -> Members:
    """``members`` with the contents of ``name`` replaced by ``data``."""
    return [file_member(name, data) if member.name == name else (member, old) for member, old in members]


def with_manifest(members: Members, change: Callable[[dict], None]) -> Members:
    """``members`` with manifest.json's first image changed by ``change``."""
    document = docker_manifest(members)
    change(document[0])
    return replaced(members, "manifest.json", json.dumps(document).encode())


def write_archive(path: Path, members: Members) -> Path:
    """``members`` as the uncompressed tar ``path``."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def validate(path: Path, *options: str) -> tuple[int, list[str]]:
    """The exit status and output lines of ``nix2aci validate OPTIONS PATH``."""
    result = nix2aci("validate", *options, path, check=False)
    return result.returncode, result.stdout.splitlines()


def test_buildociimage_docker_archive_is_valid_as_file_and_as_its_output_directory(archive_output):
    (tar_path,) = archive_output.glob("*.tar")
    assert validate(tar_path) == (0, [f"{tar_path}: valid docker-archive"])
    assert validate(archive_output) == (0, [f"{archive_output}: valid docker-archive"])


def test_an_archive_podman_saved_is_valid_and_inspect_shows_its_layers(archive_output, podman_engine, tmp_path):
    (tar_path,) = archive_output.glob("*.tar")
    (name,) = podman_engine.load(tar_path)
    saved = tmp_path / "saved.tar"
    podman_engine("save", "--format", "docker-archive", "-o", saved, name)
    with tarfile.open(saved) as tar:  # podman's own shape: uncompressed layers, legacy links beside them
        assert any(member.issym() for member in tar.getmembers())
        podman_manifest = json.loads(tar.extractfile("manifest.json").read())
    assert validate(saved) == (0, [f"{saved}: valid docker-archive"])
    shown = json.loads(nix2aci("inspect", saved).stdout)
    (image,) = shown["images"]
    assert image["repoTags"] == podman_manifest[0]["RepoTags"] == [name]
    assert [layer["member"] for layer in image["layers"]] == podman_manifest[0]["Layers"]
    assert [layer["diffID"] for layer in image["layers"]] == image["config"]["rootfs"]["diff_ids"]
    # podman saves layers uncompressed: each one's digest is its diff_id.
    assert {layer["compression"] for layer in image["layers"]} == {"none"}
    assert all(layer["digest"] == layer["diffID"] for layer in image["layers"])


def test_a_layer_linked_to_its_twin_inside_the_archive_is_followed_once(members, tmp_path):
    """docker save's shape: ``ID/layer.tar`` a symbolic link to ``../ID0/layer.tar`` (relative to the link's
    directory); a hard link names its target from the archive's root."""
    layers = docker_manifest(members)[0]["Layers"]
    linked = [
        special_member("sym/layer.tar", tarfile.SYMTYPE, f"../{layers[0]}"),
        special_member("hard/layer.tar", tarfile.LNKTYPE, layers[1]),
    ]
    path = write_archive(
        tmp_path / "linked.tar",
        with_manifest(
            [*members, *linked], lambda image: image.update(Layers=["sym/layer.tar", "hard/layer.tar", *layers[2:]])
        ),
    )
    assert validate(path) == (0, [f"{path}: valid docker-archive"])
    (image,) = json.loads(nix2aci("inspect", path).stdout)["images"]
    assert [layer["member"] for layer in image["layers"]] == ["sym/layer.tar", "hard/layer.tar", *layers[2:]]
    assert [layer["diffID"] for layer in image["layers"]] == image["config"]["rootfs"]["diff_ids"]


def test_inspect_shows_our_archive_images_config_and_layers(archive_output, members):
    (entry,) = docker_manifest(members)
    shown = json.loads(nix2aci("inspect", archive_output).stdout)
    (image,) = shown["images"]
    contents = {member.name: data for member, data in members}
    config = json.loads(contents[entry["Config"]])
    assert image["config"] == config and image["repoTags"] == entry["RepoTags"]
    assert [layer["member"] for layer in image["layers"]] == entry["Layers"]
    for layer in image["layers"]:
        data = contents[layer["member"]]
        assert layer["digest"] == f"sha256:{hashlib.sha256(data).hexdigest()}" and layer["size"] == len(data)
        assert layer["diffID"] == f"sha256:{hashlib.sha256(gzip.decompress(data)).hexdigest()}"
        assert layer["compression"] == "gzip"


def first_layer(members: Members) -> str:
    return docker_manifest(members)[0]["Layers"][0]


def linked_layer(members: Members, link: tuple[tarfile.TarInfo, None]) -> Members:
    """``members`` and ``link``, which manifest.json names as the first layer."""
    return with_manifest([*members, link], lambda image: image["Layers"].__setitem__(0, link[0].name))


# Each hostile archive, made from busyboxArchive's members: (the members, the exit status, what its line says).
HOSTILE: dict[str, tuple[Callable[[Members], Members], int, str]] = {
    "dot-dot name": (
        lambda m: [*m, file_member("../evil", b"x")],
        1,
        "member '../evil': member names must be relative and stay inside the archive",
    ),
    "absolute name": (
        lambda m: [*m, file_member("/etc/evil", b"x")],
        1,
        "member '/etc/evil': member names must be relative and stay inside the archive",
    ),
    "link out of the archive": (
        lambda m: [*m, special_member("passwd", tarfile.SYMTYPE, "/etc/passwd")],
        1,
        "member 'passwd': must link inside the archive; it links to '/etc/passwd'",
    ),
    "layer linked out of the archive": (
        lambda m: linked_layer(m, special_member("x/layer.tar", tarfile.SYMTYPE, "../../etc/passwd")),
        1,
        "manifest.json[0].Layers[0]: names 'x/layer.tar', which links to '../../etc/passwd', outside the archive",
    ),
    "layer link loop": (
        lambda m: linked_layer(
            [*m, special_member("b.tar", tarfile.SYMTYPE, "x/layer.tar")],
            special_member("x/layer.tar", tarfile.SYMTYPE, "../b.tar"),
        ),
        1,
        "Layers[0]: names 'x/layer.tar', which links to '../b.tar', which is a symbolic link member: a link must"
        " name a regular file",
    ),
    "layer linked to itself": (
        lambda m: linked_layer(m, special_member("x/layer.tar", tarfile.SYMTYPE, "layer.tar")),
        1,
        "Layers[0]: names 'x/layer.tar', which links to 'layer.tar', which is a symbolic link member",
    ),
    "layer linked to a directory": (
        lambda m: linked_layer(
            [*m, special_member("d", tarfile.DIRTYPE)], special_member("x/layer.tar", tarfile.SYMTYPE, "../d")
        ),
        1,
        "Layers[0]: names 'x/layer.tar', which links to '../d', which is a directory member: a link must name a"
        " regular file",
    ),
    "layer linked to nothing": (
        lambda m: linked_layer(m, special_member("x/layer.tar", tarfile.LNKTYPE, "gone.tar")),
        1,
        "Layers[0]: names 'x/layer.tar', which links to 'gone.tar', which is not a member of the archive",
    ),
    "member twice": (
        lambda m: [*m, file_member("manifest.json", b"[]")],
        1,
        "member 'manifest.json': is in the archive twice: a docker-archive has each name once",
    ),
    "layer a FIFO": (
        lambda m: with_manifest(
            [*m, special_member("fifo.tar", tarfile.FIFOTYPE)],
            lambda image: image["Layers"].__setitem__(0, "fifo.tar"),
        ),
        1,
        "manifest.json[0].Layers[0]: names 'fifo.tar', which is a FIFO member, not a regular file",
    ),
    "layer a device": (
        lambda m: [*m, special_member("null", tarfile.CHRTYPE)],
        1,
        "member 'null': is a character device: only regular files, directories and links may be in a docker-archive",
    ),
    "missing layer": (
        lambda m: with_manifest(m, lambda image: image["Layers"].append("blobs/sha256/gone")),
        1,
        "manifest.json[0].Layers[3]: names 'blobs/sha256/gone', which is not a member of the archive",
    ),
    "layer out of the archive": (
        lambda m: with_manifest(m, lambda image: image["Layers"].__setitem__(0, "../layer.tar")),
        1,
        "manifest.json[0].Layers[0]: must name a member inside the archive (relative, without ..), got '../layer.tar'",
    ),
    "layers swapped": (
        lambda m: with_manifest(m, lambda image: image["Layers"].reverse()),
        1,
        "rootfs.diff_ids[0] is sha256:",
    ),
    "damaged gzip layer": (
        lambda m: replaced(m, first_layer(m), b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8),
        1,
        "which must be a layer (a tar, plain or compressed): it has damaged gzip data",
    ),
    "malformed tag": (
        lambda m: with_manifest(m, lambda image: image.__setitem__("RepoTags", ["Busy Box:1"])),
        1,
        "manifest.json[0].RepoTags[0]: must be NAME:TAG",
    ),
    "no manifest.json": (
        lambda m: [(member, data) for member, data in m if member.name != "manifest.json"],
        1,
        "manifest.json: must be a regular file holding a JSON Docker manifest.json",
    ),
    "manifest.json not JSON": (
        lambda m: replaced(m, "manifest.json", b"[{not json"),
        1,
        "manifest.json: ",
    ),
    "manifest.json of 10 MB": (
        lambda m: replaced(m, "manifest.json", b"[" + b" " * (10 << 20) + b"]"),
        3,
        "not checked: manifest.json is over 4194304 bytes, more than nix2aci reads",
    ),
    "config without rootfs": (
        lambda m: replaced(m, docker_manifest(m)[0]["Config"], b'{"architecture": "amd64", "os": "linux"}'),
        1,
        "manifest.json[0].Config (blobs/sha256/",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_gets_its_one_line_and_status(case, members, tmp_path):
    make, status, line = HOSTILE[case]
    path = write_archive(tmp_path / "hostile.tar", make(members))
    found, lines = validate(path)
    assert found == status, lines
    assert any(line in shown and shown.startswith(f"{path}: ") for shown in lines), lines
    assert not any(shown.endswith("valid docker-archive") for shown in lines)


def test_a_cut_archive_and_a_member_claiming_more_than_the_file_holds_are_cut_short(archive_output, tmp_path):
    (tar_path,) = archive_output.glob("*.tar")
    data = tar_path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2 + 100])
    assert validate(cut) == (1, [f"{cut}: ends in the middle of a member's contents: it is cut short"])
    header = tarfile.TarInfo("huge.tar")
    header.size = 1 << 40
    liar = tmp_path / "liar.tar"
    liar.write_bytes(header.tobuf(tarfile.GNU_FORMAT) + b"x" * 1024)
    assert validate(liar) == (1, [f"{liar}: ends in the middle of a member's contents: it is cut short"])


def test_what_is_no_uncompressed_tar_is_invalid_or_not_checked(archive_output, tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(bytes(range(256)) * 8)
    status, lines = validate(garbage, "--type", "docker-archive")
    assert status == 1 and lines[0].startswith(f"{garbage}: must be an uncompressed tar archive (a docker-archive)")
    (tar_path,) = archive_output.glob("*.tar")
    compressed = tmp_path / "compressed.tar"
    compressed.write_bytes(gzip.compress(tar_path.read_bytes()))
    status, lines = validate(compressed, "--type", "docker-archive")
    assert status == 3 and lines == [
        f"{compressed}: not checked: it is compressed with gzip: docker load takes that, nix2aci reads a"
        " docker-archive uncompressed; decompress it to check it"
    ]


def test_too_many_members_are_not_checked(tmp_path):
    many = tmp_path / "many.tar"
    write_archive(many, [file_member(f"m{i}", b"") for i in range((1 << 16) + 1)])
    assert validate(many) == (3, [f"{many}: not checked: it has over 65536 members, more than nix2aci reads"])

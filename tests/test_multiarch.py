"""Multi-architecture images: the offline set's arm64 busybox, buildOCIIndex over the amd64 and arm64 busybox
images (skopeo, nix2aci validate, podman with an aarch64 emulator), and `nix2aci run` refusing an ACI of an
architecture the host cannot run.

The emulator is Debian's qemu-user-static, registered for the tests that run arm64 programs under a name of
their own and removed afterwards; a handler someone else registered is used, never removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    UNSIGNED,
    nix2aci,
    nix2aci_command,
    nix2aci_environment,
    nix2aci_run,
    nix_build,
    nix_build_expression,
    nix_eval_error,
    nix_eval_json,
    require,
    run,
)

from nix2aci import host_platform
from nix2aci.oci import layout as oci_layout

pytestmark = pytest.mark.slow

BINFMT_MISC = Path(host_platform.BINFMT_MISC)
# Debian's registration of qemu-user-static for aarch64 (the line systemd-binfmt would write).
QEMU_AARCH64 = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
ARM64_ACI = 'n.lib.mkACI { packages = [ n.pkgs.busyboxArm64 ]; exec = [ "/bin/busybox" "uname" "-m" ]; }'


@pytest.fixture(scope="module")
def multiarch() -> Path:
    return nix_build("busyboxMultiArch")


@pytest.fixture(scope="module")
def images() -> dict[str, Path]:
    """The two images of busyboxMultiArch, by Go architecture."""
    return {"amd64": nix_build("busyboxImage"), "arm64": nix_build("busyboxArm64Image")}


@pytest.fixture(scope="module")
def tag() -> str:
    return nix_eval_json("n.busyboxImage.ociImage.tag")


def blob(layout: Path, digest: str) -> dict:
    return json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text())


def only_manifest(layout: Path) -> dict:
    """The one image descriptor of ``layout``'s index.json (beside its SBOM artifacts)."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    (entry,) = [entry for entry in manifests if "artifactType" not in entry]
    return entry


def skopeo(*args: str) -> str:
    return run([require("skopeo"), *args]).stdout


@pytest.fixture
def aarch64_emulator() -> Iterator[str]:
    """An enabled binfmt_misc handler for aarch64 ELF programs (qemu-user-static's): its name.

    binfmt_misc is mounted if it is not, and unmounted afterwards if this mounted it and holds no handler; a
    handler of this fixture's own is registered when none runs aarch64 programs, and removed afterwards.
    """
    require("qemu-aarch64-static")
    if not QEMU_AARCH64.is_file():
        pytest.fail(f"{QEMU_AARCH64} is missing: install qemu-user-static (./scripts/setup does)")
    mounted = False
    if not (BINFMT_MISC / "status").exists():
        result = run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_MISC)], check=False)
        if result.returncode != 0:
            pytest.fail(f"cannot mount binfmt_misc on {BINFMT_MISC}: {result.stderr.strip()}")
        mounted = True
    registered = None
    try:
        existing = host_platform.emulated("aarch64")
        if existing is not None:
            yield existing
            return
        registered = f"nix2aci-test-aarch64-{uuid.uuid4().hex[:8]}"
        line = QEMU_AARCH64.read_text().strip()
        (BINFMT_MISC / "register").write_text(":" + registered + line[line.index(":", 1) :] + "\n")
        assert host_platform.emulated("aarch64") == registered
        yield registered
    finally:
        if registered is not None and (BINFMT_MISC / registered).exists():
            (BINFMT_MISC / registered).write_text("-1\n")
        if mounted and sorted(os.listdir(BINFMT_MISC)) == ["register", "status"]:
            run(["umount", str(BINFMT_MISC)])


def test_the_arm64_busybox_is_an_aarch64_program_from_debian():
    busybox = Path(nix_eval_json("n.pkgs.busyboxArm64.outPath"))
    header = (busybox / "bin" / "busybox").read_bytes()[:20]
    # 64-bit, little endian, e_machine EM_AARCH64 (183).
    assert (header[:6], int.from_bytes(header[18:20], "little")) == (b"\x7fELF\x02\x01", 183)
    assert nix_eval_json("n.pkgs.busyboxArm64.stdenv.hostPlatform.system") == "aarch64-linux"
    # Its applets are links to it, as in the amd64 busybox: its own --list (run with qemu) named them.
    applets = {entry.name for entry in (busybox / "bin").iterdir() if entry.is_symlink()}
    assert {"sh", "uname", "ls"} <= applets
    assert all(os.readlink(busybox / "bin" / applet) == "busybox" for applet in applets)
    run(["nix-store", "--verify-path", str(busybox)])


def test_the_index_lists_each_image_with_its_platform(multiarch, images, tag):
    top = only_manifest(multiarch)
    assert top["mediaType"] == oci_layout.INDEX
    assert top["annotations"] == {oci_layout.REF_NAME: tag}
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{multiarch}:{tag}"))
    assert raw["mediaType"] == oci_layout.INDEX
    listed = {entry["platform"]["architecture"]: entry for entry in raw["manifests"]}
    assert [entry["platform"] for entry in raw["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64"},
    ]
    for arch, image in images.items():
        assert listed[arch]["digest"] == only_manifest(image)["digest"]
        assert blob(multiarch, listed[arch]["digest"]) == blob(image, listed[arch]["digest"])
    # The index references its images: nothing of them is stored twice.
    references = run(["nix-store", "-q", "--references", str(multiarch)]).stdout.split()
    assert {str(image) for image in images.values()} <= set(references)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_skopeo_picks_each_platforms_image(multiarch, images, tag, arch, tmp_path):
    config = json.loads(
        skopeo("--override-os", "linux", "--override-arch", arch, "inspect", "--config", f"oci:{multiarch}:{tag}")
    )
    assert (config["os"], config["architecture"]) == ("linux", arch)
    own = images[arch]
    assert config == blob(own, blob(own, only_manifest(own)["digest"])["config"]["digest"])
    skopeo("copy", "--override-arch", arch, f"oci:{multiarch}:{tag}", f"oci:{tmp_path}:{tag}")
    assert only_manifest(tmp_path)["digest"] == only_manifest(own)["digest"]


def test_skopeo_copies_the_whole_index(multiarch, tag, tmp_path):
    skopeo("copy", "--all", f"oci:{multiarch}:{tag}", f"oci:{tmp_path / 'copy'}:{tag}")
    index = skopeo("inspect", "--raw", f"oci:{tmp_path / 'copy'}:{tag}")
    assert json.loads(index) == blob(multiarch, only_manifest(multiarch)["digest"])
    assert nix2aci("validate", tmp_path / "copy").returncode == 0


def test_validate_accepts_the_index_and_checks_each_platform(multiarch, tmp_path):
    result = nix2aci("validate", multiarch)
    assert f"{multiarch}: valid oci-layout" in result.stdout
    # A copy whose index says arm64 for the amd64 image: a new index blob, named in index.json.
    copy = tmp_path / "lying"
    shutil.copytree(multiarch, copy, symlinks=True)
    os.chmod(copy / "blobs" / "sha256", 0o755)
    index = blob(multiarch, only_manifest(multiarch)["digest"])
    index["manifests"][0]["platform"]["architecture"] = "arm64"
    lying = oci_layout.canonical(index)
    digest = "sha256:" + hashlib.sha256(lying).hexdigest()
    (copy / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(lying)
    os.chmod(copy / "index.json", 0o644)
    top = {**json.loads((copy / "index.json").read_text())}
    top["manifests"][0].update(digest=digest, size=len(lying))
    (copy / "index.json").write_text(json.dumps(top))
    result = nix2aci("validate", copy, check=False)
    assert result.returncode == 1, result.stdout
    assert (
        "index.json.manifests[0] manifests[0].platform: must be the platform its config says, linux/amd64,"
        " got linux/arm64"
    ) in result.stdout + result.stderr


def test_podman_pulls_the_arm64_image_and_runs_it_emulated(multiarch, tag, aarch64_emulator, podman_engine):
    image = podman_engine(
        "pull", "--quiet", "--arch", "arm64", "--signature-policy", podman_engine.policy, f"oci:{multiarch}:{tag}"
    ).strip()
    inspected = json.loads(podman_engine("image", "inspect", image))[0]
    assert inspected["Architecture"] == "arm64"
    assert podman_engine.run(image, "busybox", "uname", "-m") == "aarch64\n"


def test_two_images_of_one_platform_fail_at_evaluation_naming_both(tag):
    message = nix_eval_error(
        "(n.lib.buildOCIIndex { images = [ n.busyboxImage n.busyboxArm64Image n.busyboxImage ]; }).drvPath"
    )
    assert (
        f"buildOCIIndex: images[0] (busybox:{tag}) and images[2] (busybox:{tag}) are both for linux/amd64;"
        " an index holds one image per platform"
    ) in message


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (
            "n.busyboxArchive",
            'images[0] (busybox:TAG) must be an image layout (format = "oci-layout"), got format = "docker-archive"',
        ),
        ("n.pkgs.busybox", "images[0] must be an OCI image made by buildOCIImage, got the package busybox-"),
        ("", "images must not be empty"),
    ],
)
def test_an_index_takes_only_image_layouts_of_buildociimage(images, expected, tag):
    message = nix_eval_error(f"(n.lib.buildOCIIndex {{ images = [ {images} ]; }}).drvPath")
    assert "buildOCIIndex: " + expected.replace("TAG", tag) in message


def test_the_builder_refuses_an_image_whose_config_says_another_platform():
    # Nix told an amd64 image is arm64: the config is what the builder trusts.
    arm64 = '{ os = "linux"; arch = "arm64"; variant = null; }'
    told = f"n.busyboxImage // {{ ociImage = n.busyboxImage.ociImage // {{ platform = {arm64}; }}; }}"
    result = nix_build_expression(f"n.lib.buildOCIIndex {{ images = [ ({told}) ]; }}", check=False)
    assert result.returncode != 0
    assert "images[0]: " in result.stderr
    assert "'s config is for linux/amd64, but Nix gave its platform as linux/arm64" in result.stderr


def test_the_builder_refuses_an_image_that_is_no_layout():
    # A docker-archive passed off as a layout: one line naming the image and what is wrong.
    passed_off = "n.busyboxArchive // { ociImage = n.busyboxImage.ociImage; }"
    result = nix_build_expression(f"n.lib.buildOCIIndex {{ images = [ ({passed_off}) ]; }}", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("nix2aci: error: ")]
    assert len(errors) == 1 and "images[0]: " in errors[0] and "is not a valid OCI image layout: " in errors[0]
    assert "Traceback" not in result.stderr


def test_run_refuses_an_aci_of_an_arch_the_host_cannot_run(tmp_path):
    aci = next(Path(nix_build_expression(ARM64_ACI).stdout.split()[-1]).glob("*.aci"))
    assert aci.name.endswith("-linux-aarch64.aci")
    with tarfile.open(aci) as archive:
        labels = json.load(archive.extractfile("manifest"))["labels"]
    assert {"name": "os", "value": "linux"} in labels and {"name": "arch", "value": "aarch64"} in labels
    # As on a host with no emulator: a binfmt_misc of no handlers, in a mount namespace of this run's own.
    hidden = f'mount -t tmpfs none {BINFMT_MISC} && exec "$@"'
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hidden, "sh"]
    result = subprocess.run(
        [*command, *nix2aci_command("run", UNSIGNED, aci)],
        capture_output=True, text=True, env=nix2aci_environment({"TMPDIR": str(tmp_path)}), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    host_os, host_arch = host_platform.host()
    assert result.stderr == (
        f"nix2aci: error: {aci} is for linux/aarch64, and this host runs {host_os}/{host_arch} with no binfmt_misc"
        " handler for aarch64 programs: register an emulator (Debian's qemu-user-static with binfmt-support) to"
        " run it\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_run_runs_an_aci_of_another_arch_with_an_emulator(aarch64_emulator, tmp_path):
    aci = next(Path(nix_build_expression(ARM64_ACI).stdout.split()[-1]).glob("*.aci"))
    assert nix2aci_run(aci, tmp=tmp_path).stdout == "aarch64\n"


def write_entry(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        # Debian's qemu-aarch64: e_type masked to take executables and shared objects.
        ("enabled\ninterpreter /q\nflags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n"
         "mask ffffffffffffff00fffffffffffffffffeffffff\n", True),
        # The mask makes the magic's OS ABI byte (3 here) and e_type's low bit (3: a shared object) not count.
        ("enabled\ninterpreter /q\nflags: F\noffset 0\nmagic 7f454c460201010300000000000000000300b700\n"
         "mask ffffffffffffff00fffffffffffffffffeffffff\n", True),
        ("enabled\ninterpreter /q\nflags: F\noffset 0\nmagic 7f454c460201010300000000000000000300b700\n", False),
        ("disabled\ninterpreter /q\nflags: \noffset 0\nmagic 7f454c460201010000000000000000000200b700\n", False),
        # arm (32-bit, e_machine 40), not aarch64.
        ("enabled\ninterpreter /q\nflags: \noffset 0\nmagic 7f454c460101010000000000000000000200280000\n", False),
        # An extension handler (.jar), and one that cannot be read: not counted.
        ("enabled\ninterpreter /j\nflags: \nextension .jar\n", False),
        ("enabled\ninterpreter /q\noffset x\nmagic zz\n", False),
    ],
)  # fmt: skip
def test_emulated_reads_binfmt_misc_as_the_kernel_matches(tmp_path, entry, found):
    write_entry(tmp_path, "status", "enabled\n")
    write_entry(tmp_path, "register", "")
    write_entry(tmp_path, "handler", entry)
    assert host_platform.emulated("aarch64", str(tmp_path)) == ("handler" if found else None)
    write_entry(tmp_path, "status", "disabled\n")
    assert host_platform.emulated("aarch64", str(tmp_path)) is None


def test_refusal_names_the_image_and_the_host():
    host_os, host_arch = host_platform.host()
    assert host_platform.refusal("x.aci", host_os, host_arch) is None
    assert host_platform.refusal("x.aci", None, None) is None
    assert host_platform.refusal("x.aci", host_os, None) is None
    assert (
        host_platform.refusal("x.aci", "freebsd", "amd64")
        == f"x.aci is for freebsd/amd64, and this host runs {host_os}/{host_arch}"
    )

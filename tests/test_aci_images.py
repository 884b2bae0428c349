"""End to end: every ACI of default.nix, built by real nix-build with the sandbox on,
checked by actool and nix2aci and run by runc (tests/test_reproducible.py rebuilds each bit for bit)."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from conftest import UNSIGNED, nix2aci, nix_build, nix_eval_json, only_aci, require, run, store_closure

pytestmark = pytest.mark.slow

IMAGES = [
    "bbpython",
    "bbpythonThin",
    "busybox",
    "busyboxStatic",
    "busyboxThin",
    "etcd",
    "etcdThin",
    "hello",
    "helloThin",
]


@pytest.fixture(scope="module")
def built() -> dict[str, object]:
    """attribute -> its .aci in the store."""
    return {attribute: only_aci(nix_build(attribute)) for attribute in IMAGES}


def test_default_nix_exposes_exactly_the_tested_acis():
    # A new image in pkgs/ must be added to IMAGES, so that it is validated too.
    images = 'builtins.attrNames (removeAttrs n [ "lib" "pkgs" "nix2aci" ])'
    attributes = nix_eval_json(f'builtins.filter (name: n.${{name}}.nix2aci.format == "aci") ({images})')
    assert sorted(attributes) == sorted(IMAGES)


@pytest.mark.parametrize("attribute", IMAGES)
def test_actool_and_nix2aci_accept_the_image(built, attribute):
    image = built[attribute]
    require("actool")
    run(["actool", "--debug", "validate", "--type=appimage", str(image)])
    assert nix2aci("validate", str(image)).stdout.strip() == f"{image}: valid aci"


@pytest.mark.parametrize("attribute", IMAGES)
def test_image_layout_is_deterministic_and_spec_shaped(built, attribute):
    image = built[attribute]
    with tarfile.open(image, "r:gz") as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names == sorted(names, key=str.encode)
    assert names[:2] == ["manifest", "rootfs"]
    assert len(set(names)) == len(names)
    assert all(name in ("manifest", "rootfs") or name.startswith("rootfs/") for name in names)
    assert {member.mtime for member in members} == {1}
    assert {(member.uid, member.gid, member.uname, member.gname) for member in members} == {(0, 0, "root", "root")}
    assert not any(member.islnk() for member in members)
    # gzip header: no file name, no time (gzip -n).
    header = image.read_bytes()[:10]
    assert header[3] & 0x08 == 0 and header[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("attribute", IMAGES)
def test_image_id_is_the_sha512_of_the_uncompressed_tar(built, attribute):
    image = built[attribute]
    expected = "sha512-" + hashlib.sha512(gzip.decompress(image.read_bytes())).hexdigest()
    assert (image.parent / f"{image.name}.id").read_text() == expected + "\n"


def manifest_of(image) -> dict:
    with tarfile.open(image, "r:gz") as tar:
        return json.load(tar.extractfile("manifest"))


def test_busybox_manifest_carries_name_labels_and_exec(built):
    manifest = manifest_of(built["busybox"])
    assert manifest["acKind"] == "ImageManifest"
    assert manifest["acVersion"] == "0.8.11"
    assert manifest["name"] == "busybox"
    labels = {label["name"]: label["value"] for label in manifest["labels"]}
    version = labels["version"]
    assert labels == {"version": version, "os": "linux", "arch": "amd64"}
    assert built["busybox"].name == f"busybox-{version}-linux-amd64.aci"
    ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert manifest["app"] == {
        "exec": ["/bin/busybox", "sh"],
        "user": "0",
        "group": "0",
        "environment": [
            {"name": "NIX_SSL_CERT_FILE", "value": ca_bundle},
            {"name": "SSL_CERT_FILE", "value": ca_bundle},
        ],
    }


def test_fat_image_carries_the_closure_and_a_profile(built):
    with tarfile.open(built["hello"], "r:gz") as tar:
        members = {member.name: member for member in tar}
    store = {name.split("/")[3] for name in members if name.startswith("rootfs/nix/store/")}
    # hello's closure and the CA bundle (a basic of every image), as the package set has them.
    assert store == {path.name for path in store_closure("[ n.pkgs.hello n.pkgs.cacert ]")}
    assert {"rootfs/nix", "rootfs/nix/store"} <= set(members)
    hello_store_path = Path(nix_eval_json("n.pkgs.hello.outPath")).name
    # The profile, as buildEnv makes it: a directory only hello provides is one symlink to it.
    assert members["rootfs/bin"].issym()
    assert members["rootfs/bin"].linkname == f"/nix/store/{hello_store_path}/bin"
    assert not any(name.startswith("rootfs/bin/") for name in members)


def test_static_image_is_the_package_tree_alone(built):
    with tarfile.open(built["busyboxStatic"], "r:gz") as tar:
        names = tar.getnames()
    assert "rootfs/bin/busybox" in names
    assert not any(name.startswith("rootfs/nix") for name in names)


def test_fat_busybox_runs_in_runc_without_the_host_store(built, is_root):
    require("runc")
    result = nix2aci(
        "run", UNSIGNED, str(built["busybox"]), "--", "-c", "echo hi from $(busybox uname -s); ls /nix/store | wc -l"
    )
    lines = result.stdout.split()
    assert lines[:3] == ["hi", "from", "Linux"]
    # Only the image's store paths (busybox's closure, the CA bundle) are there: the host store is not mounted.
    assert lines[3] == str(len(store_closure("[ n.pkgs.busybox n.pkgs.cacert ]")))


def test_fat_hello_runs_with_its_dynamic_closure(built, is_root):
    require("runc")
    assert nix2aci("run", UNSIGNED, str(built["hello"])).stdout == "Hello, world!\n"


def test_static_busybox_runs(built, is_root):
    require("runc")
    assert nix2aci("run", UNSIGNED, str(built["busyboxStatic"]), "--", "-c", "echo static ok").stdout == "static ok\n"

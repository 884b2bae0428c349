"""buildContainer bundles and buildOCIImage layouts, against real runc, umoci and skopeo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    delete_containers,
    new_container_id,
    nix_build,
    nix_build_expression,
    nix_eval_error,
    nix_eval_json,
    require,
    run,
)

from nix2aci.oci import layout, runtime

pytestmark = pytest.mark.slow


def runc(bundle: Path, stdin: str = "") -> str:
    """Run a bundle with runc; return its stdout. The container is gone afterwards, even when the run timed out."""
    require("runc")
    container = new_container_id()
    try:
        return run(["runc", "run", "--bundle", str(bundle), container], input=stdin, timeout=PATIENCE).stdout
    finally:
        delete_containers([container])


def verify_store_path(path: Path) -> None:
    """nix-store --verify-path fails if running the bundle changed it."""
    run(["nix-store", "--verify-path", str(path)])


def build_container(arguments: str) -> Path:
    return Path(nix_build_expression(f"n.lib.buildContainer {{ {arguments} }}").stdout.split()[-1])


@pytest.fixture(scope="module")
def image() -> Path:
    return nix_build("busyboxImage")


def test_hello_bundle_runs_and_stays_unchanged(is_root):
    bundle = nix_build("helloContainer")
    assert runc(bundle) == "Hello, world!\n"
    verify_store_path(bundle)


def test_busybox_bundle_runs_a_shell_with_its_settings(is_root):
    bundle = nix_build("busyboxContainer")
    config = json.loads((bundle / "config.json").read_text())
    assert runtime.problems(config) == []
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert {"type": "mount"} in config["linux"]["namespaces"]
    destinations = [mount["destination"] for mount in config["mounts"]]
    assert destinations[:5] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"]
    for destination in destinations:
        assert (bundle / "rootfs" / destination.lstrip("/")).is_dir(), destination
    output = runc(bundle, "echo $(hostname) $PATH; ls /bin/ls; touch /x 2>/dev/null || echo read-only\n")
    assert output == "busybox /bin\n/bin/ls\nread-only\n"
    verify_store_path(bundle)


def test_user_cwd_env_and_mounts_are_honoured(is_root, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "greeting").write_text("from the host\n")
    bundle = build_container(
        'args = [ "${n.pkgs.busybox}/bin/sh" "-c" "echo $FOO; pwd; id -u; id -g; cat /data/greeting" ];'
        ' env.FOO = "bar"; cwd = "/srv/app"; user = { uid = 1000; gid = 100; };'
        f' mounts."/data" = {{ type = "bind"; source = "{tmp_path / "data"}"; options = [ "rbind" "ro" ]; }};'
    )
    assert runc(bundle).splitlines() == ["bar", "/srv/app", "1000", "100", "from the host"]
    assert (bundle / "rootfs/srv/app").is_dir() and (bundle / "rootfs/data").is_dir()
    verify_store_path(bundle)


def test_thin_bundle_binds_the_store_paths_read_only(is_root):
    bundle = build_container('args = [ "${n.pkgs.hello}/bin/hello" ]; thin = true;')
    assert [p for p in (bundle / "rootfs/nix").rglob("*") if p.is_file()] == []
    config = json.loads((bundle / "config.json").read_text())
    binds = [m for m in config["mounts"] if m["destination"].startswith("/nix/store/")]
    assert "hello-1.0" in [Path(m["source"]).name.split("-", 1)[1] for m in binds]
    assert all(m["options"] == ["rbind", "ro"] and m["source"] == m["destination"] for m in binds)
    assert runc(bundle) == "Hello, world!\n"
    verify_store_path(bundle)


def test_image_layout_passes_nix2aci_umoci_and_skopeo(image, tmp_path, is_root):
    assert layout.problems(str(image)) == []
    # buildOCIImage tags the image with its first package's version.
    tag = nix_eval_json("n.pkgs.busybox.version")
    require("skopeo")
    inspected = json.loads(run(["skopeo", "inspect", "--config", f"oci:{image}:{tag}"]).stdout)
    assert inspected["architecture"] == "amd64" and inspected["os"] == "linux"
    # Cmd, not Entrypoint, as Docker Hub's busybox: `docker run IMAGE CMD...` replaces it.
    assert "Entrypoint" not in inspected["config"]
    assert inspected["config"]["Cmd"] == ["/bin/sh", "-c", "echo Hello from busybox"]
    ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert inspected["config"]["Env"] == [f"NIX_SSL_CERT_FILE={ca_bundle}", "PATH=/bin", f"SSL_CERT_FILE={ca_bundle}"]
    assert inspected["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert inspected["config"]["User"] == "0:0"
    run(["skopeo", "copy", f"oci:{image}:{tag}", f"oci:{tmp_path / 'copy'}:copied"])
    require("umoci")
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack", "--image", f"{image}:{tag}", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    assert runc(bundle) == "Hello from busybox\n"


def mutated_copy(image: Path, tmp_path: Path) -> Path:
    """A writable copy of the layout ``image``. Links are copied as links: following one
    could copy whatever it names (a whole store, a device) into the test's directory."""
    copy = tmp_path / "layout"
    shutil.copytree(image, copy, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def test_layout_check_catches_what_skopeo_lets_through(image, tmp_path):
    copy = mutated_copy(image, tmp_path)
    index = json.loads((copy / "index.json").read_text())
    index["manifests"][0]["size"] += 1
    (copy / "index.json").write_text(json.dumps(index))
    found = [str(problem) for problem in layout.problems(str(copy))]
    assert any("index.json.manifests[0].size: must be the blob's size" in problem for problem in found), found


def test_layout_check_catches_a_wrong_diff_id(image, tmp_path):
    copy = mutated_copy(image, tmp_path)
    index = json.loads((copy / "index.json").read_text())
    manifest_path = copy / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_text())
    config_path = copy / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]
    config = json.loads(config_path.read_text())
    # The compressed digests: a classic mistake.
    config["rootfs"]["diff_ids"] = [layer["digest"] for layer in manifest["layers"]]
    config_path.write_text(json.dumps(config))
    found = [str(problem) for problem in layout.problems(str(copy))]
    assert any("config.rootfs.diff_ids: must be the uncompressed layers' digests" in problem for problem in found)
    assert any("config blob).digest" in problem or "config.digest" in problem for problem in found), found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            'n.lib.buildContainer { args = "${n.pkgs.hello}/bin/hello"; }',
            "buildContainer: args must be a list of strings",
        ),
        (
            'n.lib.buildContainer { args = [ "${n.pkgs.hello}/bin/hello" ]; mounts.data = { }; }',
            "the name of mounts.data must be an absolute path",
        ),
        (
            'n.lib.buildContainer { args = [ "${n.pkgs.hello}/bin/hello" ]; arch = "x86_64"; }',
            "arch must be one of amd64, 386",
        ),
        (
            'n.lib.buildContainer { args = [ "${n.pkgs.hello}/bin/hello" ]; user.uid = -1; }',
            "user.uid must be an integer from 0",
        ),
        (
            'n.lib.buildContainer { args = [ "/bin/true" ]; cacert = null; }',
            "args name no store path and packages is empty",
        ),
        ('n.lib.buildContainer { args = [ "x" ]; readOnly = true; }', "unknown argument 'readOnly'"),
        (
            'n.lib.buildOCIImage { packages = [ n.pkgs.hello ]; exposedPorts = [ "http" ]; }',
            'exposedPorts[0] must be a port like "80/tcp"',
        ),
        ('n.lib.buildOCIImage { packages = [ n.pkgs.hello ]; tag = "-bad"; }', "tag must be an OCI tag"),
    ],
)
def test_bad_arguments_fail_at_evaluation(expression, expected):
    assert expected in nix_eval_error(f"({expression}).drvPath")

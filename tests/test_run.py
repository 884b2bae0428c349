"""nix2aci run, inspect and build-thin against real images, nix-build and runc."""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    UNSIGNED,
    ac_name,
    built_aci,
    nix2aci,
    nix2aci_started,
    nix_build,
    nix_build_expression,
    nix_eval_json,
    only_aci,
    read_line,
    require,
    run,
    store_closure,
)

pytestmark = pytest.mark.slow

# A package with a shell script `probe` that prints what an app sees, and an
# /etc/passwd and /etc/group naming user "app" (uid 1234) and group "app" (gid 4321).
PROBE_PACKAGE = """
(derivation {
  name = "probe-1.0";
  system = builtins.currentSystem;
  builder = "${n.pkgs.busybox}/bin/sh";
  args = [ "-c" ''
    PATH=${n.pkgs.busybox}/bin
    mkdir -p $out/bin $out/etc
    printf '#!/bin/sh\\necho "FOO=$FOO"; echo "cwd=$(pwd)"\\n' > $out/bin/probe
    printf 'echo "uid=$(id -u) gid=$(id -g)"; echo "args=$*"\\n' >> $out/bin/probe
    chmod +x $out/bin/probe
    echo 'app:x:1234:4321::/:/bin/sh' > $out/etc/passwd
    echo 'app:x:4321:' > $out/etc/group
  '' ];
})
"""


def build_image(arguments: str) -> Path:
    """Build mkACI { packages = [ busybox probe ]; ARGUMENTS }; return its .aci."""
    expression = f'n.lib.mkACI {{ packages = [ n.pkgs.busybox {PROBE_PACKAGE} ]; name = "probe"; {arguments} }}'
    return built_aci(expression)


@pytest.fixture(scope="module")
def thin() -> dict[str, Path]:
    return {attribute: only_aci(nix_build(attribute)) for attribute in ("busyboxThin", "helloThin")}


@pytest.fixture(scope="module")
def hello_thin_mounts() -> set[str]:
    """The mount point names helloThin must have, from the package set: one per store path
    of hello's closure and of the CA bundle (a basic of every image), whatever their versions."""
    return {ac_name(path) for path in store_closure("[ n.pkgs.hello n.pkgs.cacert ]")}


def manifest_of(image: Path) -> dict:
    """The image's own manifest."""
    with tarfile.open(image) as tar:
        return json.load(tar.extractfile("manifest"))


@pytest.fixture(autouse=True)
def _root(is_root):
    require("runc")


def test_thin_images_run_with_their_mounts_file(thin):
    hello = thin["helloThin"]
    mounts = hello.with_suffix(".mounts")
    assert nix2aci("run", UNSIGNED, "--mounts-file", str(mounts), str(hello)).stdout == "Hello, world!\n"
    busybox = thin["busyboxThin"]
    result = nix2aci(
        "run", UNSIGNED, "--mounts-file", str(busybox.with_suffix(".mounts")), str(busybox), "--", "-c", "echo ok"
    )
    assert result.stdout == "ok\n"


def test_thin_image_without_volumes_fails_before_running(thin, hello_thin_mounts):
    image = thin["helloThin"]
    result = nix2aci("run", UNSIGNED, str(image), check=False)
    assert result.returncode == 1
    # The first of the image's mountPoints is named; which one that is, the store hashes decide.
    first = manifest_of(image)["app"]["mountPoints"][0]
    assert first["name"] in hello_thin_mounts
    assert f"nix2aci: error: mountPoint {first['name']!r} ({first['path']}) has no volume" in result.stderr
    assert "--mounts-file" in result.stderr
    assert "Traceback" not in result.stderr


def test_thin_image_size_does_not_grow_with_its_closure(thin):
    with tarfile.open(thin["helloThin"]) as tar:
        members = tar.getmembers()
    # The store paths are empty mount points; the only files are the manifest and the small /etc basics.
    assert not [m.name for m in members if m.name.startswith("rootfs/nix/store/") and m.name.count("/") > 3]
    assert [m.name for m in members if m.isreg()] == [
        "manifest",
        "rootfs/etc/group",
        "rootfs/etc/hosts",
        "rootfs/etc/passwd",
    ]


def test_mounts_file_holds_rkt_volume_flags(thin, hello_thin_mounts):
    flags = thin["helloThin"].with_suffix(".mounts").read_text().split()
    names = []
    for flag in flags:
        name, kind, source, read_only = flag.removeprefix("--volume=").split(",")
        names.append(name)
        assert kind == "kind=host" and read_only == "readOnly=true"
        source_path = Path(source.removeprefix("source="))
        assert source_path.is_dir() and ac_name(source_path) == name
    assert sorted(names) == sorted(hello_thin_mounts)


def test_environment_cwd_and_numeric_user_reach_the_app():
    image = build_image(
        'exec = [ "/bin/probe" "a" ]; env.FOO = "bar"; workingDirectory = "/nix"; user = 1000; group = 100;'
    )
    result = nix2aci("run", UNSIGNED, "--env", "EXTRA=1", str(image), "--", "b")
    assert result.stdout.splitlines() == ["FOO=bar", "cwd=/nix", "uid=1000 gid=100", "args=a b"]


def test_user_and_group_names_resolve_in_the_images_etc():
    image = build_image('exec = [ "/bin/probe" ]; user = "app"; group = "app";')
    assert "uid=1234 gid=4321" in nix2aci("run", UNSIGNED, str(image)).stdout


def test_unknown_user_name_is_an_error():
    image = build_image('exec = [ "/bin/probe" ]; user = "nobody-here";')
    result = nix2aci("run", UNSIGNED, str(image), check=False)
    assert result.returncode == 1
    assert "app user/group 'nobody-here' is not in the image's /etc/passwd" in result.stderr


def test_exit_status_passes_through(busybox):
    assert nix2aci("run", UNSIGNED, str(busybox), "--", "-c", "exit 7", check=False).returncode == 7


def test_exec_replaces_the_program_and_drops_the_image_arguments(busybox):
    # The image's exec is [ /bin/busybox sh ]: with --exec, "sh" is gone.
    assert nix2aci("run", UNSIGNED, "--exec", "/bin/echo", str(busybox), "--", "one", "two").stdout == "one two\n"


def test_stdin_passes_through(busybox):
    assert nix2aci("run", UNSIGNED, str(busybox), input="echo from stdin\n").stdout == "from stdin\n"


def test_capability_isolators_shape_the_apps_capabilities():
    image = build_image(
        'exec = [ "/bin/sh" "-c" "grep CapEff /proc/self/status" ];'
        ' isolators = [ { name = "os/linux/capabilities-retain-set"; value.set = [ "CAP_KILL" "CAP_CHOWN" ]; } ];'
    )
    # CAP_CHOWN is bit 0, CAP_KILL bit 5.
    assert nix2aci("run", UNSIGNED, str(image)).stdout.split() == ["CapEff:", f"{1 << 0 | 1 << 5:016x}"]


def test_several_packages_merge_into_one_profile():
    result = nix_build_expression('n.lib.mkACI { packages = [ n.pkgs.busybox n.pkgs.hello ]; name = "both"; }')
    image = only_aci(Path(result.stdout.split()[-1]))
    assert nix2aci(
        "run", UNSIGNED, "--exec", "/bin/sh", str(image), "--", "-c", "hello; ls /bin/hello /bin/ls"
    ).stdout == ("Hello, world!\n/bin/hello\n/bin/ls\n")


def test_conflicting_packages_are_reported_and_prefer_resolves_them():
    shell = (
        '(derivation { name = "other-sh"; system = builtins.currentSystem; builder = "${n.pkgs.busybox}/bin/sh";'
        ' args = [ "-c" "${n.pkgs.busybox}/bin/mkdir -p $out/bin && echo x > $out/bin/sh" ]; })'
    )
    arguments = f'packages = [ n.pkgs.busybox {shell} ]; name = "clash";'
    failed = nix_build_expression(f"n.lib.mkACI {{ {arguments} }}", check=False)
    assert failed.returncode != 0
    busybox = nix_eval_json("n.pkgs.busybox.name")
    assert f"{busybox} and /nix/store/" in failed.stderr and "-other-sh both provide /bin/sh" in failed.stderr
    assert "prefer = [ <package> ]" in failed.stderr
    image = only_aci(
        Path(nix_build_expression(f"n.lib.mkACI {{ {arguments} prefer = [ n.pkgs.busybox ]; }}").stdout.split()[-1])
    )
    with tarfile.open(image) as tar:
        assert tar.getmember("rootfs/bin/sh").linkname.endswith(f"-{busybox}/bin/sh")


def test_inspect_reports_id_sizes_and_count(busybox):
    summary = json.loads(nix2aci("inspect", str(busybox)).stdout)
    assert summary["imageID"] == busybox.with_name(busybox.name + ".id").read_text().strip()
    assert summary["compressedSize"] == busybox.stat().st_size
    assert summary["uncompressedSize"] > summary["compressedSize"]
    assert summary["files"] >= 1 and summary["entries"] > summary["files"]
    assert summary["manifest"]["name"] == "busybox"


def test_build_thin_makes_a_runnable_image(tmp_path):
    nix2aci("build-thin", "greeter", "hello", "hello", "busybox", cwd=tmp_path)
    image, mounts = tmp_path / "ACIs/greeter.aci", tmp_path / "ACIs/greeter.mounts"
    assert image.exists() and mounts.exists()
    assert nix2aci("run", UNSIGNED, "--mounts-file", str(mounts), str(image)).stdout == "Hello, world!\n"
    # The build output behind the links is a garbage-collector root.
    roots = run(["nix-store", "--gc", "--print-roots"]).stdout
    assert str(tmp_path / "ACIs/.greeter-result") in roots


def test_build_thin_names_a_missing_program(tmp_path):
    result = nix2aci("build-thin", "x", "no-such-program", "hello", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "none of the packages hello has bin/no-such-program or sbin/no-such-program" in result.stderr


def test_ctrl_c_stops_the_app_and_removes_the_bundle(busybox, tmp_path):
    # The app exits 3 only from its SIGINT trap: were the signal not passed on, it would
    # sleep on (the wait times out) or be killed after nix2aci's stop timeout (137).
    script = 'trap "exit 3" INT; echo started; sleep 1000 & wait'
    arguments = ["run", UNSIGNED, str(busybox), "--", "-c", script]
    with nix2aci_started(*arguments, tmp=tmp_path, stdout=subprocess.PIPE, text=True) as process:
        assert read_line(process.stdout) == "started\n"
        assert list(tmp_path.glob("nix2aci-run-*"))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=PATIENCE) == 3
        assert not list(tmp_path.glob("nix2aci-run-*"))

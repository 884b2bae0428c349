"""nix2aci run, inspect and build-thin against real images, nix-build and runc."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REPO, nix_build, nix_build_expression, only_aci, require, run

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


def nix2aci(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nix2aci", *args], check=check, **kwargs)


def build_image(arguments: str) -> Path:
    """Build mkACI { packages = [ busybox probe ]; ARGUMENTS }; return its .aci."""
    expression = f'n.lib.mkACI {{ packages = [ n.pkgs.busybox {PROBE_PACKAGE} ]; name = "probe"; {arguments} }}'
    return only_aci(Path(nix_build_expression(expression).stdout.split()[-1]))


@pytest.fixture(scope="module")
def thin() -> dict[str, Path]:
    return {attribute: only_aci(nix_build(attribute)) for attribute in ("busyboxThin", "helloThin")}


@pytest.fixture(scope="module")
def busybox() -> Path:
    return only_aci(nix_build("busybox"))


@pytest.fixture(autouse=True)
def _root(is_root):
    require("runc")


def test_thin_images_run_with_their_mounts_file(thin):
    hello = thin["helloThin"]
    mounts = hello.with_suffix(".mounts")
    assert nix2aci("run", "--mounts-file", str(mounts), str(hello)).stdout == "Hello, world!\n"
    busybox = thin["busyboxThin"]
    result = nix2aci("run", "--mounts-file", str(busybox.with_suffix(".mounts")), str(busybox), "--", "-c", "echo ok")
    assert result.stdout == "ok\n"


def test_thin_image_without_volumes_fails_before_running(thin):
    result = nix2aci("run", str(thin["helloThin"]), check=False)
    assert result.returncode == 1
    # The first mountPoint in store-path order: either of the two.
    assert re.search(r"nix2aci: error: mountPoint '(hello-1-0|glibc-host-2-36)'", result.stderr)
    assert "has no volume" in result.stderr and "--mounts-file" in result.stderr
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


def test_mounts_file_holds_rkt_volume_flags(thin):
    flags = thin["helloThin"].with_suffix(".mounts").read_text().split()
    assert len(flags) == 3
    for flag in flags:
        name, kind, source, read_only = flag.removeprefix("--volume=").split(",")
        assert name in ("hello-1-0", "glibc-host-2-36", "cacert-host-20230311-deb12u1")
        assert kind == "kind=host" and read_only == "readOnly=true"
        assert Path(source.removeprefix("source=")).is_dir()


def test_environment_cwd_and_numeric_user_reach_the_app():
    image = build_image(
        'exec = [ "/bin/probe" "a" ]; env.FOO = "bar"; workingDirectory = "/nix"; user = 1000; group = 100;'
    )
    result = nix2aci("run", "--env", "EXTRA=1", str(image), "--", "b")
    assert result.stdout.splitlines() == ["FOO=bar", "cwd=/nix", "uid=1000 gid=100", "args=a b"]


def test_user_and_group_names_resolve_in_the_images_etc():
    image = build_image('exec = [ "/bin/probe" ]; user = "app"; group = "app";')
    assert "uid=1234 gid=4321" in nix2aci("run", str(image)).stdout


def test_unknown_user_name_is_an_error():
    image = build_image('exec = [ "/bin/probe" ]; user = "nobody-here";')
    result = nix2aci("run", str(image), check=False)
    assert result.returncode == 1
    assert "app user/group 'nobody-here' is not in the image's /etc/passwd" in result.stderr


def test_exit_status_passes_through(busybox):
    assert nix2aci("run", str(busybox), "--", "-c", "exit 7", check=False).returncode == 7


def test_exec_replaces_the_program_and_drops_the_image_arguments(busybox):
    # The image's exec is [ /bin/busybox sh ]: with --exec, "sh" is gone.
    assert nix2aci("run", "--exec", "/bin/echo", str(busybox), "--", "one", "two").stdout == "one two\n"


def test_stdin_passes_through(busybox):
    assert nix2aci("run", str(busybox), input="echo from stdin\n").stdout == "from stdin\n"


def test_capability_isolators_shape_the_apps_capabilities():
    image = build_image(
        'exec = [ "/bin/sh" "-c" "grep CapEff /proc/self/status" ];'
        ' isolators = [ { name = "os/linux/capabilities-retain-set"; value.set = [ "CAP_KILL" "CAP_CHOWN" ]; } ];'
    )
    # CAP_CHOWN is bit 0, CAP_KILL bit 5.
    assert nix2aci("run", str(image)).stdout.split() == ["CapEff:", f"{1 << 0 | 1 << 5:016x}"]


def test_several_packages_merge_into_one_profile():
    result = nix_build_expression('n.lib.mkACI { packages = [ n.pkgs.busybox n.pkgs.hello ]; name = "both"; }')
    image = only_aci(Path(result.stdout.split()[-1]))
    assert nix2aci("run", "--exec", "/bin/sh", str(image), "--", "-c", "hello; ls /bin/hello /bin/ls").stdout == (
        "Hello, world!\n/bin/hello\n/bin/ls\n"
    )


def test_conflicting_packages_are_reported_and_prefer_resolves_them():
    shell = (
        '(derivation { name = "other-sh"; system = builtins.currentSystem; builder = "${n.pkgs.busybox}/bin/sh";'
        ' args = [ "-c" "${n.pkgs.busybox}/bin/mkdir -p $out/bin && echo x > $out/bin/sh" ]; })'
    )
    arguments = f'packages = [ n.pkgs.busybox {shell} ]; name = "clash";'
    failed = nix_build_expression(f"n.lib.mkACI {{ {arguments} }}", check=False)
    assert failed.returncode != 0
    assert "busybox-1.35.0 and /nix/store/" in failed.stderr and "-other-sh both provide /bin/sh" in failed.stderr
    assert "prefer = [ <package> ]" in failed.stderr
    image = only_aci(
        Path(nix_build_expression(f"n.lib.mkACI {{ {arguments} prefer = [ n.pkgs.busybox ]; }}").stdout.split()[-1])
    )
    with tarfile.open(image) as tar:
        assert tar.getmember("rootfs/bin/sh").linkname.endswith("-busybox-1.35.0/bin/sh")


def test_inspect_reports_id_sizes_and_count(busybox):
    import json

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
    assert nix2aci("run", "--mounts-file", str(mounts), str(image)).stdout == "Hello, world!\n"
    # The build output behind the links is a garbage-collector root.
    roots = run(["nix-store", "--gc", "--print-roots"]).stdout
    assert str(tmp_path / "ACIs/.greeter-result") in roots


def test_build_thin_names_a_missing_program(tmp_path):
    result = nix2aci("build-thin", "x", "no-such-program", "hello", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "none of the packages hello has bin/no-such-program or sbin/no-such-program" in result.stderr


def test_ctrl_c_stops_the_app_and_removes_the_bundle(busybox, tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nix2aci",
            "run",
            str(busybox),
            "--",
            "-c",
            'trap "exit 3" INT; echo started; sleep 30 & wait',
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        cwd=REPO,
    )
    assert process.stdout.readline() == "started\n"
    assert list(tmp_path.glob("nix2aci-run-*"))
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 3
    assert time.monotonic() - started < 5
    assert not list(tmp_path.glob("nix2aci-run-*"))

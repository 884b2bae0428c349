"""nix2aci run's protections, end to end with runc: capabilities, seccomp, network, signals, volumes, ids.

Each refusal is checked on its message and on what it protects: nothing ran (a
canary file the app would write in a host directory stays absent) and no bundle
is left in the run's TMPDIR.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    UNSIGNED,
    bundles_left,
    busybox_image,
    nix2aci_run,
    nix2aci_started,
    nix_strings,
    read_line,
    require,
    run,
)

from nix2aci.appc.isolators import CAPABILITIES
from nix2aci.oci import runtime

pytestmark = pytest.mark.slow

CAP_BITS = {"CAP_KILL": 5, "CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}
# What a static busybox makes before its applet runs: a seccomp-retain-set for busybox names these.
BUSYBOX_STARTUP = (
    "arch_prctl", "brk", "getrandom", "getuid", "mprotect", "prlimit64", "readlink", "rseq", "set_robust_list",
    "set_tid_address", "write",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _root(is_root):
    require("runc")


def isolator(name: str, value: str) -> str:
    """A Nix isolator record."""
    return f'{{ name = "{name}"; value = {value}; }}'


def containers_in(tmp: Path) -> list[dict]:
    """runc's containers whose bundle lies under ``tmp``."""
    listed = json.loads(run(["runc", "list", "--format", "json"]).stdout or "null") or []
    return [entry for entry in listed if entry["bundle"].startswith(str(tmp))]


def effective_capabilities(output: str) -> int:
    (line,) = [line for line in output.splitlines() if line.startswith("CapEff:")]
    return int(line.split()[1], 16)


# --- Capabilities


@pytest.fixture(scope="module")
def wide_caps() -> Path:
    """An image whose retain set asks for CAP_SYS_ADMIN and CAP_NET_ADMIN, and touches /out/ran when it runs."""
    caps = isolator("os/linux/capabilities-retain-set", '{ set = [ "CAP_SYS_ADMIN" "CAP_NET_ADMIN" "CAP_KILL" ]; }')
    return busybox_image(
        f'exec = [ "/bin/sh" "-c" "touch /out/ran; grep CapEff /proc/self/status" ]; isolators = [ {caps} ];'
        ' mounts.out.path = "/out";'
    )


def test_an_image_cannot_widen_its_capabilities_on_its_own(wide_caps, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir(), tmp.mkdir()
    result = nix2aci_run("--volume", f"out,kind=host,source={out}", str(wide_caps), tmp=tmp, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "nix2aci: error: probe asks for capabilities outside the default set (CAP_NET_ADMIN, CAP_SYS_ADMIN) in its"
        " os/linux/capabilities-retain-set: allow them with --insecure-options=capabilities, or give the exact set"
        " with --caps-retain=CAP,...\n"
    )
    assert not (out / "ran").exists() and bundles_left(tmp) == []


def test_insecure_capabilities_applies_the_images_retain_set(wide_caps, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = nix2aci_run(
        "--insecure-options=capabilities", "--volume", f"out,kind=host,source={out}", str(wide_caps), tmp=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert effective_capabilities(result.stdout) == sum(1 << bit for bit in CAP_BITS.values())


def test_caps_retain_is_the_exact_set_and_caps_remove_narrows_it(wide_caps, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    volume = f"out,kind=host,source={out}"
    retained = nix2aci_run("--caps-retain=CAP_KILL,CAP_SYS_ADMIN", "--volume", volume, str(wide_caps), tmp=tmp_path)
    assert effective_capabilities(retained.stdout) == 1 << 5 | 1 << 21
    removed = nix2aci_run(
        "--caps-retain=CAP_KILL,CAP_SYS_ADMIN", "--caps-remove=CAP_SYS_ADMIN", "--volume", volume, str(wide_caps),
        tmp=tmp_path,
    )  # fmt: skip
    assert effective_capabilities(removed.stdout) == 1 << 5


def test_the_default_capabilities_and_a_narrowing_retain_set(busybox, tmp_path):
    default = nix2aci_run(str(busybox), "--", "-c", "grep CapEff /proc/self/status", tmp=tmp_path)
    bits = [CAPABILITIES.index(name) for name in runtime.DEFAULT_CAPABILITIES]
    assert effective_capabilities(default.stdout) == sum(1 << bit for bit in bits)
    retain = isolator("os/linux/capabilities-retain-set", '{ set = [ "CAP_KILL" ]; }')
    narrow = busybox_image(f'exec = [ "/bin/sh" "-c" "grep CapEff /proc/self/status" ]; isolators = [ {retain} ];')
    assert effective_capabilities(nix2aci_run(str(narrow), tmp=tmp_path).stdout) == 1 << 5


# --- Seccomp


def test_the_default_seccomp_filter_refuses_namespaces_and_clock_tuning(busybox, tmp_path):
    # Both calls work for root with the default capabilities when no filter is there (user namespaces are
    # unprivileged; adjtimex with no change only reads): the filter is what refuses them.
    script = "unshare -U true; echo unshare=$?; adjtimex >/dev/null; echo adjtimex=$?"
    filtered = nix2aci_run(str(busybox), "--", "-c", script, tmp=tmp_path)
    assert filtered.stdout == "unshare=1\nadjtimex=1\n"
    assert "unshare(0x10000000): Operation not permitted" in filtered.stderr
    unfiltered = nix2aci_run("--insecure-options=seccomp", str(busybox), "--", "-c", script, tmp=tmp_path)
    assert unfiltered.stdout == "unshare=0\nadjtimex=0\n"


def test_a_seccomp_remove_set_kills_or_returns_its_errno(tmp_path):
    remove = isolator("os/linux/seccomp-remove-set", '{ set = [ "uname" ]; }')
    killed = busybox_image(f'exec = [ "/bin/uname" ]; isolators = [ {remove} ];')
    assert nix2aci_run(str(killed), tmp=tmp_path, check=False).returncode == 128 + signal.SIGSYS
    remove = isolator("os/linux/seccomp-remove-set", '{ set = [ "mkdir" "mkdirat" ]; errno = "EROFS"; }')
    refused = busybox_image(f'exec = [ "/bin/mkdir" "/made" ]; isolators = [ {remove} ];')
    result = nix2aci_run(str(refused), tmp=tmp_path, check=False)
    assert result.returncode == 1 and "Read-only file system" in result.stderr


def test_a_seccomp_retain_set_allows_only_its_calls(tmp_path):
    retain = isolator("os/linux/seccomp-retain-set", f'{{ set = {nix_strings(BUSYBOX_STARTUP)}; errno = "ENOSYS"; }}')
    image = busybox_image(f'exec = [ "/bin/echo" "retained" ]; isolators = [ {retain} ];')
    assert nix2aci_run(str(image), tmp=tmp_path).stdout == "retained\n"
    result = nix2aci_run("--exec", "/bin/mkdir", str(image), "--", "/made", tmp=tmp_path, check=False)
    assert result.returncode == 1 and "Function not implemented" in result.stderr


def test_a_seccomp_retain_set_cannot_allow_what_the_default_filter_refuses(tmp_path):
    calls = (*BUSYBOX_STARTUP, "utimensat", "unshare", "keyctl")
    retain = isolator("os/linux/seccomp-retain-set", f'{{ set = {nix_strings(calls)}; errno = "ENOSYS"; }}')
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir(), tmp.mkdir()
    image = busybox_image(f'exec = [ "/bin/touch" "/out/ran" ]; isolators = [ {retain} ]; mounts.out.path = "/out";')
    volume = f"out,kind=host,source={out}"
    result = nix2aci_run("--volume", volume, str(image), tmp=tmp, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "nix2aci: error: probe's os/linux/seccomp-retain-set allows keyctl, unshare, which the default seccomp"
        " filter refuses: run it with --insecure-options=seccomp to drop the default filter\n"
    )
    assert not (out / "ran").exists() and bundles_left(tmp) == []
    assert nix2aci_run("--insecure-options=seccomp", "--volume", volume, str(image), tmp=tmp).returncode == 0
    assert (out / "ran").exists()


# --- Network


def test_the_default_network_is_a_namespace_with_only_loopback_up(busybox, tmp_path):
    result = nix2aci_run(str(busybox), "--", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags", tmp=tmp_path)
    # IFF_UP (1) | IFF_LOOPBACK (8)
    assert result.stdout == "lo\n0x9\n", result.stderr


def test_net_host_shares_the_hosts_interfaces(busybox, tmp_path):
    result = nix2aci_run("--net=host", str(busybox), "--", "-c", "ls /sys/class/net", tmp=tmp_path)
    assert result.stdout.split() == sorted(os.listdir("/sys/class/net"))


# --- Signals


@pytest.mark.parametrize(
    ("number", "script", "status"),
    [
        (signal.SIGTERM, 'trap "exit 3" TERM; echo started; sleep 1000 & wait', 3),
        (signal.SIGHUP, 'trap "exit 4" HUP; echo started; sleep 1000 & wait', 4),
        # pid 1 without a handler ignores SIGTERM: it is killed after STOP_TIMEOUT.
        (signal.SIGTERM, "echo started; exec sleep 1000", 128 + signal.SIGKILL),
    ],
)
def test_sigterm_and_sighup_stop_the_app_and_remove_container_and_bundle(busybox, tmp_path, number, script, status):
    arguments = ["run", UNSIGNED, str(busybox), "--", "-c", script]
    with nix2aci_started(*arguments, tmp=tmp_path, stdout=subprocess.PIPE, text=True) as process:
        assert read_line(process.stdout) == "started\n"
        assert [entry["status"] for entry in containers_in(tmp_path)] == ["running"]
        assert len(bundles_left(tmp_path)) == 1
        process.send_signal(number)
        assert process.wait(timeout=PATIENCE) == status
        assert containers_in(tmp_path) == [] and bundles_left(tmp_path) == []


# --- Volumes and the mounts file


def test_a_relative_volume_source_is_the_callers(tmp_path):
    image = busybox_image('exec = [ "/bin/cat" "/data/file" ]; mounts.data = { path = "/data"; readOnly = true; };')
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir/file").write_text("from the caller's directory\n")
    result = nix2aci_run("--volume", "data,kind=host,source=dir", str(image), tmp=tmp_path, cwd=tmp_path)
    assert result.stdout == "from the caller's directory\n", result.stderr


def test_a_mounts_file_that_is_not_a_regular_utf8_file_is_one_line(busybox, tmp_path):
    (tmp_path / "directory").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "latin1").write_bytes(b"--volume=caf\xe9,kind=host,source=/tmp")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # A file argument that cannot be used is a usage error (2), as for every command; one of other text, 1.
    expected = {
        "directory": (2, " is a directory, not a regular file"),
        "fifo": (2, " is a FIFO, not a regular file"),
        "missing": (2, " does not exist"),
        "latin1": (1, ": not UTF-8 text"),
    }
    for name, (status, message) in expected.items():
        # A FIFO must not block: a refusal takes far less than this even on a loaded machine.
        result = nix2aci_run(
            "--mounts-file", str(tmp_path / name), str(busybox), "--", "-c", "true", tmp=tmp, timeout=60, check=False
        )
        assert result.returncode == status
        assert result.stderr == f"nix2aci: error: --mounts-file {tmp_path / name}{message}\n"
        assert bundles_left(tmp) == []


# --- Hand-made manifests: ids and quantities nix2aci's own build would refuse


def hand_made_aci(path: Path, app: dict) -> Path:
    """An ACI of one manifest with ``app`` and an empty rootfs."""
    manifest = json.dumps({"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "hand", "app": app}).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        root = tarfile.TarInfo("rootfs")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
    return path


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ({"user": "\u00b2", "group": "0"}, "app user/group '²' is not in the image's /etc/passwd"),
        ({"user": "0", "group": "\u0663"}, "app user/group '٣' is not in the image's /etc/group"),
        ({"user": "4294967296", "group": "0"}, "app user/group '4294967296': an id must be from 0 to 4294967295"),
        (
            {"user": "0", "group": "0", "isolators": [{"name": "resource/memory", "value": {"limit": "1e999"}}]},
            "app.isolators[0].value.limit: must be a resource quantity with an exponent from -100 to 100",
        ),
    ],
)
def test_hostile_ids_and_quantities_are_one_line(tmp_path, app, message):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    image = hand_made_aci(tmp_path / "hand.aci", {"exec": ["/bin/true"], **app})
    result = nix2aci_run(str(image), tmp=tmp, check=False)
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert bundles_left(tmp) == []


def test_insecure_options_names_the_allowed_values(busybox, tmp_path):
    result = nix2aci_run("--insecure-options=image,everything", str(busybox), tmp=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr == (
        "nix2aci: error: --insecure-options: unknown value 'everything' (allowed: image, capabilities, seccomp, all)\n"
    )

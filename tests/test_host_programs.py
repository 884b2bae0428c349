"""Real programs of the offline package set (Debian's Python and etcd imported into the
store with their libraries as their own store paths), as images built by real
nix-build with the sandbox on and run by runc through nix2aci run."""

from __future__ import annotations

import base64
import json
import posixpath
import re
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    UNSIGNED,
    nix2aci,
    nix2aci_started,
    nix_build,
    nix_build_expression,
    nix_eval_error,
    nix_eval_json,
    only_aci,
    require,
    run,
)

pytestmark = pytest.mark.slow

IMAGES = ["bbpython", "bbpythonThin", "etcd", "etcdThin"]


def run_thin(image: Path, *args: str) -> subprocess.CompletedProcess:
    return nix2aci("run", UNSIGNED, "--mounts-file", str(image.with_suffix(".mounts")), str(image), *args)


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    """attribute -> its .aci in the store."""
    return {attribute: only_aci(nix_build(attribute)) for attribute in IMAGES}


@pytest.fixture(autouse=True)
def _runc(is_root):
    require("runc")


def offline_set() -> bool:
    return nix_eval_json("n.pkgs ? debianImport")


def debian_upstream_version(package: str) -> str:
    """The upstream part of the host's installed Debian ``package`` version (``1:2.5.0-4+b1`` -> ``2.5.0``):
    what the offline set names its store paths after."""
    version = run(["dpkg-query", "--show", "--showformat=${Version}", package]).stdout
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


# What the package set provides.


def test_programs_and_libraries_are_store_paths_of_their_own():
    if not offline_set():
        pytest.skip("nixpkgs provides python3 and etcd")
    names = nix_eval_json(
        "{ python3 = n.pkgs.python3.name; etcd = n.pkgs.etcd.name;"
        " imported = map (p: builtins.head p.debianPackages) [ n.pkgs.python3 n.pkgs.etcd ];"
        " libraries = map (l: l.name) n.pkgs.python3.libraries; }"
    )
    # A program's store path carries the version of the first Debian package it imports, as the host has it.
    python3_package, etcd_package = names["imported"]
    assert names["python3"] == f"python3-{debian_upstream_version(python3_package)}"
    assert names["etcd"] == f"etcd-{debian_upstream_version(etcd_package)}"
    # One store path per Debian library package, named after it; libc6 keeps glibc-host.
    assert names["libraries"][0].startswith("glibc-host-")
    assert any(name.startswith("libssl3-") for name in names["libraries"])
    assert any(name.startswith("libsqlite3-0-") for name in names["libraries"])


def test_python3_closure_holds_only_the_libraries_it_needs():
    if not offline_set():
        pytest.skip("nixpkgs provides python3")
    python3 = Path(nix_build_expression("n.pkgs.python3").stdout.split()[-1])
    closure = run(["nix-store", "-qR", str(python3)]).stdout.split()
    names = sorted(path.split("-", 1)[1] for path in closure)
    assert any(name.startswith("glibc-host-") for name in names)
    assert any(name.startswith("libssl3-") for name in names)
    # libgcc-s1 is a dependency of libc6, but nothing links it: --shrink-rpath left it out.
    assert not any(name.startswith("libgcc-s1-") for name in names)
    # No build input (the imported host files, the builder script) stays referenced.
    assert not any(name.endswith("-files") or name.endswith(".py") for name in names)
    major, minor = nix_eval_json("n.pkgs.python3.version").split(".")[:2]
    assert (python3 / "bin/python3").is_symlink() and (python3 / f"lib/python{major}.{minor}/os.py").is_file()
    assert not (python3 / "share/doc").exists() and not (python3 / "usr").exists()


def test_a_missing_debian_package_names_what_to_install():
    if not offline_set():
        pytest.skip("only the offline set imports Debian packages")
    error = nix_eval_error('n.pkgs.debianImport.program { pname = "x"; debianPackages = [ "no-such-package" ]; }')
    assert "the Debian package 'no-such-package' is not installed" in error
    assert "apt-get install no-such-package" in error


# Running the images.


def test_python_runs_in_fat_bbpython(built):
    image = built["bbpython"]
    assert nix2aci("run", UNSIGNED, str(image), "--", "-c", "print(6*7)").stdout == "42\n"
    result = nix2aci(
        "run", UNSIGNED, str(image), "--", "-c", "import json, ssl, sqlite3; print(ssl.OPENSSL_VERSION.split()[0])"
    )
    assert result.stdout == "OpenSSL\n"


def test_python_runs_in_thin_bbpython(built):
    assert run_thin(built["bbpythonThin"], "--", "-c", "print(6*7)").stdout == "42\n"


def test_shell_runs_in_bbpython(built):
    result = nix2aci(
        "run", UNSIGNED, "--exec", "/bin/sh", str(built["bbpython"]), "--", "-c", "echo $((6*7)); python3 -c 'print(1)'"
    )
    assert result.stdout == "42\n1\n"


def test_fat_bbpython_sees_only_its_own_store_paths(built):
    # The host store is not mounted: /nix/store holds exactly the image's paths.
    image = built["bbpython"]
    with tarfile.open(image) as tar:
        in_image = sorted({name.split("/")[3] for name in tar.getnames() if name.startswith("rootfs/nix/store/")})
    seen = nix2aci("run", UNSIGNED, "--exec", "/bin/sh", str(image), "--", "-c", "ls /nix/store").stdout.split()
    assert sorted(seen) == in_image
    assert any(re.search(r"-python3-3\.[0-9.]+$", path) for path in in_image)


def etcd_version() -> str:
    """The package set's etcd version: the host's Debian etcd-server in the offline set; nixpkgs' own otherwise."""
    return nix_eval_json("n.pkgs.etcd.version")


def test_etcd_version_fat_and_thin(built):
    for output in (
        nix2aci("run", UNSIGNED, str(built["etcd"]), "--", "--version"),
        run_thin(built["etcdThin"], "--", "--version"),
    ):
        assert output.stdout.startswith(f"etcd Version: {etcd_version()}\n")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:
        return json.load(response)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_answer(endpoint: str, process: subprocess.Popen) -> dict | None:
    """etcd's /version once it answers; None when the process ended or ``PATIENCE`` passed first."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{endpoint}/version", timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)  # the interval of the poll, not a wait for readiness
    return None


def test_etcd_serves_on_loopback_and_stops_on_sigint(built, tmp_path):
    client, peer = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{client}"
    arguments = [
        "run",
        UNSIGNED,
        # The client here reaches etcd on the host's loopback: the default is a network of its own.
        "--net=host",
        str(built["etcd"]),
        "--",
        # The unpacked rootfs is writable: etcd creates its data directory there.
        "--data-dir=/etcd-data",
        f"--listen-client-urls={endpoint}",
        f"--advertise-client-urls={endpoint}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=default=http://127.0.0.1:{peer}",
    ]
    log_path = tmp_path / "etcd.log"
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    with (
        log_path.open("w") as log,
        nix2aci_started(*arguments, tmp=bundles, stdout=log, stderr=subprocess.STDOUT) as etcd,
    ):
        version = etcd_answer(endpoint, etcd)
        assert version is not None, f"etcd did not answer on {endpoint}:\n{log_path.read_text()}"
        assert version["etcdserver"] == etcd_version()

        # The v3 API through etcd 3.4's JSON gateway: keys and values are base64.
        post_json(f"{endpoint}/v3/kv/put", {"key": b64("nix2aci"), "value": b64("runs etcd")})
        found = post_json(f"{endpoint}/v3/kv/range", {"key": b64("nix2aci")})
        assert [base64.b64decode(kv["value"]).decode() for kv in found["kvs"]] == ["runs etcd"]

        time.sleep(2)  # serving for a few seconds, then still answering
        assert post_json(f"{endpoint}/v3/kv/range", {"key": b64("nix2aci")})["count"] == "1"

        etcd.send_signal(signal.SIGINT)
        # etcd as pid 1 exits 0 on SIGINT; nix2aci run passes the status through.
        assert etcd.wait(timeout=PATIENCE) == 0
        assert not list(bundles.iterdir()), "the bundle was not removed"


# No host files in the fat images.


def elf_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    found = []
    for member in tar:
        if member.isreg():
            with tar.extractfile(member) as file:
                if file.read(4) == b"\x7fELF":
                    found.append(member)
    return found


def resolve_in_image(path: str, members: dict[str, tarfile.TarInfo], hops: int = 40) -> str | None:
    """Where an absolute path leads inside the image's rootfs (links followed, one
    component at a time); None when it leads to nothing in the image."""
    parts = [part for part in path.split("/") if part]
    current = ""
    for index, part in enumerate(parts):
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = f"{current}/{part}"
        member = members.get("rootfs" + candidate)
        if member is None:
            return None
        if member.issym():
            if hops == 0:
                return None
            target = member.linkname if member.linkname.startswith("/") else f"{current}/{member.linkname}"
            return resolve_in_image("/".join([target, *parts[index + 1 :]]), members, hops - 1)
        current = candidate
    return current or "/"


@pytest.mark.parametrize("attribute", ["bbpython", "etcd"])
def test_fat_image_points_at_no_host_path(built, attribute, tmp_path):
    patchelf = require("patchelf")
    with tarfile.open(built[attribute]) as tar:
        members = {member.name: member for member in tar.getmembers()}
        # Every absolute link leads to something in the image: the store paths, or the
        # rootfs basics that lead there in turn (/usr/bin/env -> /bin/env -> /nix/store/...).
        for member in members.values():
            if member.issym() and member.linkname.startswith("/"):
                assert resolve_in_image(member.linkname, members), (
                    f"{member.name} -> {member.linkname} leaves the image"
                )
        elves = elf_members(tar)
        assert len(elves) > 1
        for index, member in enumerate(elves):
            assert member.name.startswith("rootfs/nix/store/"), f"{member.name} is outside the store"
            path = tmp_path / str(index)
            with tar.extractfile(member) as source:
                path.write_bytes(source.read())
            interpreter = run([patchelf, "--print-interpreter", str(path)], check=False)
            if interpreter.returncode == 0:
                loader = interpreter.stdout.strip()
                assert loader.startswith("/nix/store/"), f"{member.name}: interpreter {loader}"
                assert "rootfs" + loader in members, f"{member.name}: interpreter {loader} is not in the image"
            rpath = run([patchelf, "--print-rpath", str(path)], check=False).stdout.strip()
            for entry in filter(None, rpath.split(":")):
                assert entry.startswith(("/nix/store/", "$ORIGIN")), f"{member.name}: rpath {rpath}"
                if entry.startswith("/nix/store/"):
                    assert "rootfs" + entry in members, f"{member.name}: rpath {entry} is not in the image"
            path.unlink()


# Reproducible: every imported store path (tests/test_reproducible.py rebuilds the images).


def test_the_imported_programs_and_libraries_rebuild_bit_for_bit():
    if not offline_set():
        pytest.skip("nixpkgs provides python3 and etcd")
    # --check builds each again and fails when any output byte differs.
    nix_build_expression(
        "[ n.pkgs.python3 n.pkgs.etcd ] ++ n.pkgs.python3.libraries ++ n.pkgs.etcd.libraries", "--check"
    )

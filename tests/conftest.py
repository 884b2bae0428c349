"""Shared fixtures: the real tools, and nix-build with the sandbox on."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The container engines' fixtures (dockerd, containerd, podman_engine, buildah_engine) for every test.
pytest_plugins = ["engines"]

REPO = Path(__file__).resolve().parent.parent
GC_ROOTS = tempfile.mkdtemp(prefix="nix2aci-test-roots-")
atexit.register(shutil.rmtree, GC_ROOTS, ignore_errors=True)
# The programs the tests start keep their temporary files here (TMPDIR): the bundles of
# `nix2aci run` among them, so the containers of this session are told apart by their
# bundle's path from those of anyone else on the machine, and what a killed run leaves
# goes with the session.
SESSION_TMP = tempfile.mkdtemp(prefix="nix2aci-test-tmp-")
atexit.register(shutil.rmtree, SESSION_TMP, ignore_errors=True)
os.environ["TMPDIR"] = SESSION_TMP
# The prefix of the ids of the containers that tests run with runc themselves.
CONTAINER_PREFIX = f"nix2aci-test-{uuid.uuid4().hex[:8]}-"
# The upper bound for anything a test waits for: never reached in a normal run, even
# with other builds on the cores; it only turns a hang into a failure.
PATIENCE = 120
# The same settings scripts/setup writes, given on every call so the tests hold
# whatever the machine's nix.conf says.
NIX_OPTIONS = [
    "--option", "sandbox", "true",
    "--option", "extra-sandbox-paths", "/usr /lib /lib64 /bin /etc/alternatives",
    "--option", "substituters", "",
]  # fmt: skip


def require(tool: str) -> str:
    """The path of ``tool``; a missing tool fails the test (it is never skipped)."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./scripts/setup")
    return path


def run(command: list[str], *, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; on an unexpected status, fail with its output."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def gc_root() -> str:
    """A fresh link path for ``nix-build -o``: the outputs a test uses survive a garbage collection
    that another test runs. The links go when the test session ends."""
    return tempfile.mktemp(prefix="result-", dir=GC_ROOTS)


def image_entry(layout: Path) -> dict:
    """The entry of the one image (or image index) an OCI layout's index.json lists; the image's SBOM, an
    artifact about it listed beside it, aside."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    (entry,) = [entry for entry in manifests if "artifactType" not in entry]
    return entry


def nix_build(attribute: str, *extra: str) -> Path:
    """Build ``attribute`` of default.nix with the sandbox on; return its output path."""
    require("nix-build")
    result = run(["nix-build", str(REPO), "-A", attribute, "-o", gc_root(), *NIX_OPTIONS, *extra])
    return Path(result.stdout.strip().splitlines()[-1])


def nix_build_expression(expression: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    """Build ``expression`` (with ``n`` bound to default.nix) with the sandbox on."""
    require("nix-build")
    command = ["nix-build", "-o", gc_root(), *NIX_OPTIONS, *extra, "-E", f"let n = import {REPO} {{}}; in {expression}"]
    return run(command, check=check)


def _nix_eval(expression: str, check: bool) -> subprocess.CompletedProcess:
    """Evaluate ``expression``, with ``n`` bound to default.nix, strictly to JSON."""
    require("nix-instantiate")
    let = f"let n = import {REPO} {{}}; in {expression}"
    # --read-write-mode: an OCI image's layers are read from a build while Nix evaluates (import from
    # derivation), which a read-only evaluation cannot run.
    command = ["nix-instantiate", "--eval", "--read-write-mode", "--strict", "--json", *NIX_OPTIONS, "-E", let]
    return run(command, check=check)


def nix_eval_error(expression: str) -> str:
    """Evaluate ``expression`` expecting an error; return stderr."""
    result = _nix_eval(expression, check=False)
    assert result.returncode != 0, f"expected an evaluation error, got {result.stdout}"
    return result.stderr


def nix_eval_json(expression: str):
    """Evaluate ``expression`` to its JSON value."""
    return json.loads(_nix_eval(expression, check=True).stdout)


def nix_strings(strings: list[str] | tuple[str, ...]) -> str:
    """``strings`` written as a Nix list of strings."""
    return "[ " + " ".join(json.dumps(string) for string in strings) + " ]"


def only_aci(output: Path) -> Path:
    """The one .aci file of a build output."""
    images = sorted(output.glob("*.aci"))
    assert len(images) == 1, f"expected one .aci in {output}, found {images}"
    return images[0]


def built_aci(expression: str) -> Path:
    """The one .aci of ``expression`` (an image, ``n`` bound to default.nix) built with the sandbox on."""
    return only_aci(Path(nix_build_expression(expression).stdout.split()[-1]))


def busybox_image(arguments: str, name: str = "probe") -> Path:
    """The .aci of ``mkACI { packages = [ busybox ]; name = NAME; ARGUMENTS }``."""
    return built_aci(f'n.lib.mkACI {{ packages = [ n.pkgs.busybox ]; name = "{name}"; {arguments} }}')


@pytest.fixture(scope="session")
def is_root() -> None:
    """runc needs root here."""
    if os.geteuid() != 0:
        pytest.fail("these tests run containers with runc and need root")


@pytest.fixture(scope="session")
def busybox() -> Path:
    """The .aci of default.nix's busybox."""
    return only_aci(nix_build("busybox"))


def store_closure(expression: str) -> list[Path]:
    """The store paths of the runtime closure of ``expression`` (a package or a list of
    them, ``n`` bound to default.nix), built with the sandbox on; sorted by path."""
    built = nix_build_expression(expression).stdout.split()
    return sorted(Path(path) for path in run(["nix-store", "--query", "--requisites", *built]).stdout.split())


def ac_name(store_path: Path) -> str:
    """The store path's name made an AC Name, as a thin image names its mount point:
    ``/nix/store/HASH-libfoo-2.5+dfsg`` -> ``libfoo-2-5-dfsg``."""
    return re.sub(r"[^a-z0-9]+", "-", store_path.name.split("-", 1)[1].lower()).strip("-")


def new_container_id() -> str:
    """A fresh container id for ``runc run`` that marks the container as this session's."""
    return CONTAINER_PREFIX + uuid.uuid4().hex[:8]


def runc_containers() -> dict[str, Path]:
    """``{id: bundle}`` of every container runc knows; none when runc is not installed
    (then no test started one: a test that needs runc fails with ``require``)."""
    if shutil.which("runc") is None:
        return {}
    listed = json.loads(run(["runc", "list", "--format", "json"]).stdout) or []
    return {container["id"]: Path(container["bundle"]) for container in listed}


def delete_containers(ids: list[str]) -> None:
    """Stop (SIGKILL) and delete the containers ``ids``."""
    for container in ids:
        subprocess.run(["runc", "delete", "--force", container], capture_output=True, check=False)


def containers_under(directory: Path) -> list[str]:
    """The ids of the containers whose bundle lies under ``directory``."""
    return [container for container, bundle in runc_containers().items() if bundle.is_relative_to(directory)]


def nix2aci_command(*args: str | Path) -> list[str]:
    """The command line of ``nix2aci ARGS`` run by this interpreter (its code from ``nix2aci_environment``)."""
    return [sys.executable, "-m", "nix2aci", *map(str, args)]


def nix2aci_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``env`` added and this checkout first on PYTHONPATH: whatever its
    working directory, the command line runs the code of the tree under test (a worktree tests its own)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **(env or {})}


def nix2aci(
    *args: str | Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | str = REPO,
    timeout: float = PATIENCE,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``nix2aci ARGS`` of this checkout from ``cwd`` with ``env`` added to the environment and ``input``
    on stdin (none when None: nothing waits for a terminal); return the finished run, its output as text.

    Fails the test with the output on a traceback, on a status other than 0 when ``check``, and on a hang:
    after ``timeout`` seconds the process and everything it started in its session are killed.
    """
    result = run_guarded(
        nix2aci_command(*args), check=check, env=nix2aci_environment(env), cwd=cwd, timeout=timeout, input=input
    )
    assert "Traceback" not in result.stderr, f"nix2aci {' '.join(map(str, args))}:\n{result.stderr}"
    return result


def run_guarded(
    command: list[str],
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | str = REPO,
    timeout: float = PATIENCE,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``command`` in a session of its own from ``cwd`` with the environment ``env`` (None: this one's) and
    ``input`` on stdin (none when None); return the finished run, its output as text (undecodable bytes replaced).

    Fails the test with the output on a status other than 0 when ``check``, and on a hang: after ``timeout``
    seconds the process and everything it started in its session are killed, as on any interruption.
    """
    shown = " ".join(map(str, command))
    stdin = subprocess.DEVNULL if input is None else subprocess.PIPE
    with subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        env=env, cwd=cwd, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            stdout, stderr = _output_after_kill(process)
            pytest.fail(f"{shown} hung: killed after {timeout} s:\n{stdout}\n{stderr}")
        finally:
            if process.poll() is None:  # interrupted: nothing it started outlives the test
                _kill_session(process)
    if check and process.returncode != 0:
        pytest.fail(f"{shown} exited {process.returncode}:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill_session(process: subprocess.Popen) -> None:
    """SIGKILL to every process of the session ``process`` leads (it is its process group)."""
    with contextlib.suppress(ProcessLookupError):  # all of them have ended meanwhile
        os.killpg(process.pid, signal.SIGKILL)


def _output_after_kill(process: subprocess.Popen) -> tuple[str, str]:
    """What a killed process wrote; empty when something it started still holds its pipes open."""
    try:
        return process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        return "", ""


def nix2aci_run(*args: str | Path, tmp: Path, **kwargs) -> subprocess.CompletedProcess:
    """``nix2aci run --insecure-options=image ARGS`` (``nix2aci``'s defaults and ``kwargs``) with TMPDIR ``tmp``,
    which must exist: its bundle goes there. Fails the test when the run left anything new in ``tmp``."""
    require("runc")
    before = set(tmp.iterdir())
    result = nix2aci("run", UNSIGNED, *args, env={"TMPDIR": str(tmp), **kwargs.pop("env", {})}, **kwargs)
    assert set(tmp.iterdir()) == before, f"nix2aci run left {sorted(set(tmp.iterdir()) - before)} in its TMPDIR"
    return result


def bundles_left(tmp: Path) -> list[Path]:
    """The bundles of ``nix2aci run`` in its TMPDIR ``tmp``."""
    return sorted(tmp.glob("nix2aci-run-*"))


@contextlib.contextmanager
def nix2aci_started(*args: str | Path, tmp: Path, **kwargs) -> Iterator[subprocess.Popen]:
    """``nix2aci ARGS`` of this checkout started in the background from REPO (``kwargs`` go to Popen) with
    TMPDIR ``tmp`` (``nix2aci run`` unpacks its bundle there). On leaving, even when the test failed or timed
    out: the process is killed if it still runs, and every container with its bundle under ``tmp`` is
    stopped and deleted."""
    kwargs.setdefault("cwd", REPO)
    process = subprocess.Popen(nix2aci_command(*args), env=nix2aci_environment({"TMPDIR": str(tmp)}), **kwargs)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        delete_containers(containers_under(tmp))
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_line(stream, timeout: float = PATIENCE) -> str:
    """The next line of a process's pipe, failing the test if none comes within ``timeout`` seconds.
    (``select`` sees the pipe, not Python's buffer: meant for lines written one at a time, as a readiness signal.)"""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        pytest.fail(f"no line within {timeout} s")
    return stream.readline()


@pytest.fixture(scope="session", autouse=True)
def _no_container_outlives_the_session(tmp_path_factory) -> Iterator[None]:
    """Fails the run when a container started in this session (its bundle under the
    session's temporary directories, or its id made by ``new_container_id``) still
    exists at the end; deletes it. Containers that were there before, or that belong
    to others on the machine, are left alone."""
    before = set(runc_containers())
    yield
    roots = (Path(SESSION_TMP), tmp_path_factory.getbasetemp())
    leaked = [
        container
        for container, bundle in runc_containers().items()
        if container not in before
        and (container.startswith(CONTAINER_PREFIX) or any(bundle.is_relative_to(root) for root in roots))
    ]
    delete_containers(leaked)
    if leaked:
        pytest.fail(f"containers left running by the tests (now deleted): {', '.join(leaked)}")


# `nix2aci run`'s flag for the images the tests build and do not sign: every test of
# run's other features passes it, and tests/test_run_trust.py covers the signature check.
UNSIGNED = "--insecure-options=image"

# A small valid ImageManifest, for tests that make ACIs by hand.
MANIFEST = {
    "acKind": "ImageManifest",
    "acVersion": "0.8.11",
    "name": "example.com/hello",
    "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
    "app": {"exec": ["/bin/hello"], "user": "0", "group": "0"},
}

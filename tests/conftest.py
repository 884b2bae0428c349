"""Shared fixtures: the real tools, and nix-build with the sandbox on."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GC_ROOTS = tempfile.mkdtemp(prefix="nix2aci-test-roots-")
atexit.register(shutil.rmtree, GC_ROOTS, ignore_errors=True)
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
    return run(["nix-instantiate", "--eval", "--strict", "--json", *NIX_OPTIONS, "-E", let], check=check)


def nix_eval_error(expression: str) -> str:
    """Evaluate ``expression`` expecting an error; return stderr."""
    result = _nix_eval(expression, check=False)
    assert result.returncode != 0, f"expected an evaluation error, got {result.stdout}"
    return result.stderr


def nix_eval_json(expression: str):
    """Evaluate ``expression`` to its JSON value."""
    return json.loads(_nix_eval(expression, check=True).stdout)


def only_aci(output: Path) -> Path:
    """The one .aci file of a build output."""
    images = sorted(output.glob("*.aci"))
    assert len(images) == 1, f"expected one .aci in {output}, found {images}"
    return images[0]


@pytest.fixture(scope="session")
def is_root() -> None:
    """runc needs root here."""
    if os.geteuid() != 0:
        pytest.fail("these tests run containers with runc and need root")

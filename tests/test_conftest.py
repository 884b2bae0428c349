"""The shared command-line helper of conftest.py: it runs this checkout's code, fails on what it must, never hangs."""

from __future__ import annotations

import os
import sys
import time

import pytest
from conftest import REPO, nix2aci, nix2aci_environment, run_guarded


def test_the_command_line_is_this_checkouts_from_any_directory(tmp_path):
    where = run_guarded([sys.executable, "-c", "import nix2aci; print(nix2aci.__file__)"],
                        env=nix2aci_environment(), cwd=tmp_path)  # fmt: skip
    assert where.stdout.strip() == str(REPO / "nix2aci" / "__init__.py")
    assert nix2aci("--help", cwd=tmp_path).stdout.startswith("usage: nix2aci")


def test_an_unexpected_status_fails_the_test_with_the_output(tmp_path):
    missing = tmp_path / "missing.aci"
    with pytest.raises(pytest.fail.Exception, match=f"exited 2:\n\nnix2aci: error: .*{missing}"):
        nix2aci("validate", missing)
    assert nix2aci("validate", missing, check=False).returncode == 2


def test_a_hang_fails_the_test_and_kills_the_process_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    # A child in the background and the shell itself: both would sleep far longer than the test.
    script = f"sleep 1000 & echo $! > {pids}; echo $$ >> {pids}; wait"
    with pytest.raises(pytest.fail.Exception, match="hung: killed after 2 s"):
        run_guarded(["sh", "-c", script], timeout=2)
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"process {pid} outlived the test"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which its parent has not reaped yet, does not), after a moment to die."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.1)  # the interval of the poll, not a wait for readiness
    return os.path.exists(f"/proc/{pid}")

"""A stop signal that comes while runc starts still ends with the container deleted and the bundle removed.

The signal is sent from inside the start of runc (a wrapper around subprocess.Popen
that signals this process once runc says the container runs), so the test needs no
timing: it is the moment between runc's start and the clean-up that would once leave
the container running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest
from conftest import PATIENCE, containers_under, delete_containers, nix_build, only_aci, require

from nix2aci import run as run_module

pytestmark = pytest.mark.slow


def wait_until_running(container: str) -> None:
    """Return once runc says ``container`` runs (a readiness signal, bounded by PATIENCE)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        state = subprocess.run(["runc", "state", container], capture_output=True, text=True, check=False)
        if state.returncode == 0 and json.loads(state.stdout)["status"] == "running":
            return
        time.sleep(0.05)
    pytest.fail(f"container {container} did not start")


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_runc_starts_leaves_no_container_and_no_bundle(tmp_path, monkeypatch, number, is_root):
    require("runc")
    image = only_aci(nix_build("busybox"))
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(bundles))
    real_popen = subprocess.Popen

    def popen_then_signal(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        if args and args[0][:2] == ["runc", "run"]:
            wait_until_running(args[0][-1])
            os.kill(os.getpid(), number)
        return process

    monkeypatch.setattr(subprocess, "Popen", popen_then_signal)
    request = run_module.RunRequest(image=str(image), args=("-c", "sleep 1000"), insecure=frozenset({"image"}))
    try:
        # Ctrl-C ends as KeyboardInterrupt once the app is stopped (the CLI makes it exit 130).
        with contextlib.suppress(KeyboardInterrupt):
            run_module.run(request)
        assert containers_under(bundles) == [], "the container outlived the run"
        assert list(bundles.iterdir()) == [], "the bundle was left"
    finally:
        delete_containers(containers_under(bundles))

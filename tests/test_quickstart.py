"""The README's first command, as a new user runs it: no key of their own, no stdin."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import REPO, nix_eval_json

pytestmark = pytest.mark.slow


def test_quickstart_builds_validates_signs_and_runs_busybox(tmp_path):
    home = tmp_path / "home"
    environment = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    environment.pop("NIX2ACI_GNUPGHOME", None)
    result = subprocess.run(
        ["./scripts/quickstart"], cwd=REPO, env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output
    # The image and the greeting carry the package set's busybox version.
    version = nix_eval_json("n.pkgs.busybox.version")
    image = f"result/busybox-{version}-linux-amd64.aci"
    assert f"{image}: valid app container image" in output
    assert f"{image}: valid aci" in output
    assert "making a THROW-AWAY key" in output
    assert "good signature by nix2aci quickstart (throw-away)" in output
    assert f"Hello from busybox v{version}, running as uid 0 in busybox" in output
    # The throw-away key is gone, and nothing was created in the user's home.
    assert not (home / ".config" / "nix2aci").exists()

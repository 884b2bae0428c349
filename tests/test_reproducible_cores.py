"""End to end: an ACI's bytes do not depend on how many cores Nix gives its build.

The builder compresses on NIX_BUILD_CORES threads (``--option cores N``); the
derivation, and so its output path, is the same for every N, and
``nix-build --check`` rebuilds it and fails when the new bytes differ.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import nix_build_expression, only_aci, require, run

from nix2aci.archive.pgzip import BLOCK_SIZE

pytestmark = pytest.mark.slow

# busybox: a few MB of tar, so several compression blocks for the workers to share.
EXPRESSION = 'n.lib.mkACI { packages = [ n.pkgs.busybox ]; name = "cores-check"; }'


def test_the_aci_is_the_same_built_with_1_and_2_cores():
    built = nix_build_expression(EXPRESSION, "--option", "cores", "2")
    image = only_aci(Path(built.stdout.split()[-1]))
    before = image.read_bytes()
    assert len(gzip.decompress(before)) > 4 * BLOCK_SIZE, "too small to spread over the workers"
    for cores in ("1", "2"):
        check = nix_build_expression(EXPRESSION, "--check", "--option", "cores", cores, check=False)
        assert check.returncode == 0, f"--check with {cores} cores:\n{check.stderr}"
        # The builder really ran again: its summary is in the log.
        assert "nix2aci: wrote cores-check" in check.stderr
    assert image.read_bytes() == before
    require("actool")
    run(["actool", "--debug", "validate", str(image)])

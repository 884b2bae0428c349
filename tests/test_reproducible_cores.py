"""End to end: an ACI's or an OCI layer's bytes do not depend on how many cores Nix gives its build.

The builder compresses on NIX_BUILD_CORES threads (``--option cores N``); the
derivation, and so its output path, is the same for every N, and
``nix-build --check`` rebuilds it and fails when the new bytes differ.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import NIX_OPTIONS, nix_build, nix_build_expression, nix_eval_json, only_aci, require, run

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


def test_an_oci_layer_is_the_same_built_with_1_and_2_cores():
    """The same for a layer of an OCI image (gzip, a derivation of its own): the busybox layer of busyboxImage."""
    derivations = nix_eval_json("map (layer: layer.drvPath) n.busyboxImage.layers")
    nix_build("busyboxImage", "--option", "cores", "2")
    busybox = nix_eval_json("n.pkgs.busybox.outPath")
    (derivation,) = [path for path in derivations if path.endswith(f"-oci-layer-{busybox.split('-', 1)[1]}.drv")]
    (output,) = run(["nix-store", "--query", "--outputs", derivation]).stdout.split()
    blob = Path(output) / "blob"
    assert len(gzip.decompress(blob.read_bytes())) > 4 * BLOCK_SIZE, "too small to spread over the workers"
    for cores in ("1", "2"):
        check = run(["nix-store", "--realise", "--check", derivation, *NIX_OPTIONS, "--option", "cores", cores])
        assert "nix2aci: wrote a layer" in check.stderr  # the builder really ran again

"""End to end: an OCI image of zstd layers (``layerCompression = "zstd"``), built by Nix with the sandbox on and the
host's python3-zstandard: the same bytes built with 1 and 2 cores (``nix-build --check``), valid to
``nix2aci validate``, and run by podman (umoci 0.4.7 and oci-image-tool 1.0.0-rc1 predate zstd layers)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build_expression, require, run

pytestmark = pytest.mark.slow

# nix/oci-image.nix's argument naming the layers' compression.
ARGUMENT = "compression"
EXPRESSION = (
    f'n.lib.buildOCIImage {{ packages = [ n.pkgs.busybox ]; name = "zstd-check"; tag = "zstd"; {ARGUMENT} = "zstd";'
    ' cmd = [ "/bin/busybox" "echo" "hi from zstd" ]; }'
)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def layers(layout: Path) -> list[dict]:
    """The layer descriptors of the one image of the OCI layout ``layout``."""
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    return json.loads((layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_text())["layers"]


def podman_runs(layout: Path, tag: str) -> str:
    """What podman prints running the image ``tag`` of ``layout``, pulled into storage of its own (its
    containers.conf, root, runroot and tmpdir in a temporary directory, short as podman wants its runroot:
    nothing of the host's is touched), reset and removed afterwards."""
    podman = require("podman")
    with tempfile.TemporaryDirectory(prefix="podman-") as directory:
        state = Path(directory)
        (state / "containers.conf").write_text(
            '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        )
        command = [podman, "--root", f"{state}/root", "--runroot", f"{state}/run", "--tmpdir", f"{state}/tmp"]
        command += ["--storage-driver", "vfs"]
        environment = {**os.environ, "CONTAINERS_CONF": str(state / "containers.conf")}
        try:
            image = run([*command, "pull", "-q", f"oci:{layout}:{tag}"], env=environment).stdout.strip()
            return run([*command, "run", "--rm", "--network", "none", image], env=environment).stdout
        finally:
            run([*command, "system", "reset", "--force"], env=environment, check=False)


def test_a_zstd_image_is_the_same_with_1_and_2_cores_valid_and_run_by_podman():
    built = nix_build_expression(EXPRESSION, "--option", "cores", "2")
    layout = Path(built.stdout.split()[-1])
    before = {path: path.read_bytes() for path in layout.rglob("*") if path.is_file()}
    for cores in ("1", "2"):
        check = nix_build_expression(EXPRESSION, "--check", "--option", "cores", cores, check=False)
        assert check.returncode == 0, f"--check with {cores} cores:\n{check.stderr}"
        assert "nix2aci: wrote an OCI image layout" in check.stderr  # the builder really ran again
    assert {path: path.read_bytes() for path in before} == before
    (layer,) = layers(layout)
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert (layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")).read_bytes().startswith(ZSTD_MAGIC)
    assert nix2aci("validate", layout).stdout == f"{layout}: valid oci-layout\n"
    assert podman_runs(layout, "zstd") == "hi from zstd\n"

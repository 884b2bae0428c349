"""End to end: an OCI image of zstd layers (``layerCompression = "zstd"``), built by Nix with the sandbox on and the
host's python3-zstandard: the same bytes built with 1 and 2 cores (``nix-build --check``), valid to
``nix2aci validate``, and run by podman (umoci 0.4.7 and oci-image-tool 1.0.0-rc1 predate zstd layers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NIX_OPTIONS, image_entry, nix2aci, nix_build_expression, nix_eval_json, run

pytestmark = pytest.mark.slow

# nix/oci-image.nix's argument naming the layers' compression.
ARGUMENT = "layerCompression"
EXPRESSION = (
    f'n.lib.buildOCIImage {{ packages = [ n.pkgs.busybox ]; name = "zstd-check"; tag = "zstd"; {ARGUMENT} = "zstd";'
    ' cmd = [ "/bin/busybox" "echo" "hi from zstd" ]; }'
)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def layers(layout: Path) -> list[dict]:
    """The layer descriptors of the one image of the OCI layout ``layout``."""
    entry = image_entry(layout)
    return json.loads((layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_text())["layers"]


def test_a_zstd_image_is_the_same_with_1_and_2_cores_valid_and_run_by_podman(podman_engine):
    built = nix_build_expression(EXPRESSION, "--option", "cores", "2")
    layout = Path(built.stdout.split()[-1])
    # The layers are derivations of their own: each is built again with 1 and with 2 cores, to the same bytes.
    derivations = nix_eval_json(f"map (layer: layer.drvPath) ({EXPRESSION}).layers")
    for cores in ("1", "2"):
        check = run(["nix-store", "--realise", "--check", *derivations, *NIX_OPTIONS, "--option", "cores", cores])
        assert check.stderr.count("nix2aci: wrote a layer") == len(derivations)  # the builder really ran again
    found = layers(layout)
    assert len(found) == len(derivations) > 1
    for layer in found:
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
        blob = layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        assert blob.read_bytes().startswith(ZSTD_MAGIC)
    assert nix2aci("validate", layout).stdout == f"{layout}: valid oci-layout\n"
    image = podman_engine.pull(f"oci:{layout}:zstd")
    assert podman_engine.run(image) == "hi from zstd\n"

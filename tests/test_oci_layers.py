"""buildOCIImage's layers, end to end with nix-build and the sandbox on: one derivation per layer, shared by every
image holding the same store path, rebuilt only when its store paths change; maxLayers; fromImage's layers and
config; and the result run by podman.

The application that changes is a store path whose content carries a fresh nonce, so that no earlier run of the
suite has built it: what a rebuild builds is read from nix-build's own list of the derivations it will build.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from conftest import image_entry, nix_build, nix_build_expression, nix_eval_error, nix_eval_json

pytestmark = pytest.mark.slow


def image_documents(layout: Path) -> tuple[dict, dict]:
    """The manifest and the config of the one image of the OCI layout ``layout``."""
    entry = image_entry(layout)
    blob = lambda digest: json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text())  # noqa: E731
    manifest = blob(entry["digest"])
    return manifest, blob(manifest["config"]["digest"])


def built_derivations(stderr: str) -> list[str]:
    """The names (without hash and .drv) of the derivations nix-build built, while evaluating (the layering)
    or after."""
    return sorted(re.findall(r"^building '/nix/store/[0-9a-z]{32}-(.+)\.drv'", stderr, re.MULTILINE))


def app_image(nonce: str, more: str = "") -> str:
    """An image of busybox and an application package whose one file (and so its store path) holds ``nonce``."""
    make = f"${{n.pkgs.busybox}}/bin/busybox mkdir -p $out/share && echo {nonce} > $out/share/app"
    builder = "${n.pkgs.busybox}/bin/busybox"
    app = (
        f'derivation {{ name = "app"; system = n.pkgs.system; builder = "{builder}"; args = [ "sh" "-c" "{make}" ]; }}'
    )
    return (
        f"n.lib.buildOCIImage {{ packages = [ n.pkgs.busybox ({app}) ]; "
        f'name = "layered-app"; tag = "t"; cmd = [ "/bin/sh" "-c" "echo hi" ]; {more} }}'
    )


def test_a_store_path_is_the_same_layer_in_every_image_that_holds_it():
    alone = nix_build("busyboxImage")
    with_more = Path(nix_build_expression(app_image(secrets.token_hex(8))).stdout.split()[-1])
    busybox = nix_eval_json("n.pkgs.busybox.outPath")
    digests = []
    for layout in (alone, with_more):
        manifest, config = image_documents(layout)
        # The history names each layer's store paths: find busybox's.
        comments = [entry["comment"] for entry in config["history"]]
        index = comments.index(f"store paths: {busybox}")
        digests.append(manifest["layers"][index]["digest"])
        blob = layout / "blobs" / "sha256" / manifest["layers"][index]["digest"].removeprefix("sha256:")
        digests.append(str(blob.resolve()))
    assert digests[0] == digests[2]  # the same digest ...
    assert digests[1] == digests[3]  # ... from the same layer derivation's output: the store holds it once


def test_a_rebuild_after_the_application_changed_builds_only_its_layer_and_the_image():
    first = nix_build_expression(app_image(secrets.token_hex(8)))
    assert "oci-layer-app" in " ".join(built_derivations(first.stderr))
    changed = nix_build_expression(app_image(secrets.token_hex(8)))
    assert built_derivations(changed.stderr) == [
        "app",
        "oci-image-layered-app-t",
        "oci-layer-app",
        "oci-layer-rootfs-layered-app-t",
        "oci-layering-layered-app-t",
        "sbom-layered-app-t",  # the SBOM lists the new app: a small step of its own
    ]


def test_max_layers_bounds_the_layers_and_one_means_one_layer():
    nonce = secrets.token_hex(8)
    counts = {}
    for max_layers in (1, 2, 3, 100):
        layout = Path(nix_build_expression(app_image(nonce, f"maxLayers = {max_layers};")).stdout.split()[-1])
        manifest, config = image_documents(layout)
        counts[max_layers] = len(manifest["layers"])
        assert len(config["history"]) == len(manifest["layers"]) == len(config["rootfs"]["diff_ids"])
    # busybox, the app and the CA bundle: three store paths, then the last layer.
    assert counts == {1: 1, 2: 2, 3: 3, 100: 4}
    assert nix_eval_json(f"builtins.length ({app_image(nonce, 'maxLayers = 1;')}).layers") == 1


def test_max_layers_below_one_fails_at_evaluation():
    message = nix_eval_error(f"({app_image('x', 'maxLayers = 0;')}).drvPath")
    assert "buildOCIImage: maxLayers must be an integer from 1, got 0" in message


BASE = "n.busyboxImage"
DERIVED = f"""n.lib.buildOCIImage {{
  packages = [ n.pkgs.hello ]; fromImage = {BASE}; name = "derived"; tag = "t";
  cmd = [ "/bin/hello" ]; env.GREETING = "hi"; labels."org.example.derived" = "yes"; MORE
}}"""


def test_from_image_puts_the_base_layers_first_and_inherits_its_config(podman_engine):
    base_manifest, base_config = image_documents(nix_build("busyboxImage"))
    layout = Path(nix_build_expression(DERIVED.replace("MORE", "")).stdout.split()[-1])
    manifest, config = image_documents(layout)
    inherited = len(base_manifest["layers"])
    assert manifest["layers"][:inherited] == base_manifest["layers"]
    assert config["rootfs"]["diff_ids"][:inherited] == base_config["rootfs"]["diff_ids"]
    assert config["history"][:inherited] == base_config["history"]
    assert len(manifest["layers"]) > inherited
    # Env merged by name, Labels and ExposedPorts merged, User and WorkingDir kept, Cmd replaced.
    base = base_config["config"]
    assert config["config"]["Env"] == sorted([*base["Env"], "GREETING=hi"])
    assert config["config"]["Labels"] == {**base["Labels"], "org.example.derived": "yes"}
    assert config["config"]["ExposedPorts"] == base["ExposedPorts"]
    assert (config["config"]["User"], config["config"]["WorkingDir"]) == (base["User"], base["WorkingDir"])
    assert config["config"]["Cmd"] == ["/bin/hello"]
    # The base's busybox and the image's hello are both there.
    image = podman_engine.pull(f"oci:{layout}:t")
    assert podman_engine.run(image) == "Hello, world!\n"
    assert podman_engine.run(image, "/bin/busybox", "echo", "from the base") == "from the base\n"


def test_from_image_layers_count_against_max_layers():
    inherited = len(image_documents(nix_build("busyboxImage"))[0]["layers"])
    message = nix_eval_error(f"({DERIVED.replace('MORE', f'maxLayers = {inherited};')}).drvPath")
    assert (
        f"maxLayers = {inherited} leaves no layer for the image's own files: fromImage has {inherited} layers"
        in message
    ), message

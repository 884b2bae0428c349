"""End to end: every image of default.nix rebuilds bit for bit.

The images are found when the tests are collected, so a new one is checked without
being listed here: the derivations among default.nix's attributes, but the command
line's own package (``nix2aci``) and the library and package set (``lib``, ``pkgs``).
``nix-build --check`` builds an output that exists again and fails when any of its
bytes differ (an ACI's or bundle's SBOM among them); an OCI image's layers and SBOM,
derivations of their own, are checked too.
(tests/test_reproducible_cores.py checks the same across core counts.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NIX_OPTIONS, REPO, nix_build, nix_eval_json, nix_strings, require, run

pytestmark = pytest.mark.slow

NOT_IMAGES = ["lib", "pkgs", "nix2aci"]


def image_attributes() -> list[str]:
    """The attributes of default.nix that are derivations, but NOT_IMAGES; sorted."""
    attributes = f"builtins.attrNames (removeAttrs n {nix_strings(NOT_IMAGES)})"
    return sorted(nix_eval_json(f'builtins.filter (name: (n.${{name}}.type or null) == "derivation") ({attributes})'))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``image`` over the images of default.nix."""
    if "image" in metafunc.fixturenames:
        metafunc.parametrize("image", image_attributes())


def test_every_image_attribute_is_an_image_of_nix2aci():
    # What the rebuild test takes for images is what nix2aci built: each has the format it was built as.
    formats = nix_eval_json(f"map (name: n.${{name}}.nix2aci.format) {nix_strings(image_attributes())}")
    assert formats and all(isinstance(found, str) for found in formats), formats


def test_the_image_rebuilds_bit_for_bit(image):
    output = nix_build(image)
    require("nix-build")
    # --check builds the derivation again and fails (so does `run`) when any output byte differs.
    rebuilt = run(["nix-build", str(REPO), "-A", image, "--check", "--no-out-link", *NIX_OPTIONS])
    assert "checking outputs of" in rebuilt.stderr, rebuilt.stderr
    assert Path(rebuilt.stdout.split()[-1]) == output
    # An OCI image's layers and its SBOM's build, derivations of their own.
    layers = nix_eval_json(
        f"map (step: step.drvPath) (n.{image}.layers or [ ] ++ (if n.{image} ? sbom then [ n.{image}.sbom ] else [ ]))"
    )
    if layers:
        rebuilt = run(["nix-store", "--realise", "--check", *layers, *NIX_OPTIONS])
        assert rebuilt.stderr.count("checking outputs of") == len(layers), rebuilt.stderr

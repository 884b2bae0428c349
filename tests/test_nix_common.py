"""What the three functions share (nix/common.nix): the platform default and `prefer`.

Evaluation only: a package that says it is built for another system gives the image
that system's platform, in each format's own names.
"""

from __future__ import annotations

import pytest
from conftest import nix_eval_json

FUNCTIONS = {
    "mkACI": "n.lib.mkACI { packages = [ PACKAGE ]; MORE }",
    "buildOCIImage": "n.lib.buildOCIImage { packages = [ PACKAGE ]; MORE }",
    "buildContainer": 'n.lib.buildContainer { packages = [ PACKAGE ]; args = [ "/bin/hello" ]; MORE }',
}


def image(function: str, system: str, more: str = "") -> dict:
    """The build spec's `image` part of ``function`` over hello claiming to be built for ``system``."""
    package = f'{{ inherit (n.pkgs.hello) outPath name; system = "{system}"; }}'
    call = FUNCTIONS[function].replace("PACKAGE", f"({package})").replace("MORE", more)
    return nix_eval_json(f"({call}).nix2aci.image")


@pytest.mark.parametrize(
    ("function", "system", "expected"),
    [
        ("mkACI", "armv7l-linux", ("linux", "armv7l")),
        ("mkACI", "i686-linux", ("linux", "i386")),
        ("buildOCIImage", "aarch64-linux", ("linux", "arm64")),
        ("buildContainer", "aarch64-linux", ("linux", "arm64")),
    ],
)
def test_os_and_arch_default_to_the_first_packages_system_in_the_formats_names(function, system, expected):
    spec = image(function, system)
    assert (spec["os"], spec["arch"]) == expected


def test_the_default_oci_variant_goes_with_the_default_arch_only():
    default = image("buildOCIImage", "armv7l-linux")
    assert (default["arch"], default["variant"]) == ("arm", "v7")
    given = image("buildOCIImage", "armv7l-linux", 'arch = "arm";')
    assert (given["arch"], given["variant"]) == ("arm", None)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_prefer_goes_to_the_spec_as_store_paths_and_not_to_the_image(function):
    """prefer goes to the spec of the file tree (an OCI image's last layer), never to the image's own part."""
    call = FUNCTIONS[function].replace("PACKAGE", "n.pkgs.hello").replace("MORE", "prefer = [ n.pkgs.busybox ];")
    tree = f"({call}).rootfsLayer" if function == "buildOCIImage" else f"({call})"
    names = f"{{ inherit ({tree}.nix2aci) prefer; image = builtins.attrNames ({call}).nix2aci.image; }}"
    spec = nix_eval_json(names)
    assert spec["prefer"] == [nix_eval_json("n.pkgs.busybox.outPath")]
    assert "prefer" not in spec["image"] and "packages" not in spec["image"]

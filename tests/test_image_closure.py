"""An image output holds the image: its closure is what the image needs, not nix2aci's builder.

A fat ACI or a docker-archive references no store path but itself; an OCI layout references
its layers, each a derivation referencing nothing; a thin ACI references exactly the paths it
mounts. The command line is a package of its own: nix-build -A nix2aci.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import NIX_OPTIONS, REPO, nix_build, nix_eval_json, only_aci, require, run

pytestmark = pytest.mark.slow

# The environment of a user without the project's virtualenv.
BARE = {"PATH": "/usr/bin:/bin"}


def requisites(*paths: str | Path) -> set[str]:
    """The runtime closure of store ``paths`` (nix-store --query --requisites)."""
    return set(run(["nix-store", "--query", "--requisites", *map(str, paths)]).stdout.split())


@pytest.mark.parametrize("attribute", ["busybox", "busyboxStatic", "busyboxArchive"])
def test_a_fat_image_references_no_store_path(attribute):
    output = nix_build(attribute)
    assert requisites(output) == {str(output)}


def test_an_oci_layout_references_its_layers_and_they_nothing():
    output = nix_build("busyboxImage")
    blobs = output / "blobs" / "sha256"
    layers = {str(Path(os.readlink(blob)).parent) for blob in blobs.iterdir() if blob.is_symlink()}
    assert len(layers) == 3  # cacert, busybox, and the profile with the basics
    assert requisites(output) == {str(output)} | layers
    assert all(requisites(layer) == {layer} for layer in layers)


@pytest.mark.parametrize("attribute", ["helloThin", "bbpythonThin"])
def test_a_thin_image_references_exactly_what_it_mounts(attribute):
    output = nix_build(attribute)
    (mounts,) = output.glob("*.mounts")
    mounted = set(re.findall(r",source=([^,]+),", mounts.read_text()))
    roots = nix_eval_json(f"n.{attribute}.nix2aci.roots")
    assert mounted == requisites(*roots)  # the image mounts its roots' whole closure ...
    assert requisites(output) == {str(output)} | mounted  # ... and its output references that, nothing more


def test_nix_build_gives_the_command_line_with_the_package_sets_python(tmp_path):
    command = nix_build("nix2aci") / "bin" / "nix2aci"
    image = only_aci(nix_build("busybox"))
    result = run([str(command), "--help"], env=BARE, cwd=tmp_path)
    assert result.stdout.startswith("usage: nix2aci ")
    result = run([str(command), "validate", str(image)], env=BARE, cwd=tmp_path)
    assert result.stdout == f"{image}: valid aci\n"
    # It runs the package set's interpreter, not the virtualenv's, on the source in the store.
    python = nix_eval_json("n.pkgs.nix2aciPython")
    assert command.read_text().splitlines()[1].startswith(f"exec '{python}' '-I' ")


def test_nix_env_installs_the_command_line(tmp_path):
    require("nix-env")
    profile = tmp_path / "profile"  # a profile of the test's own: the user's is left alone
    run(["nix-env", "--profile", str(profile), "--file", str(REPO), "--install", "--attr", "nix2aci", *NIX_OPTIONS])
    installed = profile / "bin" / "nix2aci"
    assert os.path.realpath(installed) == str(nix_build("nix2aci") / "bin" / "nix2aci")
    assert run([str(installed), "--help"], env=BARE, cwd=tmp_path).stdout.startswith("usage: nix2aci ")

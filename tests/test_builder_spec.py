"""The builder checks a build spec again, whoever wrote it: fed one that never went through Nix's checks,
it refuses what would reach outside the image, with a clear line, and writes nothing there; a spec that
breaks the contract between Nix and Python (nix2aci.build.spec) is one line naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, nix_build_expression, nix_eval_json, run

from nix2aci.build.closure import Closure
from nix2aci.build.spec import OUTPUTS, STEPS, BuildSpec

pytestmark = pytest.mark.slow

OCI_IMAGE = "n.lib.buildOCIImage { packages = [ n.pkgs.busybox ]; }"
# The builds of an image's file tree, by format; an OCI image's is its last layer's.
FUNCTIONS = {
    "aci": 'n.lib.mkACI { packages = [ n.pkgs.busybox ]; exec = [ "/bin/sh" ]; }',
    "oci-bundle": 'n.lib.buildContainer { args = [ "${n.pkgs.busybox}/bin/sh" ]; packages = [ n.pkgs.busybox ]; }',
    "oci-rootfs-layer": f"({OCI_IMAGE}).rootfsLayer",
}
# The builds whose spec holds the image's environment: the OCI image's is the image from its layers.
WITH_ENV = {"aci": FUNCTIONS["aci"], "oci-bundle": FUNCTIONS["oci-bundle"], "oci-layout": OCI_IMAGE}


def registration(root: str) -> str:
    """exportReferencesGraph's file for ``root``: each path of its closure, an empty deriver, its references."""
    text = ""
    for path in run(["nix-store", "--query", "--requisites", root]).stdout.split():
        references = run(["nix-store", "--query", "--references", path]).stdout.split()
        text += f"{path}\n\n{len(references)}\n" + "".join(f"{reference}\n" for reference in references)
    return text


@pytest.fixture(scope="module")
def specs() -> dict[str, tuple[dict, list[str]]]:
    """{format: (the build spec Nix writes for it, the closure files of its roots)}, its roots built."""
    found = {}
    for output_format, expression in {**FUNCTIONS, **WITH_ENV}.items():
        nix_build_expression(expression)
        spec = nix_eval_json(f"({expression}).nix2aci")
        assert spec["format"] == output_format
        found[output_format] = (spec, [registration(root) for root in spec.get("roots", [])])
    return found


def build(directory: Path, spec: dict, closures: list[str]) -> subprocess.CompletedProcess:
    """Run the builder as Nix does, in the build directory ``directory``, with ``out`` in it."""
    (directory / ".attr-spec").write_text(json.dumps(spec))
    for index, text in enumerate(closures):
        (directory / f"closure-{index}").write_text(text)
    environment = {"nix2aciSpecPath": str(directory / ".attr-spec"), "NIX_BUILD_TOP": str(directory)}
    command = [sys.executable, "-B", "-c", "import sys; from nix2aci.build.main import main; sys.exit(main())"]
    return subprocess.run(
        command, env={**environment, "out": str(directory / "out")}, cwd=REPO, capture_output=True, text=True
    )


@pytest.mark.parametrize("output_format", FUNCTIONS)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # rootfs/../X is $out/X; rootfs/../../X is next to $out, where the canary is.
        (
            lambda spec: spec["rootfs"].update(files={"../X": {**FILE, "text": "attack"}}),
            'files."../X": must be an absolute path in the image, normalised',
        ),
        (
            lambda spec: spec["rootfs"].update(files={"/../../X": {**FILE, "text": "attack"}}),
            'files."/../../X": must be an absolute path in the image, normalised',
        ),
        (
            lambda spec: spec["rootfs"].update(files={"/a\0b": {**FILE, "text": "attack"}}),
            'files."/a\\u0000b": must be an absolute path in the image, normalised',
        ),
        (
            lambda spec: spec["rootfs"].update(files={"/X": {**FILE, "symlink": ""}}),
            'files."/X".symlink: must be a non-empty string without NUL',
        ),
        (
            lambda spec: spec["rootfs"].update(files={"/X": {**FILE, "text": 5}}),
            "build spec: rootfs.files./X.text must be a string or null, got 5",
        ),
        (
            lambda spec: spec["rootfs"].update(files={"/nix/store/X": {**FILE, "text": "attack"}}),
            'files."/nix/store/X": must lie outside the Nix store (/nix/store)',
        ),
        (
            lambda spec: spec["rootfs"]["account"].update(user="evil:x:0:0::/:/bin/sh\nmallory"),
            "user: must be a user or group name: a lowercase letter or _",
        ),
        (lambda spec: spec["rootfs"]["account"].update(group="²"), "group: must be a user or group name"),
        (lambda spec: spec["rootfs"].update(uid=4294967296), "uid: must be an integer from 0 to 4294967295"),
    ],
)
def test_a_hostile_spec_is_refused_and_nothing_outside_the_image_is_written(
    specs, tmp_path, output_format, change, expected
):
    refused_and_nothing_written(specs, tmp_path, output_format, change, expected)


@pytest.mark.parametrize("output_format", WITH_ENV)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda spec: spec["image"]["env"].update({"A=B": "c"}),
            'env."A=B": must be an environment variable name: letters, digits, _, . and -',
        ),
        (lambda spec: spec["image"]["env"].update({"A": "c\0d"}), "env.A: must be a string without NUL"),
    ],
)
def test_a_hostile_environment_is_refused(specs, tmp_path, output_format, change, expected):
    refused_and_nothing_written(specs, tmp_path, output_format, change, expected)


def refused_and_nothing_written(specs, tmp_path, output_format: str, change, expected: str) -> None:
    """The spec of ``output_format`` after ``change`` fails to build with the one line ``expected``, and
    writes nothing outside its output (a canary where rootfs/../../X would land stays)."""
    spec, closures = json.loads(json.dumps(specs[output_format][0])), specs[output_format][1]
    change(spec)
    directory = tmp_path / "build"
    directory.mkdir()
    canary = directory / "X"
    canary.write_text("canary\n")
    result = build(directory, spec, closures)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"nix2aci: error: {expected}"), result.stderr
    assert "Traceback" not in result.stderr
    assert canary.read_text() == "canary\n"
    assert not (directory / "out" / "X").exists() and not (tmp_path / "X").exists()


# A user's file as nix/common.nix writes it into the spec, before its kind is chosen.
FILE = {"text": None, "source": None, "symlink": None, "directory": False, "mode": None, "uid": 0, "gid": 0}


@pytest.mark.parametrize("output_format", {**FUNCTIONS, **WITH_ENV})
def test_the_unchanged_spec_builds(specs, tmp_path, output_format):
    """The hostile cases above fail for what they change, not for how the spec is fed."""
    spec, closures = specs[output_format]
    result = build(tmp_path, spec, closures)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("output_format", FUNCTIONS)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda spec: spec.pop("roots"), "missing key roots, which must be a list of strings"),
        (lambda spec: spec["rootfs"].update(bogus=1), "unknown key rootfs.bogus; rootfs takes "),
        (lambda spec: spec["rootfs"].update(uid="1000"), "rootfs.uid must be an integer, got '1000'"),
    ],
)
def test_a_spec_breaking_the_contract_is_one_line_naming_the_key(specs, tmp_path, output_format, change, expected):
    spec, closures = json.loads(json.dumps(specs[output_format][0])), specs[output_format][1]
    change(spec)
    result = build(tmp_path, spec, closures)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"nix2aci: error: build spec: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def output_files(out: Path) -> dict[str, bytes]:
    """{path below ``out``: bytes} of every regular file a build wrote but postprocess.sh, which names ``out``."""
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != "postprocess.sh"
    }


@pytest.mark.parametrize("output_format", ["aci", "oci-rootfs-layer"])
def test_a_single_archive_is_the_same_bytes_however_its_layers_are_grouped(specs, tmp_path, output_format):
    """A single-archive format (an ACI, an OCI image's one layer) merges the layers: one layer per store path
    gives the bytes of the one layer of the whole closure (the spec Nix writes, ``layers = [ ]``)."""
    spec, closures = specs[output_format]
    spec = {**spec, "includeStore": True} if output_format == "oci-rootfs-layer" else spec
    closure = Closure.from_registrations(closures).paths_needed_by(spec["roots"])
    assert spec["layers"] == [] and len(closure) > 1
    (tmp_path / "one").mkdir()
    (tmp_path / "each").mkdir()
    assert build(tmp_path / "one", spec, closures).returncode == 0
    result = build(tmp_path / "each", {**spec, "layers": [[path] for path in reversed(closure)]}, closures)
    assert result.returncode == 0, result.stderr
    one, each = output_files(tmp_path / "one" / "out"), output_files(tmp_path / "each" / "out")
    assert any(name.endswith((".aci", "blob")) for name in one)
    assert each == one


@pytest.mark.parametrize("output_format", FUNCTIONS)
def test_layers_outside_the_closure_are_one_line_naming_the_key_and_nothing_is_written(specs, tmp_path, output_format):
    spec, closures = specs[output_format]
    outside = "/nix/store/" + "0" * 32 + "-elsewhere"  # a store path, but not in the image's closure
    result = build(tmp_path, {**spec, "layers": [[outside]]}, closures)
    assert result.returncode == 1, result.stderr
    expected = f"nix2aci: error: build spec: layers[0] holds {outside}, which is not in the image's closure\n"
    assert result.stderr == expected
    assert not (tmp_path / "out").exists()


# Each function with every argument that adds keys to the spec (the records inside image and rootfs).
FULL = {
    "aci": """n.lib.mkACI {
      packages = [ n.pkgs.busybox ]; exec = [ "/bin/sh" ]; thin = true; compressionLevel = 9;
      files."/etc/motd".text = "hi"; mounts.data.path = "/data"; ports.http.port = 80;
      isolators = [ { name = "resource/memory"; value.limit = "1G"; } ];
      eventHandlers.pre-start = [ "/bin/true" ]; dependencies = [ { imageName = "example.com/b"; } ];
    }""",
    "oci-bundle": """n.lib.buildContainer {
      args = [ "${n.pkgs.busybox}/bin/sh" ]; files."/etc/motd".text = "hi"; mounts."/data".type = "tmpfs";
      user.additionalGids = [ 5 ]; capabilities = [ "CAP_CHOWN" ]; hostname = "h";
    }""",
    "oci-rootfs-layer": """(n.lib.buildOCIImage {
      packages = [ n.pkgs.busybox ]; files."/etc/motd".text = "hi"; cmd = [ "sh" ]; arch = "arm";
    }).rootfsLayer""",
}


@pytest.mark.parametrize("output_format", FULL)
def test_every_key_the_nix_functions_write_is_in_the_contract(output_format):
    """The spec of each function given every argument with keys of its own loads into the records: the Nix
    side and nix2aci.build.spec agree on every key, nested ones included (a key one adds fails here)."""
    document = nix_eval_json(f"({FULL[output_format]}).nix2aci")
    spec = BuildSpec.from_json(document, closure=Closure({}), out="/nix/store/o-out")
    assert type(spec.output) is OUTPUTS[output_format]
    assert spec.rootfs.files["/etc/motd"].text == "hi"


def test_every_key_of_the_other_oci_steps_is_in_the_contract():
    """The layering, store layer and image specs buildOCIImage writes, every argument given, load into their
    records (an image from a base image, so that the layering reads one)."""
    base = nix_build_expression(OCI_IMAGE).stdout.strip()
    image = f"""n.lib.buildOCIImage {{
      packages = [ n.pkgs.busybox ]; cmd = [ "sh" ]; format = "docker-archive"; layerCompression = "none";
      created = "2024-01-02T03:04:05Z"; labels.a = "b"; maxLayers = 5; fromImage = builtins.storePath "{base}";
    }}"""
    steps = {
        "oci-layout": f"({OCI_IMAGE}).nix2aci",
        "docker-archive": f"({image}).nix2aci",
        "oci-store-layer": f"(builtins.head ({image}).layers).nix2aci",
    }
    for output_format, attribute in steps.items():
        document = nix_eval_json(attribute)
        assert document["format"] == output_format
        record = STEPS[output_format]
        assert type(record.from_json(document, out="/nix/store/o-out")) is record

"""The build spec and the closure files, as a Nix build hands them to the builder: the typed contract
between Nix and Python (nix2aci.build.spec), where a missing, unknown or mistyped key is one line naming it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nix2aci.build.closure import Closure
from nix2aci.build.spec import (
    STEPS,
    AciOutput,
    BaseImageSpec,
    BuildSpec,
    BuildSpecError,
    BundleOutput,
    ImageSpec,
    LayeringSpec,
    RootfsLayerOutput,
    SbomSpec,
    StoreLayerSpec,
    load,
)
from nix2aci.build.spec.aci import Mount, Port
from nix2aci.build.spec.rootfs import File
from nix2aci.errors import Nix2AciError
from nix2aci.schema import json_path

A = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a"
B = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"
C = "/nix/store/cccccccccccccccccccccccccccccccc-c"
# A user's file as nix/common.nix writes it.
MOTD = {"text": "hi\n", "source": None, "symlink": None, "directory": False, "mode": "0640", "uid": 0, "gid": 0}
# The keys every format has, as the Nix functions write them (nix/common.nix, nix/builder.nix).
COMMON = {
    "mode": "fat",
    "packages": [A],
    "roots": [A, C],
    "prefer": [],
    "layers": [[C]],
    "rootfs": {
        "users": True,
        "hosts": True,
        "tmp": True,
        "shellLinks": True,
        "resolvConf": False,
        "cacert": f"{C}/etc/ssl/certs/ca-bundle.crt",
        "uid": 1000,
        "gid": 1000,
        "files": {"/etc/motd": MOTD},
        "account": {"user": "0", "group": "0"},
    },
}
# One spec per format, each key of its part set (nix/mk-aci.nix, nix/build-container.nix, nix/oci-image.nix).
SPECS: dict[str, dict[str, Any]] = {
    "aci": {
        **COMMON,
        "format": "aci",
        "sign": True,
        "command": "/nix/store/ssssssssssssssssssssssssssssssss-nix2aci-0.1.0.drv",
        "compression": "gzip",
        "compressionLevel": None,
        "provenance": {
            A: {
                "debian": [{"package": "a", "version": "1:1.0-1", "arch": "amd64"}],
                "licenses": [{"spdxId": "MIT", "name": "MIT License"}],
                "homepage": None,
            }
        },
        "image": {
            "name": "example.com/a",
            "version": "1.0",
            "os": "linux",
            "arch": "amd64",
            "exec": ["/bin/sh"],
            "env": {"A": "b"},
            "user": "0",
            "group": "0",
            "supplementaryGIDs": [],
            "workingDirectory": None,
            "labels": {},
            "annotations": {},
            "userLabels": {},
            "userAnnotations": {},
            "mounts": {"data": {"path": "/data", "readOnly": False}},
            "ports": {"http": {"port": 80, "protocol": "tcp", "count": 1, "socketActivated": False}},
            "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}],
            "eventHandlers": {"pre-start": None, "post-stop": ["/bin/true"]},
            "dependencies": [{"imageName": "example.com/b", "imageID": None, "labels": {}, "size": None}],
            "pathWhitelist": [],
        },
    },
    "oci-bundle": {
        **COMMON,
        "format": "oci-bundle",
        "image": {
            "os": "linux",
            "arch": "amd64",
            "args": [f"{A}/bin/sh"],
            "env": {},
            "mounts": {"/data": {"type": "bind", "source": "/srv", "options": ["rbind"]}},
            "readonly": True,
            "user": {"uid": 0, "gid": 0, "additionalGids": []},
            "cwd": "/",
            "terminal": False,
            "hostname": None,
            "capabilities": None,
        },
        "provenance": {},
    },
    "oci-rootfs-layer": {**COMMON, "format": "oci-rootfs-layer", "compression": "gzip", "includeStore": False},
    # The specs of the other steps of an OCI image (nix/oci-image.nix), records of their own.
    "oci-base-image": {"format": "oci-base-image", "image": C},
    "oci-layering": {"format": "oci-layering", "roots": [A, C], "first": [A], "maxLayers": 100, "baseImage": None},
    "oci-store-layer": {"format": "oci-store-layer", "paths": [B], "compression": "gzip"},
    "oci-layout": {
        "format": "oci-layout",
        "image": {
            "os": "linux",
            "arch": "arm",
            "variant": "v7",
            "name": "example.com/a",
            "tag": "1.0",
            "created": "1970-01-01T00:00:01Z",
            "entrypoint": ["/bin/sh"],
            "cmd": None,
            "env": {},
            "workingDir": None,
            "user": None,
            "exposedPorts": ["80/tcp"],
            "labels": {},
        },
        "layers": [{"layer": "/nix/store/llllllllllllllllllllllllllllllll-oci-layer-b", "comment": "store paths: b"}],
        "baseImage": None,
        "sign": True,
        "command": "/nix/store/ssssssssssssssssssssssssssssssss-nix2aci-0.1.0.drv",
        "sbom": "/nix/store/ssssssssssssssssssssssssssssssss-sbom-a-1.0/a-1.0.spdx.json",
    },
    "sbom": {
        "format": "sbom",
        "name": "example.com/a:1.0",
        "fileName": "a-1.0.spdx.json",
        "created": "1970-01-01T00:00:01Z",
        "roots": [A],
        "provenance": {},
    },
}
# Each spec's record: a BuildSpec's format part, or the whole record of another step.
RECORDS = {
    "aci": AciOutput,
    "oci-bundle": BundleOutput,
    "oci-rootfs-layer": RootfsLayerOutput,
    "oci-base-image": BaseImageSpec,
    "oci-layering": LayeringSpec,
    "oci-store-layer": StoreLayerSpec,
    "oci-layout": ImageSpec,
    "sbom": SbomSpec,
}

# (format, a key's path in the spec, what it must be, a value of another type)
KEYS = [
    ("aci", ("format",), 'one of "aci", "oci-bundle", "oci-rootfs-layer"', 3),
    ("aci", ("mode",), 'one of "fat", "thin", "static"', "fatter"),
    ("aci", ("packages",), "a list of strings", A),
    ("aci", ("roots",), "a list of strings", None),
    ("oci-rootfs-layer", ("prefer",), "a list of strings", {}),
    ("aci", ("layers",), "a list of lists of strings", A),
    ("aci", ("command",), "a string", []),
    ("aci", ("rootfs",), "an object (Rootfs)", []),
    ("aci", ("rootfs", "users"), "true or false", "yes"),
    ("oci-bundle", ("rootfs", "shellLinks"), "true or false", 1),
    ("aci", ("rootfs", "resolvConf"), "true or false", None),
    ("oci-rootfs-layer", ("rootfs", "cacert"), "a string or null", False),
    ("aci", ("rootfs", "uid"), "an integer", "1000"),
    ("oci-bundle", ("rootfs", "gid"), "an integer", True),
    ("aci", ("rootfs", "files"), "an object of File objects", []),
    ("aci", ("rootfs", "account"), "an object (Account)", "0:0"),
    ("oci-rootfs-layer", ("rootfs", "account", "group"), "a string", 0),
    ("aci", ("rootfs", "files", "/etc/motd", "text"), "a string or null", 5),
    ("oci-bundle", ("rootfs", "files", "/etc/motd", "source"), "a string or null", 5),
    ("oci-rootfs-layer", ("rootfs", "files", "/etc/motd", "directory"), "true or false", None),
    ("aci", ("rootfs", "files", "/etc/motd", "mode"), "a string or null", 416),
    ("aci", ("rootfs", "files", "/etc/motd", "uid"), "an integer", None),
    ("aci", ("image",), "an object (AciImage)", None),
    ("aci", ("sign",), "true or false", "yes"),
    ("aci", ("provenance", A, "debian", 0, "version"), "a string", 1),
    ("oci-bundle", ("provenance",), "an object of Provenance objects", []),
    ("aci", ("provenance", A, "licenses", 0, "spdxId"), "a string or null", 3),
    ("sbom", ("fileName",), "a string", 3),
    ("oci-layout", ("sbom",), "a string", None),
    ("aci", ("compression",), 'one of "gzip", "bzip2", "xz", "none"', "zstd"),
    ("aci", ("compressionLevel",), "an integer from 0 to 9 or null", 10),
    ("aci", ("image", "name"), "a string", None),
    ("aci", ("image", "version"), "a string", 1.0),
    ("aci", ("image", "exec"), "a list of strings or null", 3),
    ("aci", ("image", "env"), "an object of strings", ["A=b"]),
    ("aci", ("image", "workingDirectory"), "a string or null", 0),
    ("aci", ("image", "mounts", "data", "readOnly"), "true or false", "true"),
    ("aci", ("image", "ports", "http", "port"), "an integer", "80"),
    ("aci", ("image", "ports", "http", "socketActivated"), "true or false", 0),
    ("aci", ("image", "eventHandlers", "pre-start"), "a list of strings or null", "true"),
    ("aci", ("image", "isolators", 0, "name"), "a string", None),
    ("aci", ("image", "dependencies", 0, "size"), "an integer or null", "1"),
    ("aci", ("image", "pathWhitelist"), "a list of strings", "/bin"),
    ("oci-bundle", ("image",), "an object (BundleImage)", []),
    ("oci-bundle", ("image", "args"), "a list of strings", "/bin/sh"),
    ("oci-bundle", ("image", "readonly"), "true or false", None),
    ("oci-bundle", ("image", "user", "additionalGids"), "a list of integers", 5),
    ("oci-bundle", ("image", "mounts", "/data", "options"), "a list of strings", "ro"),
    ("oci-bundle", ("image", "hostname"), "a string or null", 7),
    ("oci-bundle", ("image", "capabilities"), "a list of strings or null", "CAP_CHOWN"),
    ("oci-rootfs-layer", ("compression",), 'one of "gzip", "zstd", "none"', "xz"),
    ("oci-rootfs-layer", ("includeStore",), "true or false", None),
    ("oci-layering", ("roots",), "a list of strings", A),
    ("oci-layering", ("maxLayers",), "an integer from 1 to 9223372036854775807", 0),
    ("oci-layering", ("baseImage",), "a string or null", []),
    ("oci-store-layer", ("paths",), "a list of strings", B),
    ("oci-store-layer", ("compression",), 'one of "gzip", "zstd", "none"', "bzip2"),
    ("oci-layout", ("image", "created"), "a string", 0),
    ("oci-layout", ("layers",), "a list of LayerInput objects", {}),
    ("oci-layout", ("layers", 0, "comment"), "a string", None),
    ("oci-layout", ("image", "tag"), "a string", 1),
    ("oci-layout", ("image", "variant"), "a string or null", 7),
    ("oci-layout", ("image", "cmd"), "a list of strings or null", "true"),
    ("oci-layout", ("image", "labels"), "an object of strings", None),
    ("oci-layout", ("sign",), "true or false", "yes"),
    ("oci-layout", ("command",), "a string", None),
]
KEY_IDS = [f"{output_format}:{json_path(path)}" for output_format, path, _, _ in KEYS]


def registration(*paths: tuple[str, list[str]]) -> str:
    """exportReferencesGraph's plain format: path, empty deriver, reference count, references."""
    return "".join(
        f"{path}\n\n{len(references)}\n" + "".join(f"{r}\n" for r in references) for path, references in paths
    )


def build_directory(tmp_path, spec: dict[str, Any] = SPECS["aci"]) -> dict[str, str]:
    """The environment of a Nix build of ``spec`` whose directory is ``tmp_path``: A needs B, C needs nothing."""
    (tmp_path / ".attr-spec").write_text(json.dumps(spec))
    (tmp_path / "closure-0").write_text(registration((A, [A, B]), (B, [])))
    (tmp_path / "closure-1").write_text(registration((C, [])))
    return {"nix2aciSpecPath": str(tmp_path / ".attr-spec"), "NIX_BUILD_TOP": str(tmp_path), "out": "/nix/store/o-out"}


def changed(output_format: str, path: tuple[str | int, ...], change) -> dict[str, Any]:
    """A copy of the spec of ``output_format`` whose value at ``path`` went through ``change(parent, last key)``."""
    spec = copy.deepcopy(SPECS[output_format])
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    change(parent, path[-1])
    return spec


def read(spec: dict[str, Any]) -> Any:
    """``spec`` read into the record its format names, as :func:`load` reads it."""
    cls = STEPS.get(spec.get("format"), BuildSpec) if isinstance(spec, dict) else BuildSpec
    closure = {"closure": Closure({})} if cls in (BuildSpec, LayeringSpec) else {}
    return cls.from_json(spec, out="/nix/store/o-out", **closure)


def message(spec: dict[str, Any]) -> str:
    """The one message reading ``spec`` gives."""
    with pytest.raises(BuildSpecError) as raised:
        read(spec)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_closures_of_every_root_are_read_and_merged(tmp_path):
    spec = load(build_directory(tmp_path))
    assert spec.out == "/nix/store/o-out" and spec.roots == (A, C)
    assert spec.closure.references == {A: (A, B), B: (), C: ()}
    assert spec.closure.paths_needed_by([A]) == [A, B]
    assert spec.closure.paths_needed_by(spec.roots) == [A, B, C]


@pytest.mark.parametrize("output_format", [name for name in SPECS if name not in STEPS])
def test_a_spec_of_each_image_tree_format_loads_into_its_records(tmp_path, output_format):
    spec = load(build_directory(tmp_path, SPECS[output_format]))
    assert spec.format == output_format and type(spec.output) is RECORDS[output_format]
    assert spec.rootfs.shell_links and spec.rootfs.account.user == "0"
    assert spec.rootfs.files == {"/etc/motd": File("hi\n", None, None, False, "0640", 0, 0)}


@pytest.mark.parametrize("output_format", [name for name in SPECS if name in STEPS])
def test_a_spec_of_each_other_step_loads_into_its_record(tmp_path, output_format):
    spec = load(build_directory(tmp_path, SPECS[output_format]))
    assert type(spec) is RECORDS[output_format] and spec.out == "/nix/store/o-out"


def test_the_layering_spec_gets_the_closure_of_its_roots(tmp_path):
    spec = load(build_directory(tmp_path, SPECS["oci-layering"]))
    assert spec.closure.paths_needed_by(spec.roots) == [A, B, C] and spec.max_layers == 100


def test_an_unknown_format_is_one_message_listing_every_format(tmp_path):
    with pytest.raises(BuildSpecError) as raised:
        load(build_directory(tmp_path, {**SPECS["aci"], "format": "tarball"}))
    assert str(raised.value) == (
        'build spec: format must be one of "aci", "oci-bundle", "oci-rootfs-layer", "oci-base-image", "oci-layering", '
        '"oci-store-layer", "oci-layout", "docker-archive", "oci-index", "sbom", got \'tarball\''
    )


def test_the_aci_part_is_read_into_typed_records(tmp_path):
    output = load(build_directory(tmp_path, SPECS["aci"])).output
    assert isinstance(output, AciOutput) and output.sign and output.compression_level is None
    image = output.image
    assert image.exec == ("/bin/sh",) and image.env == {"A": "b"} and image.working_directory is None
    assert image.mounts == {"data": Mount("/data", False)} and image.ports == {"http": Port(80, "tcp", 1, False)}
    assert image.isolators[0].value == {"limit": "1G"} and image.event_handlers.post_stop == ("/bin/true",)
    assert image.dependencies[0].image_name == "example.com/b"


@pytest.mark.parametrize(("output_format", "path", "must", "wrong"), KEYS, ids=KEY_IDS)
def test_a_missing_key_is_one_message_naming_it(output_format, path, must, wrong):
    spec = changed(output_format, path, lambda parent, last: parent.pop(last))
    assert message(spec) == f"build spec: missing key {json_path(path)}, which must be {must}"


@pytest.mark.parametrize(("output_format", "path", "must", "wrong"), KEYS, ids=KEY_IDS)
def test_an_unknown_key_is_one_message_naming_it(output_format, path, must, wrong):
    """A key beside each (as a renamed one would be) is refused, naming it and the keys allowed there."""
    spec = changed(output_format, path, lambda parent, last: parent.update(bogus=1))
    found = message(spec)
    where = json_path(path[:-1]) or "the spec"
    assert found.startswith(f"build spec: unknown key {json_path((*path[:-1], 'bogus'))}; {where} takes ")
    assert path[-1] in found.split(" takes ")[1].split(", ")


@pytest.mark.parametrize(("output_format", "path", "must", "wrong"), KEYS, ids=KEY_IDS)
def test_a_mistyped_key_is_one_message_naming_it(output_format, path, must, wrong):
    spec = changed(output_format, path, lambda parent, last: parent.__setitem__(last, wrong))
    assert message(spec) == f"build spec: {json_path(path)} must be {must}, got {wrong!r}"


@pytest.mark.parametrize(
    ("output_format", "path", "wrong", "expected"),
    [
        ("aci", ("image", "supplementaryGIDs"), [0, 1.5], "image.supplementaryGIDs[1] must be an integer, got 1.5"),
        ("aci", ("image", "userLabels"), {"a": 1}, "image.userLabels.a must be a string, got 1"),
        ("aci", ("image", "exec"), ["/bin/sh", None], "image.exec[1] must be a string, got None"),
        ("aci", ("rootfs", "files", "/etc/motd"), "hi", "rootfs.files./etc/motd must be an object (File), got 'hi'"),
        ("oci-bundle", ("image", "mounts", "/data"), [], "image.mounts./data must be an object (Mount), got []"),
        ("oci-layout", ("image", "exposedPorts"), ["80/tcp", 80], "image.exposedPorts[1] must be a string, got 80"),
        ("oci-bundle", ("layers",), [[C], A], f"layers[1] must be a list of strings, got '{A}'"),
        ("aci", ("layers",), [[C, None]], "layers[0][1] must be a string, got None"),
    ],
)
def test_a_mistyped_element_is_one_message_naming_it(output_format, path, wrong, expected):
    """An element of a list, or an entry of an object of any keys, is named by its index or key."""
    spec = changed(output_format, path, lambda parent, last: parent.__setitem__(last, wrong))
    assert message(spec) == f"build spec: {expected}"


def test_a_key_of_another_format_is_unknown():
    spec = {**SPECS["oci-bundle"], "sign": True}
    assert message(spec) == (
        "build spec: unknown key sign; the spec takes format, image, layers, mode, packages, prefer, provenance, "
        "rootfs, roots"
    )


def test_a_spec_that_is_no_object_is_one_message():
    assert message([]) == "build spec: the spec must be an object (BuildSpec), got []"


def test_the_contract_documents_every_key():
    """Each format's module docstring lists its keys with their types and meanings, nested ones indented."""
    from nix2aci.build.spec import aci, rootfs

    assert "    exec: a list of strings or null: the app's command; null: no exec\n" in aci.__doc__
    assert "    compressionLevel: an integer from 0 to 9 or null: " in aci.__doc__
    assert "        mode: a string or null: the mode, an octal string" in rootfs.__doc__


def test_a_path_outside_the_exported_closure_is_an_error():
    with pytest.raises(Nix2AciError, match=f"{C} is not in the closure Nix exported"):
        Closure.from_registrations([registration((A, []))]).paths_needed_by([C])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda environment, tmp_path: environment.pop("out"), "not a nix2aci build: 'out' is missing"),
        (lambda environment, tmp_path: (tmp_path / "closure-1").unlink(), "cannot read the build spec: .*closure-1"),
        (lambda environment, tmp_path: (tmp_path / "closure-0").write_text(f"{A}\n\nmany\n"), "cut or malformed"),
        (lambda environment, tmp_path: (tmp_path / "closure-0").write_text(f"{A}\n\n"), "cut or malformed"),
        (lambda environment, tmp_path: (tmp_path / "closure-0").write_text(f"{A}\n\n2\n{B}\n"), "cut or malformed"),
        (lambda environment, tmp_path: (tmp_path / ".attr-spec").write_text("{"), "malformed"),
        (lambda environment, tmp_path: (tmp_path / ".attr-spec").write_text("{}"), "missing key format"),
    ],
)
def test_a_broken_build_directory_is_one_clear_error(tmp_path, change, message):
    environment = build_directory(tmp_path)
    change(environment, tmp_path)
    with pytest.raises(Nix2AciError, match=message):
        load(environment)

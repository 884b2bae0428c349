"""The build spec and the closure files, as a Nix build hands them to the builder."""

from __future__ import annotations

import json

import pytest

from nix2aci.build.closure import Closure
from nix2aci.build.spec import BuildSpec
from nix2aci.errors import Nix2AciError

A = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a"
B = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"
C = "/nix/store/cccccccccccccccccccccccccccccccc-c"
SPEC = {
    "format": "aci",
    "mode": "fat",
    "packages": [A],
    "roots": [A, C],
    "prefer": [],
    "image": {"name": "a"},
    "rootfs": {},
    "command": "/nix/store/ssssssssssssssssssssssssssssssss-nix2aci-0.1.0.drv",
}


def registration(*paths: tuple[str, list[str]]) -> str:
    """exportReferencesGraph's plain format: path, empty deriver, reference count, references."""
    return "".join(
        f"{path}\n\n{len(references)}\n" + "".join(f"{r}\n" for r in references) for path, references in paths
    )


def build_directory(tmp_path):
    """The environment of a Nix build of SPEC whose directory is ``tmp_path``: A needs B, C needs nothing."""
    (tmp_path / ".attr-spec").write_text(json.dumps(SPEC))
    (tmp_path / "closure-0").write_text(registration((A, [A, B]), (B, [])))
    (tmp_path / "closure-1").write_text(registration((C, [])))
    return {"nix2aciSpecPath": str(tmp_path / ".attr-spec"), "NIX_BUILD_TOP": str(tmp_path), "out": "/nix/store/o-out"}


def test_closures_of_every_root_are_read_and_merged(tmp_path):
    spec = BuildSpec.load(build_directory(tmp_path))
    assert spec.out == "/nix/store/o-out" and spec.roots == (A, C) and spec.compression == "gzip"
    assert spec.closure.references == {A: (A, B), B: (), C: ()}
    assert spec.closure.paths_needed_by([A]) == [A, B]
    assert spec.closure.paths_needed_by(spec.roots) == [A, B, C]


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
        (lambda environment, tmp_path: (tmp_path / ".attr-spec").write_text("{}"), "'roots' is missing"),
    ],
)
def test_a_broken_build_directory_is_one_clear_error(tmp_path, change, message):
    environment = build_directory(tmp_path)
    change(environment, tmp_path)
    with pytest.raises(Nix2AciError, match=message):
        BuildSpec.load(environment)

"""The layering strategy (nix2aci.oci.layering): which store paths get a layer of their own, and in which order."""

from __future__ import annotations

import pytest

from nix2aci.build.closure import Closure
from nix2aci.build.spec import LayeringSpec
from nix2aci.errors import Nix2AciError
from nix2aci.oci import layering

STORE = "/nix/store/"


def path(name: str, letter: str) -> str:
    """A store path named ``name`` whose hash is ``letter`` repeated: hashes that sort apart from the names."""
    return f"{STORE}{letter * 32}-{name}"


APP = path("app", "a")
GLIBC = path("glibc", "b")
PYTHON = path("python", "c")
ZLIB = path("zlib", "d")
TZDATA = path("tzdata", "e")
# app needs python and glibc, python needs zlib, glibc and tzdata, zlib needs glibc.
CLOSURE = Closure(
    {
        APP: (GLIBC, PYTHON),
        PYTHON: (GLIBC, TZDATA, ZLIB),
        ZLIB: (GLIBC,),
        GLIBC: (),
        TZDATA: (),
    }
)
PATHS = sorted(CLOSURE.references)
SIZES = {APP: 10, GLIBC: 30_000, PYTHON: 40_000, ZLIB: 200, TZDATA: 5_000}


def groups(store_layers: int, first=(APP,), sizes=SIZES) -> list[list[str]]:
    return layering.groups(PATHS, first, sizes, layering.dependents(CLOSURE, PATHS), store_layers)


def test_dependents_count_the_paths_that_need_each_path():
    assert layering.dependents(CLOSURE, PATHS) == {GLIBC: 4, ZLIB: 3, PYTHON: 2, TZDATA: 3, APP: 1}


def test_with_room_every_path_has_a_layer_the_most_needed_lowest_and_the_images_own_last():
    assert groups(10) == [[GLIBC], [TZDATA], [ZLIB], [PYTHON], [APP]]
    assert groups(5) == groups(10)


def test_without_room_the_images_own_paths_and_the_largest_get_layers_and_the_smallest_share_one():
    # 4 store layers: app (the image's own), python and glibc (the largest) alone; zlib and tzdata together.
    assert groups(4) == [[GLIBC], [PYTHON], sorted([ZLIB, TZDATA]), [APP]]
    # 2: the app alone, everything else shared.
    assert groups(2) == [sorted([GLIBC, PYTHON, TZDATA, ZLIB]), [APP]]


def test_one_store_layer_holds_the_whole_closure():
    assert groups(1) == [PATHS]


def test_the_largest_paths_get_the_layers_the_smallest_share_one():
    """Ranking goes by size: tzdata grown past python and glibc takes a layer of its own, glibc goes to share."""
    grown = {**SIZES, TZDATA: 50_000}
    assert groups(4, sizes=grown) == [[TZDATA], [PYTHON], sorted([GLIBC, ZLIB]), [APP]]


def test_own_paths_nothing_else_needs_come_first_when_they_do_not_all_fit():
    """The image lists python, zlib and app (which needs python): with room for two own paths alone, app
    (needed by nothing else) keeps its layer although python and zlib are larger."""
    sizes = {**SIZES, ZLIB: 20_000}
    assert groups(3, first=(PYTHON, ZLIB, APP), sizes=sizes) == [sorted([GLIBC, TZDATA, ZLIB]), [PYTHON], [APP]]


def test_without_own_paths_the_largest_come_first():
    assert groups(3, first=()) == [[GLIBC], [PYTHON], sorted([APP, TZDATA, ZLIB])]


def test_every_path_is_in_exactly_one_group_whatever_the_room():
    for store_layers in range(1, 8):
        found = [member for group in groups(store_layers) for member in group]
        assert sorted(found) == PATHS and len(groups(store_layers)) <= store_layers


def test_tree_size_counts_files_and_links_without_following_them(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 10)
    (tmp_path / "link").symlink_to("/" + "z" * 99)  # a link's size is its target's length: 100
    counted = layering.tree_size(str(tmp_path))
    directories = tmp_path.lstat().st_size + (tmp_path / "d").lstat().st_size
    assert counted == 1000 + 10 + 100 + directories


def test_one_layer_without_a_base_image_holds_the_closure_in_the_last_layer(tmp_path):
    spec = LayeringSpec("oci-layering", (APP,), (APP,), 1, None, CLOSURE, str(tmp_path / "out"))
    assert layering.build(spec) == {"groups": [], "storeInRootfs": True}


@pytest.mark.parametrize("max_layers", [2, 3])
def test_a_base_image_with_as_many_layers_as_max_layers_leaves_none(tmp_path, monkeypatch, max_layers):
    """maxLayers counts fromImage's layers: with no layer left for the image's own files, one line says so."""
    monkeypatch.setattr(layering.base, "layer_count", lambda path: max_layers)
    base = str(tmp_path / "base")
    spec = LayeringSpec("oci-layering", (APP,), (APP,), max_layers, base, CLOSURE, str(tmp_path / "out"))
    with pytest.raises(Nix2AciError) as raised:
        layering.build(spec)
    assert str(raised.value) == (
        f"maxLayers = {max_layers} leaves no layer for the image's own files: fromImage has {max_layers} layers, "
        f"which count against maxLayers; give maxLayers = {max_layers + 1} or more"
    )
    assert not (tmp_path / "out").exists()

"""Layers as data: the store layers partition the closure as the spec's ``layers`` say, and merging the
layers gives exactly the single stream that one layer of the whole closure gives (nix2aci.build.tree)."""

from __future__ import annotations

import io
import os
import tarfile

import attrs
import pytest

from nix2aci.archive.compression import NONE
from nix2aci.archive.write import write_archive
from nix2aci.build import plan, tree
from nix2aci.build.closure import Closure
from nix2aci.build.spec import BuildSpec, BuildSpecError
from nix2aci.build.spec.rootfs import Rootfs

ROOTFS = {
    "users": True,
    "hosts": True,
    "tmp": True,
    "shellLinks": True,
    "resolvConf": False,
    "cacert": None,
    "uid": 1000,
    "gid": 1000,
    "files": {
        "/etc/motd": {
            "text": "hi\n",
            "source": None,
            "symlink": None,
            "directory": False,
            "mode": None,
            "uid": 0,
            "gid": 0,
        }
    },
    "account": {"user": "0", "group": "0"},
}


def store_path(root, name: str, files: dict[str, str]) -> str:
    """A fake store path ``root/name``: ``files`` maps relative paths to contents."""
    path = root / name
    for relative, content in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(content)
    return str(path)


@pytest.fixture
def spec(tmp_path) -> BuildSpec:
    """A fat spec of one package ``app`` that needs ``lib``, and a root ``data`` that needs nothing; store paths
    named as Nix names them (a hash of 32 characters), with names that sort between a directory and its
    contents (``lib``, ``lib-x``, ``lib/``)."""
    store = tmp_path / "nix" / "store"
    app = store_path(store, "2" * 32 + "-app", {"bin/app": "app", "share/doc/app": "doc"})
    lib = store_path(store, "1" * 32 + "-lib", {"lib/libl.so": "l", "lib-x/y": "y"})
    data = store_path(store, "3" * 32 + "-data", {"d": "d"})
    closure = Closure({app: (lib,), lib: (), data: ()})
    return BuildSpec(
        format="aci",
        mode="fat",
        packages=(app,),
        roots=(app, data),
        prefer=(),
        layers=(),
        rootfs=Rootfs.from_json(ROOTFS),
        output=None,
        closure=closure,
        out=str(tmp_path / "out"),
    )


def closure_of(spec: BuildSpec) -> list[str]:
    """The store paths the image of ``spec`` holds, sorted."""
    return spec.closure.paths_needed_by(spec.roots)


def named(spec: BuildSpec, *ends: str) -> list[str]:
    """The store paths of ``spec``'s closure whose names end with ``ends``, in that order."""
    return [next(path for path in closure_of(spec) if path.endswith(end)) for end in ends]


def test_no_layers_is_one_store_layer_of_the_whole_closure(spec):
    image = tree.image_tree(spec)
    assert [layer.paths for layer in image.layers] == [tuple(closure_of(spec))]
    assert image.final.paths == ()


def test_the_spec_layers_come_first_and_the_rest_of_the_closure_makes_one_more(spec):
    app, lib, data = named(spec, "-app", "-lib", "-data")
    image = tree.image_tree(attrs.evolve(spec, layers=((data,), (app, lib))))
    assert [layer.paths for layer in image.layers] == [(data,), (lib, app)]  # each sorted
    image = tree.image_tree(attrs.evolve(spec, layers=((lib,),)))
    assert [layer.paths for layer in image.layers] == [(lib,), (app, data)]
    paths = [path for layer in image.layers for path in layer.paths]
    assert sorted(paths) == closure_of(spec)


def test_a_store_layer_holds_its_paths_and_the_store_directories_they_lie_in(spec):
    (lib,) = named(spec, "-lib")
    (layer, _) = tree.image_tree(attrs.evolve(spec, layers=((lib,),))).layers
    paths = [entry.path for entry in layer.entries()]
    prefix = lib.lstrip("/")
    inside = ["lib", "lib-x", "lib-x/y", "lib/libl.so"]
    # The directories above the path (nix and nix/store in Nix's store; this test's store lies in tmp_path).
    parts = prefix.split("/")
    above = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
    assert above[-2:] == [prefix.rsplit("/", 2)[0], prefix.rsplit("/", 1)[0]] and above[-1].endswith("nix/store")
    assert paths == [*above, prefix, *(f"{prefix}/{name}" for name in inside)]
    # Generated anew at each call: a writer may read a layer more than once.
    assert [entry.path for entry in layer.entries()] == paths


@pytest.mark.parametrize("grouping", ["one", "per path", "two, unsorted"])
def test_merging_the_layers_gives_the_single_stream_entry_for_entry(spec, grouping):
    closure = closure_of(spec)
    layers = {"one": (), "per path": tuple((path,) for path in closure), "two, unsorted": ((closure[2], closure[0]),)}
    image = tree.image_tree(attrs.evolve(spec, layers=layers[grouping]))
    # The single stream as it was made before layers: the final part merged with the closure's copies.
    single = list(plan.merged(image.final.entries(), plan.store_copies(closure)))
    merged = list(image.merged())
    assert merged == single
    assert [entry.path for entry in merged] == sorted({entry.path for entry in merged}, key=os.fsencode)


def test_two_layers_written_apart_hold_what_the_merged_archive_holds(spec, tmp_path):
    """What a layered format does with the data: one archive per layer (issue 15 writes them as OCI layers)."""
    (lib,) = named(spec, "-lib")
    image = tree.image_tree(attrs.evolve(spec, layers=((lib,),)))
    names = []
    for layer in (*image.layers, image.final):
        output = io.BytesIO()
        write_archive((entry for entry in layer.entries() if entry.path), output, compression=NONE)
        with tarfile.open(fileobj=io.BytesIO(output.getvalue())) as archive:
            names.append(archive.getnames())
    assert lib.lstrip("/") + "/lib/libl.so" in names[0] and not any("-app" in name for name in names[0])
    assert "etc/motd" in names[2]
    assert sorted({name for layer in names for name in layer}) == sorted(
        entry.path for entry in image.merged() if entry.path
    )


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (lambda app, lib: ((app,), ()), "layers[1] is empty; a layer holds at least one store path"),
        (lambda app, lib: ((app, "/nix/store/x-other"),), "layers[0] holds /nix/store/x-other, which is not in"),
        (lambda app, lib: ((app, lib), (lib,)), "layers[1] holds {lib}, as layers[0] does; a path has one layer"),
        (lambda app, lib: ((app, app),), "layers[0] holds {app}, as layers[0] does; a path has one layer"),
    ],
    ids=["empty", "outside the closure", "in two layers", "twice in one"],
)
def test_layers_that_do_not_partition_the_closure_are_one_message_naming_the_key(spec, layers, expected):
    app, lib = named(spec, "-app", "-lib")
    with pytest.raises(BuildSpecError) as raised:
        tree.image_tree(attrs.evolve(spec, layers=layers(app, lib)))
    message = str(raised.value)
    assert message.startswith("build spec: " + expected.format(app=app, lib=lib))
    assert raised.value.key in message and "\n" not in message


def test_a_thin_image_has_no_store_layer_and_mounts_each_path(spec):
    image = tree.image_tree(attrs.evolve(spec, mode="thin"))
    assert image.layers == ()
    final = {entry.path: entry for entry in image.final.entries()}
    assert all(final[path.lstrip("/")].mode == 0o555 for path in closure_of(spec))


def test_a_static_image_is_one_layer_at_the_root(spec, tmp_path):
    (data,) = named(spec, "-data")
    image = tree.image_tree(attrs.evolve(spec, mode="static", packages=(data,), roots=(data,)))
    (layer,) = image.layers
    assert layer.paths == (data,) and [entry.path for entry in layer.entries()] == ["", "d"]
    assert "d" in [entry.path for entry in image.merged()]


def test_the_store_directories_are_those_above_the_paths_in_plan_order():
    default = ["/nix/store/" + "1" * 32 + "-a", "/nix/store/" + "2" * 32 + "-b"]
    assert [entry.path for entry in plan.store_directories(default)] == ["nix", "nix/store"]
    elsewhere = ["/var/lib/nix-store/" + "3" * 32 + "-c", "/nix/store/" + "1" * 32 + "-a"]
    assert [entry.path for entry in plan.store_directories(elsewhere)] == [
        "nix", "nix/store", "var", "var/lib", "var/lib/nix-store"
    ]  # fmt: skip
    assert all(entry.kind is plan.Kind.DIRECTORY for entry in plan.store_directories(elsewhere))

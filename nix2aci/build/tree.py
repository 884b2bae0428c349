"""An image's file tree from its build spec, as layers: the layout of its mode, then the rootfs basics.

Input: a :class:`~nix2aci.build.spec.BuildSpec`. Output: a :class:`Tree`, its
layers as data: store layers (groups of store paths, each layer their copies and
the /nix/store directories they lie in) and a final layer holding the profile, the
rootfs basics, the user's files and the directories the format needs. A
single-archive format writes :meth:`Tree.merged`, all layers as one stream in plan
order (see :mod:`nix2aci.build.plan`); a layered one can write each layer apart.
The store's files are generated while they are written; only the final layer
(what nix2aci makes itself) is held in memory.

Which store paths share a layer is decided by Nix (the spec's ``layers``), not
here: a layer that is to be its own derivation, cached by Nix so that a rebuild
packs only what changed, must be known when Nix evaluates. This module only
checks the groups against the closure, adds the closure's other paths as one
more layer, and materialises them.
"""

from __future__ import annotations

import itertools
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import attrs

from ..errors import Nix2AciError, SpecError
from . import basics, plan
from .spec import BuildSpec, BuildSpecError

T = TypeVar("T")


@attrs.frozen
class Layer:
    """One layer of an image's tree.

    ``name`` says what it holds (its store path's name, or how many it holds; ``rootfs`` for the final
    layer); ``paths``: the store paths it copies, sorted (none for the final layer); ``entries()``: its
    entries in plan order, generated anew at each call, so a store layer's files are walked while written.
    """

    name: str
    paths: tuple[str, ...]
    entries: Callable[[], Iterator[plan.Entry]]


@attrs.frozen
class Tree:
    """An image's file tree: ``layers``, the store layers in the spec's order, and ``final``, the layer of what
    nix2aci makes (the root, the profile, the rootfs basics, the user's files, the format's directories)."""

    layers: tuple[Layer, ...]
    final: Layer

    def merged(self) -> Iterator[plan.Entry]:
        """All layers' entries as one stream in plan order, each path once (the /nix/store directories that
        several layers hold, once): what a single-archive format writes. A streaming k-way merge."""
        return plan.merged(self.final.entries(), *(layer.entries() for layer in self.layers))


def image_tree(
    spec: BuildSpec,
    directories: Mapping[str, str] | None = None,
    mount_points: Mapping[str, str] | None = None,
    collapse: bool = True,
) -> Tree:
    """The image's file tree for the build mode, as layers.

    fat: the packages' whole closure under /nix/store, in the store layers of :func:`store_groups`,
    plus their merged profile at /.
    thin: no store layer; each store path an empty mount point for the host's copy.
    static: the one package's tree as the whole root, one layer; it must reference no other path.
    Then the rootfs basics (:mod:`nix2aci.build.basics`) fill what the packages left out,
    and ``directories`` ({absolute path: the argument that names it}: what the
    format needs to be directories in the image, such as mount points) are made
    where nothing is planned. ``mount_points`` (the same shape) are checked only:
    each must lie in directories of the image, where the runtime can make it.
    ``collapse``: a profile directory that mirrors one package's is one symlink to it
    (else a directory of links, which merges with a lower layer's directory).
    Raises SpecError naming the argument of a path below a file or a symlink,
    BuildSpecError naming ``layers[i]`` for a group that does not fit the closure.
    """
    directories, mount_points = directories or {}, mount_points or {}
    for package in spec.packages:
        if not os.path.isdir(package):
            raise Nix2AciError(
                f"packages: {package} is not a directory; packages are merged into the image's root, "
                "so each must be a directory (put a single file in with files.<path>.source)"
            )
    if spec.mode == "static":
        layer = _static_layer(spec)
        return _finished(spec, [], None, {"": layer.paths[0]}, (layer,), directories, mount_points, collapse)
    closure = spec.closure.paths_needed_by(spec.roots)
    groups = store_groups(spec.layers, closure)
    profile = plan.Profile(spec.packages, spec.prefer)
    planned = [plan.directory(""), *plan.store_directories(closure)]
    if spec.mode == "thin":
        thin = [*planned, *plan.mount_points(closure)]
        return _finished(spec, thin, profile, {}, (), directories, mount_points, collapse)
    copies = {path.lstrip("/"): path for path in closure}
    layers = tuple(store_layer(group) for group in groups)
    return _finished(spec, planned, profile, copies, layers, directories, mount_points, collapse)


def _static_layer(spec: BuildSpec) -> Layer:
    """The one layer of a static image: its one package's tree as the image's root.
    Raises Nix2AciError when the package references another store path, which the image would lack."""
    (package,) = spec.packages
    others = [path for path in spec.closure.paths_needed_by([package]) if path != package]
    if others:
        raise Nix2AciError(
            f"static = true needs a self-contained package, but {package} references {', '.join(others)}; "
            "build a fat image instead (the default)"
        )
    store_groups(spec.layers, [package])
    return Layer(os.path.basename(package), (package,), lambda: plan.copy_tree(package, ""))


def store_groups(layers: Sequence[Sequence[str]], closure: Sequence[str]) -> list[tuple[str, ...]]:
    """The store paths of each store layer: each group of ``layers`` (the spec's), sorted, then the other
    paths of ``closure`` (sorted) as one more group when there are any; so the groups partition the closure,
    and no ``layers`` gives one group of the whole closure.

    Checked, naming ``layers[i]`` in a BuildSpecError: a group is not empty, and each of its paths is in the
    closure and in no other group. A group need not be closed under references: the image's closure is the
    union of the layers, and a layer is a set of paths, not a self-contained image.
    """
    inside = set(closure)
    placed: dict[str, int] = {}
    for index, group in enumerate(layers):
        name = f"layers[{index}]"
        if not group:
            raise BuildSpecError(name, f"{name} is empty; a layer holds at least one store path")
        for path in group:
            if path not in inside:
                raise BuildSpecError(name, f"{name} holds {path}, which is not in the image's closure")
            if path in placed:
                raise BuildSpecError(name, f"{name} holds {path}, as layers[{placed[path]}] does; a path has one layer")
            placed[path] = index
    rest = tuple(path for path in closure if path not in placed)
    return [tuple(sorted(group)) for group in layers] + ([rest] if rest else [])


def store_layer(paths: tuple[str, ...]) -> Layer:
    """The layer of the sorted store ``paths``: their copies, and the directories they lie in (``nix/store``)."""
    name = os.path.basename(paths[0]) if len(paths) == 1 else f"{len(paths)} store paths"
    return Layer(name, paths, lambda: itertools.chain(plan.store_directories(paths), plan.store_copies(paths)))


def _finished(
    spec: BuildSpec,
    planned: list[plan.Entry],
    profile: plan.Profile | None,
    copies: dict[str, str],
    layers: tuple[Layer, ...],
    directories: Mapping[str, str],
    mount_points: Mapping[str, str],
    collapse: bool,
) -> Tree:
    """The tree of ``layers`` (which copy the host trees of ``copies``, {image path: host path}) and a final
    layer: ``planned`` and ``profile``, the rootfs basics and the user's files of ``spec``, a directory at
    each absolute path of ``directories`` and its parents where nothing is, with (if ``collapse``) the profile's
    single-package directories collapsed into symlinks. The paths of ``mount_points`` are only checked to
    lie in directories."""
    lookup = plan.Planned(planned, profile, copies)
    extra = list(basics.entries(spec.rootfs, lookup))
    for path, argument in directories.items():
        extra += _placed(argument, path, lookup.make_directory)
    for path, argument in mount_points.items():
        _placed(argument, path, lookup.missing_parents)
    if profile is None:
        final = plan.sorted_plan([*planned, *extra])
    else:
        # What goes into a package's directory opens it: the package's own files stay.
        for entry in [*planned, *extra]:
            profile.reveal(entry.path)
        final = plan.sorted_plan([*planned, *profile.entries.values(), *extra])
        if collapse:
            final = plan.collapse(final)
    return Tree(layers, Layer("rootfs", (), lambda: iter(final)))


def _placed(argument: str, path: str, place: Callable[[str], list[T]]) -> list[T]:
    """``place`` (a method of :class:`plan.Planned`) of the absolute ``path`` given as ``argument``;
    SpecError naming the argument where the path lies below a file or a symlink of the image."""
    try:
        return place(posixpath.normpath(path).lstrip("/"))
    except plan.NotADirectory as error:
        raise SpecError(argument, error.below(path)) from None

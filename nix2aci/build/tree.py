"""An image's file tree from its build spec: the layout of its mode, then the rootfs basics.

Input: a :class:`~nix2aci.build.spec.BuildSpec`. Output: the image's entries in plan
order (see :mod:`nix2aci.build.plan`), which every output format writes in its own
way. The store's files are generated while they are written; only the profile,
the basics and the directories nix2aci makes are held in memory.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from ..errors import Nix2AciError, SpecError
from . import basics, plan
from .spec import BuildSpec

T = TypeVar("T")


def image_tree(
    spec: BuildSpec, directories: Mapping[str, str] | None = None, mount_points: Mapping[str, str] | None = None
) -> Iterator[plan.Entry]:
    """The image's file tree for the build mode, in plan order.

    fat: the packages' whole closure under /nix/store plus their merged profile at /.
    thin: the same, but each store path an empty mount point for the host's copy.
    static: the one package's tree as the whole root; it must reference no other path.
    Then the rootfs basics (:mod:`nix2aci.build.basics`) fill what the packages left out,
    and ``directories`` ({absolute path: the argument that names it}: what the
    format needs to be directories in the image, such as mount points) are made
    where nothing is planned. ``mount_points`` (the same shape) are checked only:
    each must lie in directories of the image, where the runtime can make it.
    Raises SpecError naming the argument of a path below a file or a symlink.
    """
    directories, mount_points = directories or {}, mount_points or {}
    for package in spec.packages:
        if not os.path.isdir(package):
            raise Nix2AciError(
                f"packages: {package} is not a directory; packages are merged into the image's root, "
                "so each must be a directory (put a single file in with files.<path>.source)"
            )
    if spec.mode == "static":
        (package,) = spec.packages
        others = [path for path in spec.closure.paths_needed_by([package]) if path != package]
        if others:
            raise Nix2AciError(
                f"static = true needs a self-contained package, but {package} references {', '.join(others)}; "
                "build a fat image instead (the default)"
            )
        return _finished(spec, [], None, {"": package}, plan.copy_tree(package, ""), directories, mount_points)
    closure = spec.closure.paths_needed_by(spec.roots)
    profile = plan.Profile(spec.packages, spec.prefer)
    planned = [plan.directory(""), *plan.STORE_DIRECTORIES]
    if spec.mode == "thin":
        return _finished(spec, [*planned, *plan.mount_points(closure)], profile, {}, (), directories, mount_points)
    copies = {path.lstrip("/"): path for path in closure}
    return _finished(spec, planned, profile, copies, plan.store_copies(closure), directories, mount_points)


def _finished(
    spec: BuildSpec,
    planned: list[plan.Entry],
    profile: plan.Profile | None,
    copies: dict[str, str],
    copied: Iterable[plan.Entry],
    directories: Mapping[str, str],
    mount_points: Mapping[str, str],
) -> Iterator[plan.Entry]:
    """The image's entries in plan order: ``planned`` and ``profile``, the rootfs basics and the
    user's files of ``spec``, a directory at each absolute path of ``directories`` and its parents
    where nothing is, with the profile's single-package directories collapsed into symlinks,
    merged with ``copied``, the host trees of ``copies`` ({image path: host path}) in plan order.
    The paths of ``mount_points`` are only checked to lie in directories."""
    lookup = plan.Planned(planned, profile, copies)
    extra = list(basics.entries(spec.rootfs, lookup))
    for path, argument in directories.items():
        extra += _placed(argument, path, lookup.make_directory)
    for path, argument in mount_points.items():
        _placed(argument, path, lookup.missing_parents)
    if profile is None:
        return plan.merged(plan.sorted_plan([*planned, *extra]), copied)
    # What goes into a package's directory opens it: the package's own files stay.
    for entry in [*planned, *extra]:
        profile.reveal(entry.path)
    return plan.merged(plan.collapse(plan.sorted_plan([*planned, *profile.entries.values(), *extra])), copied)


def _placed(argument: str, path: str, place: Callable[[str], list[T]]) -> list[T]:
    """``place`` (a method of :class:`plan.Planned`) of the absolute ``path`` given as ``argument``;
    SpecError naming the argument where the path lies below a file or a symlink of the image."""
    try:
        return place(posixpath.normpath(path).lstrip("/"))
    except plan.NotADirectory as error:
        raise SpecError(argument, error.below(path)) from None

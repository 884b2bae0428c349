"""An image's file tree from its build spec: the layout of its mode, then the rootfs basics.

Input: a :class:`~nix2aci.spec.BuildSpec`. Output: a sorted plan (see
:mod:`nix2aci.plan`) that every output format writes in its own way.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from . import basics, plan
from .errors import Nix2AciError
from .spec import BuildSpec


class _Planned(dict):
    """The plan so far, {path: entry}, where the basics and the format look for what is there.

    Asking whether a path is planned first opens the profile's unopened
    directories on the way to it (:meth:`nix2aci.plan.Profile.reveal`), so a
    package's file is never taken for missing.
    """

    def __init__(self, tree: list[plan.Entry], profile: plan.Profile | None) -> None:
        super().__init__((entry.path, entry) for entry in tree)
        self.profile = profile

    def __contains__(self, path: object) -> bool:
        if self.profile is None or not isinstance(path, str):
            return super().__contains__(path)
        self.profile.reveal(path)
        if not super().__contains__(path) and path in self.profile.entries:
            self[path] = self.profile.entries[path]
        return super().__contains__(path)


def finished(
    spec: BuildSpec, tree: list[plan.Entry], profile: plan.Profile | None, directories: Iterable[str]
) -> list[plan.Entry]:
    """``tree`` and ``profile`` with the rootfs basics and the user's files of ``spec``, a directory
    at each absolute path of ``directories`` and its parents where nothing is planned, then sorted,
    with the profile's single-package directories collapsed into symlinks."""
    planned = _Planned(tree, profile)
    extra = [*basics.entries(spec.rootfs, planned)]
    for path in directories:
        relative = posixpath.normpath(path).lstrip("/")
        while relative and relative not in planned:
            planned[relative] = plan.directory(relative)
            extra.append(planned[relative])
            relative = posixpath.dirname(relative)
    if profile is None:
        return plan.sorted_plan([*tree, *extra])
    # What goes into a package's directory opens it: the package's own files stay.
    for entry in extra:
        profile.reveal(entry.path)
    return plan.collapse(plan.sorted_plan([*tree, *profile.entries.values(), *extra]))


def image_tree(spec: BuildSpec, directories: Iterable[str] = ()) -> list[plan.Entry]:
    """The image's file tree for the build mode.

    fat: the packages' whole closure under /nix/store plus their merged profile at /.
    thin: the same, but each store path an empty mount point for the host's copy.
    static: the one package's tree as the whole root; it must reference no other path.
    Then the rootfs basics (:mod:`nix2aci.basics`) fill what the packages left out,
    and ``directories`` (absolute paths the format needs to be directories in the
    image, such as mount points) are made where nothing is planned.
    """
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
        return finished(spec, list(plan.copy_tree(package, "")), None, directories)
    if spec.mode in ("fat", "thin"):
        closure = spec.closure.paths_needed_by(spec.roots)
        return finished(
            spec,
            [plan.directory(""), *plan.store_paths(closure, copy=spec.mode == "fat")],
            plan.Profile(spec.packages, spec.prefer),
            directories,
        )
    raise Nix2AciError(f"unknown build mode {spec.mode!r}: nix2aci builds fat, thin and static images")

"""Which store paths of an image get a layer of their own: the layering strategy.

Input: a :class:`~nix2aci.build.spec.LayeringSpec` (the image's closure, its own
store paths, ``maxLayers`` and the base image). Output: ``$out/layering.json``,
``{"groups": [[store path, ...], ...], "storeInRootfs": bool}``, which Nix reads while
it evaluates (nix/oci-image.nix) to make one layer derivation per group: a group's
layer is built once and shared by every image that holds the same group.

The strategy, with ``n`` own layers (``maxLayers`` less the base image's layers):

- ``n = 1``: one layer, the closure with the profile and basics (``storeInRootfs``);
- ``n >= 2``: the last layer holds the profile, the basics and the user's files,
  and the closure fills the other ``n - 1``: when it has that many paths or fewer,
  one layer each; else the ``n - 2`` paths ranked first get one each and the rest
  share one layer. Ranked first are the image's own paths (its packages and what its
  command names: what changes from one build to the next), those fewest others need
  first (the application, which needs its libraries, before them), then the largest.
  So the shared layer holds the smallest paths, whatever the closure, and a change of
  the application rebuilds its own small layer, never a catch-all of the rest, even
  when the image lists more packages than there are layers for them.

The layers are ordered bottom first by how many paths of the closure need them (the
most needed, glibc, lowest), the shared layer above those, the image's own paths
last: engines cache a layer under the layers beneath it (Docker's chain ids), so
what changes least goes lowest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from ..build.closure import Closure
from ..build.spec import LayeringSpec
from ..errors import Nix2AciError
from . import base

RESULT = "layering.json"


def tree_size(path: str) -> int:
    """The bytes of the files and links under ``path`` (itself included; links not followed)."""
    total = os.lstat(path).st_size
    for directory, names, files in os.walk(path):
        for name in names + files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def dependents(closure: Closure, paths: Sequence[str]) -> dict[str, int]:
    """{path: how many of ``paths`` need it (itself included)}, over ``closure``'s references."""
    counts = dict.fromkeys(paths, 0)
    for path in paths:
        for needed in closure.paths_needed_by([path]):
            counts[needed] += 1
    return counts


def store_name(path: str) -> str:
    """A store path's name without its hash (``glibc-2.36``), what a tie is broken by before the hash."""
    return os.path.basename(path).partition("-")[2]


def groups(
    paths: Sequence[str],
    first: Sequence[str],
    sizes: Mapping[str, int],
    needed_by: Mapping[str, int],
    store_layers: int,
) -> list[list[str]]:
    """The closure ``paths`` in at most ``store_layers`` (>= 1) groups, bottom first, as the module says."""
    own = set(first)
    ranked = sorted(
        paths,
        key=lambda path: (path not in own, needed_by[path] if path in own else 0, -sizes[path], store_name(path), path),
    )
    if len(paths) <= store_layers:
        alone, shared = ranked, []
    else:
        alone, shared = ranked[: store_layers - 1], sorted(ranked[store_layers - 1 :])
    order = sorted(alone, key=lambda path: (path in own, -needed_by[path], store_name(path), path))
    below = [[path] for path in order if path not in own]
    mine = [[path] for path in order if path in own]
    return below + ([shared] if shared else []) + mine


def build(spec: LayeringSpec) -> dict:
    """Decide the groups of ``spec`` and write them to ``$out/layering.json``; return what was written.

    Raises Nix2AciError when the base image leaves no layer of maxLayers to the image's own.
    """
    inherited = base.layer_count(spec.base_image) if spec.base_image else 0
    own = spec.max_layers - inherited
    if own < 1:
        raise Nix2AciError(
            f"maxLayers = {spec.max_layers} leaves no layer for the image's own files: fromImage has {inherited} "
            f"layers, which count against maxLayers; give maxLayers = {inherited + 1} or more"
        )
    if own == 1:
        result: dict = {"groups": [], "storeInRootfs": True}
    else:
        paths = spec.closure.paths_needed_by(spec.roots)
        sizes = {path: tree_size(path) for path in paths}
        result = {
            "groups": groups(paths, spec.first, sizes, dependents(spec.closure, paths), own - 1),
            "storeInRootfs": False,
        }
    os.makedirs(spec.out)
    with open(os.path.join(spec.out, RESULT), "x", encoding="utf-8") as file:
        json.dump(result, file, indent=1)
    return result

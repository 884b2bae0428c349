"""Building the ACI output format: a plan and the image arguments -> ``NAME-VERSION-OS-ARCH.aci``.

Runs inside the Nix build sandbox (standard library, attrs, jsonschema only).
Input: a :class:`~nix2aci.build.spec.BuildSpec` of format ``aci``.
Output, in ``spec.out``: the image, and ``<image>.id`` holding its image ID
(``sha512-`` and the hex sha512 of the uncompressed tar, appc's definition).
The manifest is validated by :class:`nix2aci.appc.ImageManifest` before anything
is written, and the archive rules by :class:`nix2aci.aci.members.ArchiveRules`.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
from typing import Any

import attrs

from ..appc import ImageManifest
from ..archive.write import ArchiveSummary, write_archive
from ..build import basics, plan, postprocess_script, tree
from ..build.spec import BuildSpec
from ..errors import SpecError
from .members import COMPRESSIONS, ArchiveRules

# Labels nix2aci always sets from their own arguments.
ARGUMENT_LABELS = ("version", "os", "arch")
# The mount point of the host's /etc/resolv.conf (resolvConf = true).
RESOLV_CONF_MOUNT = "resolv-conf"


@attrs.frozen
class AciResult:
    """What building an ACI wrote and measured."""

    path: str
    image_id: str
    archive: ArchiveSummary


def _name_value_list(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """``{k: v}`` -> ``[{"name": k, "value": v}]``, sorted by name for stable output."""
    return [{"name": name, "value": mapping[name]} for name in sorted(mapping)]


def _labels(image: dict[str, Any]) -> list[dict[str, str]]:
    """The manifest labels: version, os and arch from their arguments, then the user's."""
    for name in ARGUMENT_LABELS:
        if name in image["labels"]:
            raise SpecError(f"labels.{name}", f"is set by the `{name}` argument; remove it from labels")
    return [{"name": name, "value": image[name]} for name in ARGUMENT_LABELS] + _name_value_list(image["labels"])


def _app(image: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``app`` object from the image arguments; empty values are left out."""
    app: dict[str, Any] = {}
    if image["exec"] is not None:
        app["exec"] = image["exec"]
    app["user"], app["group"] = image["user"], image["group"]
    optional = {
        "supplementaryGIDs": image["supplementaryGIDs"],
        "eventHandlers": [
            {"name": name, "exec": argv} for name, argv in sorted(image["eventHandlers"].items()) if argv is not None
        ],
        "workingDirectory": image["workingDirectory"],
        "environment": _name_value_list(image["env"]),
        "isolators": image["isolators"],
        "mountPoints": [{"name": name, **image["mounts"][name]} for name in sorted(image["mounts"])],
        "ports": [{"name": name, **image["ports"][name]} for name in sorted(image["ports"])],
        "userAnnotations": image["userAnnotations"],
        "userLabels": image["userLabels"],
    }
    app.update({key: value for key, value in optional.items() if value})
    return app


def manifest_document(image: dict[str, Any], host_mounts: dict[str, str]) -> dict[str, Any]:
    """The ImageManifest JSON for the image arguments of a build spec (not yet validated).

    ``host_mounts`` ({path: mount name}, the same path on the host and in the
    image) become read-only mount points after the user's own.
    """
    app = _app(image)
    mount_points = app.get("mountPoints", []) + [
        {"name": name, "path": path, "readOnly": True} for path, name in host_mounts.items()
    ]
    if mount_points:
        app["mountPoints"] = mount_points
    document: dict[str, Any] = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": image["name"],
        "labels": _labels(image),
        "app": app,
    }
    dependencies = [
        {
            **{key: value for key, value in dependency.items() if key != "labels" and value is not None},
            **({"labels": _name_value_list(dependency["labels"])} if dependency["labels"] else {}),
        }
        for dependency in image["dependencies"]
    ]
    for key, value in (
        ("dependencies", dependencies),
        ("pathWhitelist", image["pathWhitelist"]),
        ("annotations", _name_value_list(image["annotations"])),
    ):
        if value:
            document[key] = value
    return document


def file_name(manifest: ImageManifest) -> str:
    """``NAME-VERSION-OS-ARCH.aci``, NAME the last component of the image name (appc's convention)."""
    version = manifest.label("version")
    basics.check("version", "fileNamePart", version)
    return f"{manifest.name.rsplit('/', 1)[-1]}-{version}-{manifest.label('os')}-{manifest.label('arch')}.aci"


def store_mount_names(paths: list[str], taken: set[str]) -> dict[str, str]:
    """``{store path: AC Name}`` for the mount points of a thin image.

    A name is the store path's name made an AC Name (``glibc-host-2.36`` ->
    ``glibc-host-2-36``), so it is readable and stable across rebuilds; where two
    paths, or one of ``taken`` (the user's mounts), would share it, the path's hash
    tells them apart (``source-0abc1234``). Input paths are sorted; so is the output.
    Raises SpecError naming the user's mount that takes even that name.
    """

    def readable(path: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "-", os.path.basename(path).split("-", 1)[-1].lower()).strip("-")
        return stem or "store-path"

    stems = {path: readable(path) for path in paths}
    counts = collections.Counter(stems.values())
    names = {
        path: stem if counts[stem] == 1 and stem not in taken else f"{stem}-{os.path.basename(path)[:8]}"
        for path, stem in stems.items()
    }
    for path, name in names.items():
        if name in taken:
            raise SpecError(f"mounts.{name}", f"takes the name of the mount point of {path}: give it another name")
    return names


def _host_mounts(spec: BuildSpec) -> dict[str, str]:
    """{host path: mount name} of what the image mounts from the host: its closure (thin) and
    /etc/resolv.conf (resolvConf), named apart from the user's mounts."""
    taken = set(spec.image["mounts"])
    host_mounts = {}
    if spec.rootfs["resolvConf"]:
        if RESOLV_CONF_MOUNT in taken:
            raise SpecError(
                f"mounts.{RESOLV_CONF_MOUNT}",
                "is the name of the host's /etc/resolv.conf (resolvConf = true): rename it",
            )
        taken.add(RESOLV_CONF_MOUNT)
    if spec.mode == "thin":
        host_mounts = store_mount_names(spec.closure.paths_needed_by(spec.roots), taken)
    if spec.rootfs["resolvConf"]:
        host_mounts["/etc/resolv.conf"] = RESOLV_CONF_MOUNT
    return host_mounts


def mounts_flags(host_mounts: dict[str, str]) -> str:
    """The rkt flags that give an image its host paths: ``rkt run $(cat X.mounts) X.aci``."""
    return " ".join(f"--volume={name},kind=host,source={path},readOnly=true" for path, name in host_mounts.items())


def build(spec: BuildSpec) -> AciResult:
    """Build the ACI of ``spec`` into ``spec.out``; return what was written.

    An image with host mounts (thin, or resolvConf) also gets
    ``NAME-VERSION-OS-ARCH.mounts``, its volumes as rkt flags.
    """
    host_mounts = _host_mounts(spec)
    image = {**spec.image, "env": basics.environment(spec.rootfs, spec.image["env"])}
    manifest = ImageManifest.from_json(manifest_document(image, host_mounts))
    manifest_bytes = (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
    # The runtime makes the mount points: they must lie in directories of the image.
    mount_points = {mount["path"]: f"mounts.{name}.path" for name, mount in sorted(spec.image["mounts"].items())}
    rootfs = (entry.under("rootfs") for entry in plan.contained(tree.image_tree(spec, mount_points=mount_points)))
    path = os.path.join(spec.out, file_name(manifest))
    rules = ArchiveRules(path)
    compression = COMPRESSIONS.named(spec.compression)
    os.makedirs(spec.out, exist_ok=True)
    with open(path, "wb") as output:
        entries = rules.checked(itertools.chain([plan.file_with_content("manifest", manifest_bytes)], rootfs))
        summary = write_archive(entries, output, compression=compression, level=spec.compression_level)
    image_id = f"sha512-{summary.uncompressed_digest}"
    with open(f"{path}.id", "w", encoding="ascii") as id_file:
        id_file.write(image_id + "\n")
    if host_mounts:
        with open(path.removesuffix(".aci") + ".mounts", "w", encoding="utf-8") as mounts_file:
            mounts_file.write(mounts_flags(host_mounts) + "\n")
    postprocess_script.write_script(spec, spec.out)
    return AciResult(path=path, image_id=image_id, archive=summary)

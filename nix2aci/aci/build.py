"""Building the ACI output format: a plan and the image arguments -> ``NAME-VERSION-OS-ARCH.aci``.

Runs inside the Nix build sandbox (standard library, attrs, jsonschema only).
Input: a :class:`~nix2aci.build.spec.BuildSpec` of format ``aci``.
Output, in ``spec.out``: the image, ``<image>.id`` holding its image ID
(``sha512-`` and the hex sha512 of the uncompressed tar, appc's definition), and
``NAME-VERSION-OS-ARCH.spdx.json``, its SBOM (:mod:`nix2aci.build.sbom`), which the
manifest's annotations ``nix2aci/sbom`` (the file name) and ``nix2aci/sbom-digest``
(``sha256:HEX``) name.
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
from ..build import basics, plan, postprocess_script, sbom, tree
from ..build.spec import AciOutput, BuildSpec
from ..build.spec.aci import AciImage, Dependency
from ..errors import SpecError
from .members import COMPRESSIONS, ArchiveRules

# The mount point of the host's /etc/resolv.conf (resolvConf = true).
RESOLV_CONF_MOUNT = "resolv-conf"
# The manifest's annotations naming the SBOM beside the image: its file name and sha256 digest.
SBOM_ANNOTATION = "nix2aci/sbom"
SBOM_DIGEST_ANNOTATION = "nix2aci/sbom-digest"
# The SBOM's creation time when the image's annotations give none (appc's "created").
DEFAULT_CREATED = "1970-01-01T00:00:01Z"


@attrs.frozen
class AciResult:
    """What building an ACI wrote and measured."""

    path: str
    image_id: str
    archive: ArchiveSummary


def _name_value_list(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """``{k: v}`` -> ``[{"name": k, "value": v}]``, sorted by name for stable output."""
    return [{"name": name, "value": mapping[name]} for name in sorted(mapping)]


def _labels(image: AciImage) -> list[dict[str, str]]:
    """The manifest labels: version, os and arch from their own arguments, then the user's."""
    arguments = {"version": image.version, "os": image.os, "arch": image.arch}
    for name in arguments:
        if name in image.labels:
            raise SpecError(f"labels.{name}", f"is set by the `{name}` argument; remove it from labels")
    own = [{"name": name, "value": value} for name, value in arguments.items()]
    return own + _name_value_list(image.labels)


def _app(image: AciImage) -> dict[str, Any]:
    """The manifest's ``app`` object from the image arguments; empty values are left out."""
    app: dict[str, Any] = {}
    if image.exec is not None:
        app["exec"] = list(image.exec)
    app["user"], app["group"] = image.user, image.group
    handlers = {"pre-start": image.event_handlers.pre_start, "post-stop": image.event_handlers.post_stop}
    optional = {
        "supplementaryGIDs": list(image.supplementary_gids),
        "eventHandlers": [{"name": name, "exec": list(argv)} for name, argv in handlers.items() if argv is not None],
        "workingDirectory": image.working_directory,
        "environment": _name_value_list(image.env),
        "isolators": [{"name": isolator.name, "value": isolator.value} for isolator in image.isolators],
        "mountPoints": [
            {"name": name, "path": mount.path, "readOnly": mount.read_only}
            for name, mount in sorted(image.mounts.items())
        ],
        "ports": [
            {
                "name": name,
                "protocol": port.protocol,
                "port": port.port,
                "count": port.count,
                "socketActivated": port.socket_activated,
            }
            for name, port in sorted(image.ports.items())
        ],
        "userAnnotations": image.user_annotations,
        "userLabels": image.user_labels,
    }
    app.update({key: value for key, value in optional.items() if value})
    return app


def _dependency(dependency: Dependency) -> dict[str, Any]:
    """A dependency of the manifest; empty values are left out."""
    document = {"imageName": dependency.image_name, "imageID": dependency.image_id, "size": dependency.size}
    if dependency.labels:
        document["labels"] = _name_value_list(dependency.labels)
    return {key: value for key, value in document.items() if value is not None}


def manifest_document(image: AciImage, host_mounts: dict[str, str]) -> dict[str, Any]:
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
        "name": image.name,
        "labels": _labels(image),
        "app": app,
    }
    for key, value in (
        ("dependencies", [_dependency(dependency) for dependency in image.dependencies]),
        ("pathWhitelist", list(image.path_whitelist)),
        ("annotations", _name_value_list(image.annotations)),
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


def _host_mounts(spec: BuildSpec, image: AciImage) -> dict[str, str]:
    """{host path: mount name} of what the image mounts from the host: its closure (thin) and
    /etc/resolv.conf (resolvConf), named apart from the user's mounts."""
    taken = set(image.mounts)
    host_mounts = {}
    if spec.rootfs.resolv_conf:
        if RESOLV_CONF_MOUNT in taken:
            raise SpecError(
                f"mounts.{RESOLV_CONF_MOUNT}",
                "is the name of the host's /etc/resolv.conf (resolvConf = true): rename it",
            )
        taken.add(RESOLV_CONF_MOUNT)
    if spec.mode == "thin":
        host_mounts = store_mount_names(spec.closure.paths_needed_by(spec.roots), taken)
    if spec.rootfs.resolv_conf:
        host_mounts["/etc/resolv.conf"] = RESOLV_CONF_MOUNT
    return host_mounts


def _with_sbom(spec: BuildSpec, image: AciImage, host_mounts: dict[str, str]) -> tuple[AciImage, bytes, str]:
    """(the image's arguments with the annotations naming its SBOM, the SBOM's bytes, its file name).

    The SBOM is named after the image's file and created when the image's ``created``
    annotation says. Raises SpecError when the user's annotations take an SBOM annotation.
    """
    for name in (SBOM_ANNOTATION, SBOM_DIGEST_ANNOTATION):
        if name in image.annotations:
            raise SpecError(f"annotations.{name}", "is set by nix2aci to name the SBOM; remove it from annotations")
    stem = file_name(ImageManifest.from_json(manifest_document(image, host_mounts))).removesuffix(".aci")
    content = sbom.sbom_bytes(
        spec.closure,
        spec.roots,
        spec.output.provenance,
        stem,
        image.annotations.get("created", DEFAULT_CREATED),
    )
    name = stem + sbom.SUFFIX
    annotations = {**image.annotations, SBOM_ANNOTATION: name, SBOM_DIGEST_ANNOTATION: sbom.sha256_digest(content)}
    return attrs.evolve(image, annotations=annotations), content, name


def mounts_flags(host_mounts: dict[str, str]) -> str:
    """The rkt flags that give an image its host paths: ``rkt run $(cat X.mounts) X.aci``."""
    return " ".join(f"--volume={name},kind=host,source={path},readOnly=true" for path, name in host_mounts.items())


def build(spec: BuildSpec) -> AciResult:
    """Build the ACI of ``spec`` into ``spec.out``; return what was written.

    An image with host mounts (thin, or resolvConf) also gets
    ``NAME-VERSION-OS-ARCH.mounts``, its volumes as rkt flags.
    """
    output: AciOutput = spec.output
    host_mounts = _host_mounts(spec, output.image)
    image = attrs.evolve(output.image, env=basics.environment(spec.rootfs, output.image.env))
    image, sbom_content, sbom_name = _with_sbom(spec, image, host_mounts)
    manifest = ImageManifest.from_json(manifest_document(image, host_mounts))
    manifest_bytes = (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
    # The runtime makes the mount points: they must lie in directories of the image.
    mount_points = {mount.path: f"mounts.{name}.path" for name, mount in sorted(image.mounts.items())}
    layers = tree.image_tree(spec, mount_points=mount_points)
    rootfs = (entry.under("rootfs") for entry in plan.contained(layers.merged()))
    path = os.path.join(spec.out, file_name(manifest))
    rules = ArchiveRules(path)
    compression = COMPRESSIONS.named(output.compression)
    os.makedirs(spec.out, exist_ok=True)
    with open(path, "wb") as file:
        entries = rules.checked(itertools.chain([plan.file_with_content("manifest", manifest_bytes)], rootfs))
        summary = write_archive(entries, file, compression=compression, level=output.compression_level)
    image_id = f"sha512-{summary.uncompressed_digest}"
    with open(f"{path}.id", "w", encoding="ascii") as id_file:
        id_file.write(image_id + "\n")
    if host_mounts:
        with open(path.removesuffix(".aci") + ".mounts", "w", encoding="utf-8") as mounts_file:
            mounts_file.write(mounts_flags(host_mounts) + "\n")
    sbom.write(spec.out, sbom_name, sbom_content)
    postprocess_script.write_script(spec.out, output.command, output.sign)
    return AciResult(path=path, image_id=image_id, archive=summary)

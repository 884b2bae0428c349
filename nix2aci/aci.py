"""The ACI output format: a plan and the image arguments -> ``NAME-VERSION-OS-ARCH.aci``.

Input: a :class:`~nix2aci.spec.BuildSpec` of format ``aci``.
Output, in ``spec.out``: the image, and ``<image>.id`` holding its image ID
(``sha512-`` and the hex sha512 of the uncompressed tar, appc's definition).
The manifest is validated by :class:`nix2aci.appc.ImageManifest` before anything
is written.
"""

from __future__ import annotations

import json
import lzma
import os
import posixpath
import tarfile
import zlib
from typing import Any

import attrs

from . import plan
from .appc import ImageManifest
from .archive import ArchiveSummary, write_archive
from .errors import Nix2AciError, SpecError
from .spec import BuildSpec

# Labels nix2aci always sets from their own arguments.
ARGUMENT_LABELS = ("version", "os", "arch")


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


def manifest_document(image: dict[str, Any]) -> dict[str, Any]:
    """The ImageManifest JSON for the image arguments of a build spec (not yet validated)."""
    document: dict[str, Any] = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": image["name"],
        "labels": _labels(image),
        "app": _app(image),
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
    if "/" in version:
        raise SpecError("version", f"becomes part of the file name and must not contain '/', got {version!r}")
    return f"{manifest.name.rsplit('/', 1)[-1]}-{version}-{manifest.label('os')}-{manifest.label('arch')}.aci"


def rootfs_plan(spec: BuildSpec) -> list[plan.Entry]:
    """The image's file tree for the build mode.

    fat: the packages' whole closure under /nix/store plus their merged profile at /.
    static: the one package's tree as the whole root; it must reference no other path.
    """
    if spec.mode == "static":
        (package,) = spec.packages
        others = [path for path in spec.closure.paths_needed_by([package]) if path != package]
        if others:
            raise Nix2AciError(
                f"static = true needs a self-contained package, but {package} references {', '.join(others)}; "
                "build a fat image instead (the default)"
            )
        return plan.sorted_plan(plan.copy_tree(package, ""))
    if spec.mode == "fat":
        closure = spec.closure.paths_needed_by(spec.packages)
        return plan.sorted_plan([plan.directory(""), *plan.store_paths(closure), *plan.profile(spec.packages)])
    raise Nix2AciError(f"unknown build mode {spec.mode!r}: nix2aci builds fat and static ACIs")


def build(spec: BuildSpec) -> AciResult:
    """Build the ACI of ``spec`` into ``spec.out``; return what was written."""
    manifest = ImageManifest.from_json(manifest_document(spec.image))
    manifest_bytes = (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
    entries = [
        plan.file_with_content("manifest", manifest_bytes),
        *(entry.under("rootfs") for entry in rootfs_plan(spec)),
    ]
    os.makedirs(spec.out, exist_ok=True)
    path = os.path.join(spec.out, file_name(manifest))
    with open(path, "wb") as output:
        summary = write_archive(entries, output, compression=spec.compression, level=spec.compression_level)
    image_id = f"sha512-{summary.uncompressed_digest}"
    with open(f"{path}.id", "w", encoding="ascii") as id_file:
        id_file.write(image_id + "\n")
    return AciResult(path=path, image_id=image_id, archive=summary)


# The largest manifest nix2aci reads: real ones are a few KiB, and a bound keeps a
# hostile archive from exhausting memory.
MAX_MANIFEST_SIZE = 1 << 20


def member_name(member: tarfile.TarInfo) -> str:
    """A member's name as appc compares names: cleaned (``./a//b/`` -> ``a/b``)."""
    return posixpath.normpath(member.name) if member.name else ""


def read_archive(path: str) -> tuple[dict[str, Any] | None, list[SpecError]]:
    """Check an ACI's archive rules and read its manifest.

    Input: the path of an ACI (plain tar, gzip, bzip2 or xz).
    Output: the parsed manifest JSON (None when there is none to parse) and the
    archive-level problems: name suffix, top-level names, duplicates, kinds of
    ``manifest`` and ``rootfs``, unsafe member names.
    """
    problems: list[SpecError] = []
    if not path.endswith(".aci"):
        problems.append(SpecError(path, "an ACI's file name must end in .aci"))
    seen: set[str] = set()
    manifest_bytes = None
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member_name(member)
                where = f"{path}: {member.name!r}"
                if name == ".":
                    continue
                if name.startswith("/") or name == ".." or name.startswith("../"):
                    problems.append(SpecError(where, "member names must be relative and stay inside the archive"))
                    continue
                if name.split("/", 1)[0] not in ("manifest", "rootfs"):
                    problems.append(SpecError(where, "only manifest and rootfs/... may be in an ACI"))
                if name in seen:
                    problems.append(SpecError(where, "duplicate entry (the archive must have each name once)"))
                seen.add(name)
                if name == "manifest":
                    if not member.isreg():
                        problems.append(SpecError(where, "manifest must be a regular file"))
                    elif member.size > MAX_MANIFEST_SIZE:
                        problems.append(SpecError(where, f"manifest is larger than {MAX_MANIFEST_SIZE} bytes"))
                    else:
                        manifest_bytes = tar.extractfile(member).read()
                elif name == "rootfs" and not member.isdir():
                    problems.append(SpecError(where, "rootfs must be a directory"))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error) as error:
        return None, [*problems, SpecError(path, f"not a readable tar, tar.gz, tar.bz2 or tar.xz archive: {error}")]
    for required in ("manifest", "rootfs"):
        if required not in seen:
            problems.append(SpecError(path, f"an ACI must contain {required}"))
    if manifest_bytes is None:
        return None, problems
    try:
        return json.loads(manifest_bytes), problems
    except (ValueError, RecursionError) as error:
        return None, [*problems, SpecError(f"{path}: manifest", f"must be JSON: {error}")]


def validate_archive(path: str) -> tuple[ImageManifest | None, list[SpecError]]:
    """All problems of an ACI, archive and manifest; the manifest when it is valid."""
    document, problems = read_archive(path)
    if document is None:
        return None, problems
    manifest_problems = ImageManifest.problems(document)
    problems += [SpecError(f"manifest: {p.field}" if p.field else "manifest", p.rule) for p in manifest_problems]
    return (None if problems else ImageManifest.from_json(document)), problems

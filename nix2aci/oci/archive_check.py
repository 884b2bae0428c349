"""The docker-archive format, checked: what ``docker save`` and ``podman save`` write, ``docker load`` and
``podman load`` read, and buildOCIImage writes with ``format = "docker-archive"``.

Input: an opened regular file holding an uncompressed tar. Output: an :class:`ArchiveReading`: the
problems found, spec-valid warnings, and each image's tags, config and layers (for ``nix2aci inspect``
and ``fromImage``). The archive is indexed from its tar headers alone (:class:`ArchiveIndex`), the
contents skipped by seeking; then each member is read where it lies, once, streamed: nothing is
extracted. The rules (from moby's image/tarexport, which docker load runs):

- member names are relative and stay inside the archive, each once; links point inside it; only
  regular files, directories and links are members;
- ``manifest.json`` is a list of images (docker-manifest.schema.json): ``Config`` and every ``Layers``
  entry name regular members, or links to one: Docker 20.10's ``docker save`` writes a layer identical to
  an earlier one as a symbolic link ``ID/layer.tar -> ../ID0/layer.tar``. A link is followed once, to a
  regular member inside the archive (never to a link, a directory, or out of the archive);
- a config is an image config (image.schema.json), with one diff_id per layer, in order, each the
  sha256 of the layer's tar, decompressed (gzip, zstd or none, as OCI layers are);
- ``RepoTags`` are ``NAME:TAG`` references as Docker takes them.

An archive that also holds an OCI image layout (``oci-layout``: Docker 25 writes one beside
manifest.json) has that layout checked too, through the same index.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

import attrs

from .. import inputs
from ..archive.compression import NONE, detect
from ..archive.read import Unreadable, tar_headers
from ..errors import NotChecked, SpecError
from ..schema import Schema, load_json, prefixed
from . import layout

# The name docker load reads.
DOCKER_MANIFEST = "manifest.json"
# A docker-archive has a few members per layer; more than this is no image nix2aci reads.
MAX_MEMBERS = 1 << 16
# What an archive that tarfile cannot read must be, in Unreadable's rule.
_TAR_RULE = "an uncompressed tar archive (a docker-archive)"


def manifest_schema() -> Schema:
    """docker-manifest.schema.json, its RepoTags pattern made of arguments.schema.json's imageName and
    ociTag: a tag is well-formed in one place."""
    document = load_json(__package__, "docker-manifest.schema.json")
    arguments = load_json("nix2aci", "arguments.schema.json")["definitions"]
    name, tag = (arguments[kind]["pattern"].removeprefix("^").removesuffix("$") for kind in ("imageName", "ociTag"))
    document["definitions"]["repoTag"]["pattern"] = f"^{name}:{tag}$"
    return Schema(document)


MANIFEST_SCHEMA = manifest_schema()


def _kind(member: tarfile.TarInfo) -> str:
    """What a tar member is, with its article: "a regular file", "a symbolic link", "a FIFO"."""
    kinds = (
        (member.isreg, "a regular file"),
        (member.isdir, "a directory"),
        (member.issym, "a symbolic link"),
        (member.islnk, "a hard link"),
        (member.isfifo, "a FIFO"),
        (member.ischr, "a character device"),
        (member.isblk, "a block device"),
    )
    return next((name for test, name in kinds if test()), "a member of an unknown type")


def inside(name: str) -> str | None:
    """``name`` (a member name, or a path in the archive) cleaned (``./a//b`` -> ``a/b``), or None when it is
    absolute or leads out of the archive."""
    cleaned = posixpath.normpath(name) if name else "."
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        return None
    return cleaned


@attrs.frozen
class _Member:
    """A member of the archive: what it is, and where its contents lie in the file."""

    kind: str
    offset: int
    size: int
    # A link's target as its header names it, and the member that is, cleaned (None: out of the archive).
    linkname: str = ""
    target: str | None = None


class _MemberFile:
    """The contents of a regular member, read from where they lie in the archive (``pread``: the archive's own
    position is never moved)."""

    def __init__(self, descriptor: int, member: _Member) -> None:
        self._descriptor = descriptor
        self._member = member
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        left = self._member.size - self._position
        wanted = left if size is None or size < 0 else min(size, left)
        data = os.pread(self._descriptor, wanted, self._member.offset + self._position) if wanted else b""
        if wanted and not data:
            raise OSError(f"the archive ends within member contents at offset {self._member.offset}")
        self._position += len(data)
        return data


class ArchiveIndex:
    """The members of the uncompressed tar in the opened regular ``file``, from one read of its headers, and
    the problems of the member list; an :class:`~nix2aci.oci.layout.Opener` of its regular members.

    Raises Unreadable for what is no readable tar, NotChecked for a compressed archive (docker load takes
    one; nix2aci reads them uncompressed) and for what is over nix2aci's limits, OSError for a failed read.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.members: dict[str, _Member] = {}
        self.directories: set[str] = set()
        self.problems: list[SpecError] = []
        file.seek(0)
        compression = detect(file.read(tarfile.BLOCKSIZE))
        if compression is not NONE:
            raise NotChecked(
                f"it is compressed with {compression.described}: docker load takes that, nix2aci reads a"
                " docker-archive uncompressed; decompress it to check it"
            )
        file.seek(0)
        for member in tar_headers(file, _TAR_RULE, MAX_MEMBERS):
            self._add(member)

    def _add(self, member: tarfile.TarInfo) -> None:
        """Index one member, noting what breaks the rules."""
        where = f"member {member.name!r}"
        name = inside(member.name)
        if name is None:
            self.problems.append(SpecError(where, "member names must be relative and stay inside the archive"))
            return
        if name == ".":
            return
        if name in self.members:
            self.problems.append(SpecError(where, "is in the archive twice: a docker-archive has each name once"))
        kind = _kind(member)
        target = None
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            target = inside(posixpath.join(base, member.linkname))
            if target is None:
                self.problems.append(SpecError(where, f"must link inside the archive; it links to {member.linkname!r}"))
        elif not (member.isreg() or member.isdir()):
            self.problems.append(
                SpecError(where, f"is {kind}: only regular files, directories and links may be in a docker-archive")
            )
        self.members[name] = _Member(kind, member.offset_data, member.size, member.linkname, target)
        parts = name.split("/")
        self.directories.update("/".join(parts[:end]) for end in range(1, len(parts) + (kind == "a directory")))

    @contextlib.contextmanager
    def open(self, relative: str, what: str, blob: bool = False) -> Iterator[tuple[BinaryIO, int]]:
        """The regular member ``relative`` opened, and its size; InputError for what is missing or not regular
        (a link is not followed)."""
        name = inside(relative)
        member = self.members.get(name) if name else None
        if member is None:
            raise inputs.InputError(what, relative, "is not a member of the archive", missing=True)
        if member.kind != "a regular file":
            raise inputs.InputError(what, relative, f"is {member.kind} member, not a regular file")
        yield _MemberFile(self._file.fileno(), member), member.size  # type: ignore[misc]

    def resolve(self, relative: str, what: str) -> str:
        """The name of the regular member ``relative`` is, or links to (a link followed once: ``docker save``
        links a layer to its identical twin, never a link to a link). Raises InputError, its reason saying
        what ``relative`` is otherwise: missing, or a link out of the archive, to nothing, to a link or to
        what is not a regular file."""
        name = inside(relative)
        member = self.members.get(name) if name else None
        if member is None:
            raise inputs.InputError(what, relative, "is not a member of the archive", missing=True)
        if member.kind not in ("a symbolic link", "a hard link"):
            return name  # type: ignore[return-value]
        linked = f"links to {member.linkname!r}"
        if member.target is None:
            raise inputs.InputError(what, relative, f"{linked}, outside the archive")
        target = self.members.get(member.target)
        if target is None:
            raise inputs.InputError(what, relative, f"{linked}, which is not a member of the archive")
        if target.kind != "a regular file":
            raise inputs.InputError(
                what, relative, f"{linked}, which is {target.kind} member: a link must name a regular file"
            )
        return member.target

    def is_directory(self, relative: str) -> bool:
        """Whether members lie under ``relative`` (a tar need not have a member for each directory)."""
        return inside(relative) in self.directories


def archive_in(directory: str) -> str | None:
    """The name of the one ``.tar`` in ``directory`` (buildOCIImage's docker-archive output, which also holds
    its postprocess.sh and SBOM), else None: none, or several."""
    names = [name for name in os.listdir(directory) if name.endswith(".tar")]
    return names[0] if len(names) == 1 else None


@attrs.frozen
class ArchiveLayer:
    """A layer of an image in the archive: its member, size, sha256 digest (None: not hashed), diff_id and
    compression (None: not decompressed)."""

    member: str
    size: int
    digest: str | None
    diff_id: str | None
    compression: str | None


@attrs.frozen
class ArchiveImage:
    """An image of the archive: its tags, its config's member and document, its layers bottom first."""

    repo_tags: tuple[str, ...]
    config_member: str
    config: dict
    layers: tuple[ArchiveLayer, ...]


@attrs.frozen
class ArchiveReading:
    """What checking a docker-archive found: problems, warnings and the images (those whose config and
    layers could be read)."""

    problems: tuple[SpecError, ...]
    warnings: tuple[str, ...] = ()
    images: tuple[ArchiveImage, ...] = ()


class _ArchiveCheck:
    """The check of the images manifest.json lists in ``index``, reading members through ``check`` (each at most
    once per purpose)."""

    def __init__(self, index: ArchiveIndex, check: layout.LayoutCheck, hash_layers: bool) -> None:
        self.index = index
        self.check = check
        self.hash_layers = hash_layers
        self.images: list[ArchiveImage] = []

    def _problem(self, where: str, rule: str) -> None:
        self.check.found.append(SpecError(where, rule))

    def _read(self, where: str, name: str, purpose: str) -> Any:
        """The member ``name`` read for ``purpose`` ("document", "layer", "size"), or None and a problem."""
        if inside(name) is None:
            self._problem(where, f"must name a member inside the archive (relative, without ..), got {name!r}")
            return None
        try:
            resolved = self.index.resolve(name, "member")
        except inputs.InputError as error:
            self._problem(where, f"names {name!r}, which {error.reason}")
            return None
        read = self.check.read(resolved, "sha256", purpose, None)
        if isinstance(read, inputs.InputError):
            self._problem(where, f"names {name!r}, which {read.reason}")
            return None
        if isinstance(read, OSError):
            self._problem(where, f"names {name!r}, which cannot be read: {read.strerror or read}")
            return None
        if read.layer_problem:
            self._problem(
                where, f"names {name!r}, which must be a layer (a tar, plain or compressed): it {read.layer_problem}"
            )
            return None
        return read

    def config(self, where: str, name: str) -> dict | None:
        """The config member ``name``, checked as an image config; None if it is not one."""
        read = self._read(where, name, "document")
        if read is None:
            return None
        if read.size > layout.MAX_DOCUMENT:
            raise NotChecked(f"{where} names a config over {layout.MAX_DOCUMENT} bytes, more than nix2aci reads")
        document, errors = layout.parse_document(read.data or b"", "config")
        self.check.found.extend(prefixed(f"{where} ({name})", errors))
        return document

    def image(self, entry: dict[str, Any], where: str) -> None:
        """Check one image of manifest.json: its config, its layers and their diff_ids."""
        config = self.config(f"{where}.Config", entry["Config"])
        purpose = "layer" if self.hash_layers else "size"
        layers = []
        for j, name in enumerate(entry["Layers"]):
            read = self._read(f"{where}.Layers[{j}]", name, purpose)
            if read is not None:
                compression = read.compression.name if read.compression else None
                layers.append(ArchiveLayer(inside(name) or name, read.size, read.digest, read.diff_id, compression))
        if config is None:
            return
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            self._problem(
                f"{where}.Config ({entry['Config']}) rootfs.diff_ids",
                f"must have one entry per layer of Layers ({len(entry['Layers'])}), has {len(diff_ids)}",
            )
            return
        if len(layers) != len(diff_ids):
            return  # a layer could not be read: said above
        for j, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
            if layer.diff_id is not None and layer.diff_id != diff_id:
                self._problem(
                    f"{where}.Layers[{j}]",
                    f"names {layer.member!r}, whose uncompressed sha256 is {layer.diff_id}, but the config's"
                    f" rootfs.diff_ids[{j}] is {diff_id}",
                )
        self.images.append(ArchiveImage(tuple(entry.get("RepoTags") or ()), entry["Config"], config, tuple(layers)))


def read(file: BinaryIO, *, hash_layers: bool = True) -> ArchiveReading:
    """Check the docker-archive in the opened regular ``file``; with ``hash_layers``, each layer is hashed and
    decompressed to check its diff_id (else only its presence and size).

    Raises NotChecked for what nix2aci does not read (a compressed archive, a manifest.json or config over
    its limit, too many members), OSError for a failed read.
    """
    try:
        index = ArchiveIndex(file)
    except Unreadable as error:
        return ArchiveReading((error,))
    return read_index(index, hash_layers=hash_layers)


def read_index(index: ArchiveIndex, *, hash_layers: bool = True) -> ArchiveReading:
    """Check the docker-archive whose members ``index`` holds, as :func:`read` does."""
    warnings: list[str] = []
    check = layout.LayoutCheck(index, hash_layers, warnings)
    check.found.extend(index.problems)
    manifest = check.document(DOCKER_MANIFEST, "Docker manifest.json", MANIFEST_SCHEMA)
    images = _ArchiveCheck(index, check, hash_layers)
    for i, entry in enumerate(manifest or []):
        images.image(entry, f"{DOCKER_MANIFEST}[{i}]")
    found = check.found
    if "oci-layout" in index.members:
        found += layout.problems(index, hash_layers=hash_layers, warnings=warnings)
    return ArchiveReading(tuple(found), tuple(warnings), tuple(images.images))

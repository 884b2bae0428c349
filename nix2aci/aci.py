"""The ACI output format: a plan and the image arguments -> ``NAME-VERSION-OS-ARCH.aci``.

Input: a :class:`~nix2aci.spec.BuildSpec` of format ``aci``.
Output, in ``spec.out``: the image, and ``<image>.id`` holding its image ID
(``sha512-`` and the hex sha512 of the uncompressed tar, appc's definition).
The manifest is validated by :class:`nix2aci.appc.ImageManifest` before anything
is written.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import json
import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import attrs

from . import basics, plan, postprocess, tree
from .appc import ImageManifest
from .archive import ArchiveSummary, write_archive
from .errors import NotChecked, SpecError
from .schema import join_path, parse_json, prefixed
from .spec import BuildSpec
from .unarchive import (
    MAX_HEADER_SIZE,
    MAX_MANIFEST_SIZE,
    PIECE_SIZE,
    TarStream,
    Unreadable,
    compression_of,
    end_problem,
    is_tar_header,
    uncompressed,
)

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
    layout = Layout(path)
    os.makedirs(spec.out, exist_ok=True)
    with open(path, "wb") as output:
        entries = layout.checked(itertools.chain([plan.file_with_content("manifest", manifest_bytes)], rootfs))
        summary = write_archive(entries, output, compression=spec.compression, level=spec.compression_level)
    image_id = f"sha512-{summary.uncompressed_digest}"
    with open(f"{path}.id", "w", encoding="ascii") as id_file:
        id_file.write(image_id + "\n")
    if host_mounts:
        with open(path.removesuffix(".aci") + ".mounts", "w", encoding="utf-8") as mounts_file:
            mounts_file.write(mounts_flags(host_mounts) + "\n")
    postprocess.write_script(spec, spec.out)
    return AciResult(path=path, image_id=image_id, archive=summary)


# The most members nix2aci reads from one archive (large closures have a few
# 100,000 files). A digest of each name is kept to find duplicates: about 90 bytes
# a member, so this bounds that memory to about 100 MB.
MAX_MEMBERS = 1 << 20


def clean_name(name: str) -> str:
    """A member name as appc compares names: cleaned (``./a//b/`` -> ``a/b``)."""
    return posixpath.normpath(name) if name else ""


def name_key(name: str) -> bytes:
    """A 16-byte digest standing for a name in a set of names seen (a fraction of its memory)."""
    return hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=16).digest()


class Layout:
    """The archive rules of spec/aci.md, checked one member at a time.

    The builder checks its plan with it before writing, and ``nix2aci validate``
    checks archives with it while reading them: one implementation of the rules.
    ``problems`` collects what breaks them.
    """

    def __init__(self, path: str) -> None:
        self.seen: set[bytes] = set()
        self.problems: list[SpecError] = []
        if not path.endswith(".aci"):
            self.problems.append(SpecError("", "an ACI's file name must end in .aci"))

    def add(self, raw_name: str, kind: plan.Kind | None) -> str | None:
        """Check one member (``kind`` None for anything but a directory, file or symlink).

        Returns its cleaned name, or None when the name is unsafe to use at all.
        """
        name = clean_name(raw_name)
        where = f"member {raw_name!r}"
        if name == ".":
            return None
        if name.startswith("/") or name == ".." or name.startswith("../"):
            self.problems.append(SpecError(where, "member names must be relative and stay inside the archive"))
            return None
        if name.split("/", 1)[0] not in ("manifest", "rootfs"):
            self.problems.append(SpecError(where, "only manifest and rootfs/... may be in an ACI"))
        key = name_key(name)
        if key in self.seen:
            self.problems.append(SpecError(where, "duplicate entry (the archive must have each name once)"))
        self.seen.add(key)
        if name == "manifest" and kind is not plan.Kind.FILE:
            self.problems.append(SpecError(where, "manifest must be a regular file"))
        elif name == "rootfs" and kind is not plan.Kind.DIRECTORY:
            self.problems.append(SpecError(where, "rootfs must be a directory"))
        return name

    def checked(self, entries: Iterable[plan.Entry]) -> Iterator[plan.Entry]:
        """``entries``, each checked as it passes: the first problem is raised, before the entry goes on.

        The end of ``entries`` checks what must have come (:meth:`finish`).
        """
        for entry in entries:
            self.add(entry.path, entry.kind)
            if self.problems:
                raise self.problems[0]
            yield entry
        if problems := self.finish():
            raise problems[0]

    def finish(self) -> list[SpecError]:
        """All problems, including the required members that never came."""
        missing = [name for name in ("manifest", "rootfs") if name_key(name) not in self.seen]
        return self.problems + [SpecError("", f"an ACI must contain {name}") for name in missing]


def _kind(member: tarfile.TarInfo) -> plan.Kind | None:
    """The plan kind of a tar member, None for hardlinks, devices and FIFOs."""
    if member.isdir():
        return plan.Kind.DIRECTORY
    if member.isreg():
        return plan.Kind.FILE
    return plan.Kind.SYMLINK if member.issym() else None


@attrs.frozen
class ArchiveReading:
    """What reading an ACI found.

    ``document``: the parsed manifest JSON, None when there is none to check;
    ``problems``: what breaks the archive rules (see :class:`Layout`), and JSON
    errors of the manifest; ``warnings``: spec-valid oddities (a v7 tar, a
    repeated JSON key).
    """

    document: Any
    problems: tuple[SpecError, ...]
    warnings: tuple[str, ...] = ()


# What tarfile raises for an archive it cannot read (the stream itself raises Unreadable or NotChecked).
_TAR_ERRORS = (tarfile.TarError, ValueError, OverflowError, IndexError, RecursionError, EOFError)


@contextlib.contextmanager
def _tar_errors() -> Iterator[None]:
    """Turn what tarfile raises for a damaged archive into Unreadable, with a one-line rule."""
    try:
        yield
    except _TAR_ERRORS as error:
        if str(error) == "unexpected end of data":  # what tarfile says when a member's contents are cut
            raise Unreadable("ends in the middle of a member's contents: it is cut short") from None
        # tarfile lists what it tried over several lines: keep the message on one.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise Unreadable(f"must be a tar archive, plain or compressed with gzip, bzip2 or xz: {reason}") from None


class AciMembers:
    """The members of an opened ACI, read once, forward, in bounded memory, each seen by a :class:`Layout`.

    Input: a binary file (plain tar, gzip, bzip2 or xz) read from where it is,
    never seeked; its uncompressed pieces pass through ``pieces_through`` when
    given (to hash or count them). Iterating yields each tar member after ``layout`` has judged it
    (its problems are in ``layout.problems``); :meth:`contents` reads a regular
    member's bytes before the next member is asked for. The first regular
    ``manifest`` is read as it passes (``manifest_bytes``); ``warnings`` collects
    spec-valid oddities. The iteration ends by checking how the archive ends
    (and reading compressed data to its end). Raises Unreadable for what is not
    a readable tar, NotChecked for what nix2aci does not read (over MAX_MEMBERS
    members, a manifest over MAX_MANIFEST_SIZE, headers over MAX_HEADER_SIZE, xz
    needing over XZ_MEMORY_LIMIT) and OSError when the file cannot be read.
    """

    def __init__(
        self,
        file: BinaryIO,
        layout: Layout,
        pieces_through: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
    ) -> None:
        self.layout = layout
        self._pieces_through = pieces_through
        self.warnings: list[str] = []
        self.manifest_bytes: bytes | None = None
        self._file = file
        self._stream = TarStream(iter(()))
        self._tar: tarfile.TarFile | None = None

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        pieces, compression = uncompressed(self._file)
        stream = self._stream = TarStream(self._pieces_through(pieces) if self._pieces_through else pieces)
        head = stream.peek(tarfile.BLOCKSIZE)
        inner = compression_of(head)
        if compression is not None and inner is not None:
            raise Unreadable(f"is compressed twice ({inner} inside {compression}); an ACI is compressed once")
        if compression is None and is_tar_header(head) and head[257:262] != b"ustar":
            # actool finds a plain tar by its ustar magic (a compressed one by the compression's).
            self.warnings.append(
                "is a v7 tar (its headers have no ustar magic): the spec allows any tar,"
                " but actool rejects an uncompressed one (unknown image filetype)"
            )
        with _tar_errors():  # a TarFile over a stream holds nothing to close
            tar = self._tar = tarfile.TarFile(fileobj=stream)
        members = 0
        while True:
            stream.budget = MAX_HEADER_SIZE
            with _tar_errors():
                member = tar.next()
            if member is None:
                break
            tar.members.clear()  # tarfile keeps every member read; an archive may have millions
            members += 1
            if members > MAX_MEMBERS:
                raise NotChecked(f"it has over {MAX_MEMBERS} members, more than nix2aci reads")
            name = self.layout.add(member.name, _kind(member))
            if name == "manifest" and member.isreg() and self.manifest_bytes is None:
                if member.size > MAX_MANIFEST_SIZE:
                    raise NotChecked(f"its manifest is over {MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
                self.manifest_bytes = b"".join(self.contents(member))
            yield member
        with _tar_errors():
            end = end_problem(tar, stream, members)
        if end is not None:
            raise Unreadable(end)
        if compression is not None:
            stream.drain()

    def contents(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        """The bytes of the regular ``member`` just yielded, in pieces of at most PIECE_SIZE."""
        assert self._tar is not None, "contents() is for a member the iteration yielded"
        self._stream.budget = member.size  # the member's own size bounds what reading it takes
        with _tar_errors():
            reader = self._tar.extractfile(member)
        while True:
            with _tar_errors():
                piece = reader.read(PIECE_SIZE)
            if not piece:
                return
            yield piece

    def reading(self) -> ArchiveReading:
        """What the whole iteration found: the parsed manifest, the problems and warnings."""
        problems = self.layout.finish()
        if self.manifest_bytes is None:
            return ArchiveReading(None, tuple(problems), tuple(self.warnings))
        try:
            parsed = parse_json(self.manifest_bytes)
        except SpecError as error:
            return ArchiveReading(None, (*problems, SpecError("manifest", error.rule)), tuple(self.warnings))
        return ArchiveReading(
            parsed.value, tuple(problems), (*self.warnings, *(join_path("manifest", w) for w in parsed.warnings))
        )


def read_aci(
    path: str,
    file: BinaryIO | None = None,
    *,
    pieces_through: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
    on_member: Callable[[tarfile.TarInfo], object] | None = None,
) -> ArchiveReading:
    """Check an ACI's archive rules and read its manifest, in bounded memory (see :class:`AciMembers`).

    Input: the path of an ACI (plain tar, gzip, bzip2 or xz), and the file opened
    (read from its start; default: ``path`` is opened), read once, forward, to its
    end. Watching the same read (``nix2aci inspect``): the uncompressed pieces pass
    through ``pieces_through``, and ``on_member`` sees each member. An unreadable
    archive is a problem; raises NotChecked for what nix2aci does not read and
    OSError when the file cannot be read.
    """
    layout = Layout(path)
    with open(path, "rb") if file is None else contextlib.nullcontext(file) as opened:
        opened.seek(0)
        members = AciMembers(opened, layout, pieces_through=pieces_through)
        try:
            for member in members:
                if on_member is not None:
                    on_member(member)
        except Unreadable as error:
            return ArchiveReading(None, (*layout.problems, error), tuple(members.warnings))
    return members.reading()


def checked_manifest(reading: ArchiveReading) -> tuple[ImageManifest | None, list[SpecError]]:
    """All problems of what reading an ACI found, archive and manifest; the manifest when it is valid."""
    problems = list(reading.problems)
    if reading.document is None:
        return None, problems
    problems += prefixed("manifest", ImageManifest.problems(reading.document))
    return (None if problems else ImageManifest.from_json(reading.document)), problems


def validate_archive(
    path: str, file: BinaryIO | None = None, **watch: Any
) -> tuple[ImageManifest | None, list[SpecError]]:
    """All problems of an ACI, archive and manifest (read as :func:`read_aci` reads, with its arguments); the manifest
    when it is valid."""
    return checked_manifest(read_aci(path, file, **watch))

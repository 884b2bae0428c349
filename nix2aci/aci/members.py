"""The members of an ACI: the archive rules of spec/aci.md, and reading an ACI in one bounded pass.

:data:`COMPRESSIONS` are the compressions an ACI may use; :class:`ArchiveRules`
checks the rules one member at a time: the builder (:mod:`nix2aci.aci.build`)
checks its plan with it before writing, and ``nix2aci validate``, ``inspect``
and ``run`` check archives with it while reading them (:func:`read_aci`,
:class:`AciMembers`; :func:`checked_manifest` adds the manifest's own rules).
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import attrs

from ..appc import ImageManifest
from ..archive.compression import NONE, Allowed, detect, uncompressed
from ..archive.read import (
    MAX_HEADER_SIZE,
    MAX_MANIFEST_SIZE,
    PIECE_SIZE,
    TarStream,
    Unreadable,
    end_problem,
    is_tar_header,
    tar_errors,
)
from ..build import plan
from ..errors import NotChecked, SpecError
from ..schema import join_path, load_json, parse_json, prefixed

# The most members nix2aci reads from one archive (large closures have a few
# 100,000 files). A digest of each name is kept to find duplicates: about 90 bytes
# a member, so this bounds that memory to about 100 MB.
MAX_MEMBERS = 1 << 20
# The compressions an ACI may use (spec/aci.md: gzip, bzip2, xz, or none), in the order messages list them;
# nix/mk-aci.nix reads the same file for its `compression` argument.
COMPRESSIONS = Allowed("images", tuple(load_json(__package__, "compressions.json")))


def clean_name(name: str) -> str:
    """A member name as appc compares names: cleaned (``./a//b/`` -> ``a/b``)."""
    return posixpath.normpath(name) if name else ""


def name_key(name: str) -> bytes:
    """A 16-byte digest standing for a name in a set of names seen (a fraction of its memory)."""
    return hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=16).digest()


class ArchiveRules:
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
    ``problems``: what breaks the archive rules (see :class:`ArchiveRules`), and JSON
    errors of the manifest; ``warnings``: spec-valid oddities (a v7 tar, a
    repeated JSON key).
    """

    document: Any
    problems: tuple[SpecError, ...]
    warnings: tuple[str, ...] = ()


# What a damaged ACI must be instead, in Unreadable's rule.
_TAR_RULE = f"a tar archive, plain or compressed with {COMPRESSIONS.listed()}"


def _tar_errors() -> contextlib.AbstractContextManager[None]:
    """Turn what tarfile raises for a damaged ACI into Unreadable, with a one-line rule."""
    return tar_errors(_TAR_RULE)


class AciMembers:
    """The members of an opened ACI, read once, forward, in bounded memory, each seen by an :class:`ArchiveRules`.

    Input: a binary file (plain tar, or compressed as :data:`COMPRESSIONS` allow) read from where it is,
    never seeked; its uncompressed pieces pass through ``pieces_through`` when
    given (to hash or count them). Iterating yields each tar member after ``rules`` has judged it
    (its problems are in ``rules.problems``); :meth:`contents` reads a regular
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
        rules: ArchiveRules,
        pieces_through: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
    ) -> None:
        self.rules = rules
        self._pieces_through = pieces_through
        self.warnings: list[str] = []
        self.manifest_bytes: bytes | None = None
        self._file = file
        self._stream = TarStream(iter(()))
        self._tar: tarfile.TarFile | None = None

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        pieces, compression = uncompressed(self._file, COMPRESSIONS)
        stream = self._stream = TarStream(self._pieces_through(pieces) if self._pieces_through else pieces)
        head = stream.peek(tarfile.BLOCKSIZE)
        inner = detect(head)
        if compression is not NONE and inner is not NONE:
            raise Unreadable(
                f"is compressed twice ({inner.described} inside {compression.described}); an ACI is compressed once"
            )
        if compression is NONE and is_tar_header(head) and head[257:262] != b"ustar":
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
            name = self.rules.add(member.name, _kind(member))
            if name == "manifest" and member.isreg() and self.manifest_bytes is None:
                if member.size > MAX_MANIFEST_SIZE:
                    raise NotChecked(f"its manifest is over {MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
                self.manifest_bytes = b"".join(self.contents(member))
            yield member
        with _tar_errors():
            end = end_problem(tar, stream, members)
        if end is not None:
            raise Unreadable(end)
        if compression is not NONE:
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
        problems = self.rules.finish()
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

    Input: the path of an ACI (plain tar, or compressed as :data:`COMPRESSIONS` allow), and the file opened
    (read from its start; default: ``path`` is opened), read once, forward, to its
    end. Watching the same read (``nix2aci inspect``): the uncompressed pieces pass
    through ``pieces_through``, and ``on_member`` sees each member. An unreadable
    archive is a problem; raises NotChecked for what nix2aci does not read and
    OSError when the file cannot be read.
    """
    rules = ArchiveRules(path)
    with open(path, "rb") if file is None else contextlib.nullcontext(file) as opened:
        opened.seek(0)
        members = AciMembers(opened, rules, pieces_through=pieces_through)
        try:
            for member in members:
                if on_member is not None:
                    on_member(member)
        except Unreadable as error:
            return ArchiveReading(None, (*rules.problems, error), tuple(members.warnings))
    return members.reading()


def checked_manifest(reading: ArchiveReading) -> tuple[ImageManifest | None, list[SpecError]]:
    """All problems of what reading an ACI found, archive and manifest; the manifest when it is valid."""
    problems = list(reading.problems)
    if reading.document is None:
        return None, problems
    problems += prefixed("manifest", ImageManifest.problems(reading.document))
    return (None if problems else ImageManifest.from_json(reading.document)), problems

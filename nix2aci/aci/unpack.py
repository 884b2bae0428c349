"""Unpacking an ACI into a private bundle, for ``nix2aci run``: one read, each member judged, then written.

Input: an opened ACI file. :func:`unpack_image` reads it once, forward: each
member is judged as it comes (the archive rules of :class:`nix2aci.aci.members.ArchiveRules`
and run's own, :class:`Judge`) and then written by :class:`Extractor`, which on
its own never follows a link, never replaces an entry and never leaves the
rootfs, whatever the judge let through. Output: ``BUNDLE/rootfs``, the image's
manifest and the digest of the bytes read. The first refusal raises
Nix2AciError; what was written stays inside the bundle, which the caller removes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

import attrs

from ..appc import ImageManifest
from ..archive.read import PIECE_SIZE, Unreadable
from ..errors import Nix2AciError, NotChecked
from .members import AciMembers, ArchiveRules, checked_manifest, name_key

# Linux's limits: bytes in one name component, and in a whole name without its terminating NUL.
NAME_MAX = 255
PATH_MAX = 4095
# How the extractor opens each directory on a path: never through a symlink.
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# How it creates a regular file: a new entry, never an existing one, never through a symlink.
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SET_ID_BITS = stat.S_ISUID | stat.S_ISGID


@attrs.frozen
class Unpacked:
    """What unpacking an image found: its valid ``manifest``, and ``digest``, the hex sha512 of every byte read."""

    manifest: ImageManifest
    digest: str


def name_problem(name: str) -> str | None:
    """Why a member name or hard-link target, taken as written in the archive, is refused; None when it is fine.

    Refused: a NUL, over PATH_MAX bytes, an absolute name, an empty, ``.`` or
    ``..`` component (a leading ``./`` included), a component over NAME_MAX bytes.
    Nothing is cleaned first: ``rootfs/a/..`` is refused, not read as ``rootfs``.
    """
    if "\0" in name:
        return "has a NUL byte in its name"
    if len(os.fsencode(name)) > PATH_MAX:
        return f"is a name of over {PATH_MAX} bytes, longer than a file system takes"
    if name.startswith("/"):
        return "is an absolute name; names must be relative to the archive's top"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            # A leading ./ is what `tar -C DIR -cf X.aci .` writes: say how to do without it.
            hint = " (make the archive with: tar -C DIR -cf X.aci manifest rootfs)" if part == "." else ""
            return f"has a {part!r} component; nix2aci run takes names as written, without empty, '.' or '..'{hint}"
        if len(os.fsencode(part)) > NAME_MAX:
            return f"has a component of over {NAME_MAX} bytes, longer than a file system takes"
    return None


class Judge:
    """run's rules for each member, on top of the archive rules (``rules``, which has seen the member first).

    Refused: names and hard-link targets that :func:`name_problem` refuses; what
    breaks the archive rules; devices and FIFOs; hard links to anything but an
    earlier regular file of the rootfs; members under a symlink of the archive;
    set-uid or set-gid regular files unless ``allow_setuid`` (on a directory,
    set-gid only passes its group on).
    """

    def __init__(self, shown: str, rules: ArchiveRules, allow_setuid: bool) -> None:
        self.shown = shown
        self.rules = rules
        self.allow_setuid = allow_setuid
        self._files: set[bytes] = set()
        self._symlinks: set[bytes] = set()

    def refusal(self, member: tarfile.TarInfo) -> str | None:
        """Why ``member`` is refused (a message naming the image, the member and the rule), None when it may be."""
        where = f"{self.shown}: member {member.name!r}"
        problem = name_problem(member.name)
        if problem is not None:
            return f"{where} {problem}"
        if self.rules.problems:
            return f"{self.shown} is not a valid ACI: {self.rules.problems[0]}"
        if member.issym() and "\0" in member.linkname:
            return f"{where} is a symlink whose target has a NUL byte"
        if member.islnk():
            problem = name_problem(member.linkname)
            if problem is not None:
                return f"{where} is a hard link whose target {member.linkname!r} {problem}"
            if name_key(member.linkname) not in self._files:
                return f"{where} is a hard link to {member.linkname!r}, not to an earlier regular file of the image"
        elif not (member.isdir() or member.isreg() or member.issym()):
            return f"{where} is a device or FIFO; nix2aci run unpacks only files, directories and links"
        if member.isreg() and member.mode & _SET_ID_BITS and not self.allow_setuid:
            return f"{where} is set-uid or set-gid; pass --allow-setuid to run such an image"
        parent = posixpath.dirname(member.name)
        while parent:
            if name_key(parent) in self._symlinks:
                return f"{where} lies under the archive's symlink {parent!r}; it could be written outside the image"
            parent = posixpath.dirname(parent)
        if member.issym():
            self._symlinks.add(name_key(member.name))
        elif (member.isreg() or member.islnk()) and member.name.startswith("rootfs/"):
            self._files.add(name_key(member.name))
        return None


class _Refused(Exception):
    """The extractor will not write a member; ``str()`` says why."""


def _rootfs_parts(name: str) -> list[str] | None:
    """The components of ``name`` under ``rootfs`` ([] for rootfs itself), None for the manifest.

    Raises _Refused for any other name, and for a component that could lead
    anywhere but down one directory (empty, ``.``, ``..``, a NUL).
    """
    if name == "manifest":
        return None
    top, _, rest = name.partition("/")
    if top != "rootfs":
        raise _Refused("only manifest and rootfs/... are unpacked")
    parts = rest.split("/") if rest else []
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            raise _Refused(f"the component {part!r} could lead outside the rootfs")
    return parts


class _Cursor:
    """The directories along one path under the rootfs, kept open from one member to the next.

    Archives list a directory's entries together, so a path mostly shares all but
    its last components with the one before: moving costs the components that
    differ, not the depth (a deep tree unpacks in time linear in its size). Every
    component is opened with ``O_NOFOLLOW|O_DIRECTORY`` (a symlink or a file on
    the way refuses the path). Nothing is removed or renamed while unpacking, so a
    directory kept open is still the one at its path. At most ``KEPT_OPEN``
    directories stay open; a move above them walks again from the rootfs.
    """

    KEPT_OPEN = 256

    def __init__(self, rootfs_fd: int) -> None:
        self._root = rootfs_fd
        self._parts: list[str] = []  # the path the cursor is at
        self._fds: list[int] = []  # fds of the deepest len(self._fds) directories of that path

    def at(self, parts: list[str], create: bool) -> int:
        """An fd of the directory ``parts`` (borrowed: valid until the next call), opened without following a link.

        ``create`` makes missing directories (mode 0755). Raises _Refused where a
        component is a symlink or not a directory.
        """
        common = 0
        while common < min(len(parts), len(self._parts)) and parts[common] == self._parts[common]:
            common += 1
        kept_from = len(self._parts) - len(self._fds)  # the first component whose directory is kept open
        if 0 < common <= kept_from:  # the directory to go on from is no longer open: walk from the rootfs
            common = 0
        while len(self._parts) > common:
            self._parts.pop()
            if self._fds:  # the kept fds are those of the deepest components
                os.close(self._fds.pop())
        for part in parts[common:]:
            parent = self._fds[-1] if self._fds else self._root
            if create:
                # An entry already there is opened below, where a symlink or a file is refused.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=parent)
            try:
                fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=parent)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    path = "/".join(["rootfs", *self._parts, part])
                    raise _Refused(f"{path} is a symlink or a file: nothing is written through it") from None
                raise
            self._parts.append(part)
            self._fds.append(fd)
            if len(self._fds) > self.KEPT_OPEN:
                os.close(self._fds.pop(0))
        return self._fds[-1] if self._parts else self._root

    def close(self) -> None:
        """Close every directory kept open."""
        while self._fds:
            os.close(self._fds.pop())
        self._parts.clear()


class Extractor:
    """Writes members under an opened rootfs directory, on its own safe against any member (defence in depth).

    Every path is walked one component at a time from ``rootfs_fd`` with
    ``O_NOFOLLOW|O_DIRECTORY`` (a symlink or file on the way refuses the member);
    files are created with ``O_EXCL|O_NOFOLLOW``, directories, symlinks and hard
    links with ``dir_fd``: an existing entry is never replaced, a symlink never
    followed. A hard link may only name a regular file this extractor wrote,
    found without following a symlink. Owners (as root), modes and times are set
    on the entry itself; directories get theirs in :meth:`finish`, after their
    children. Set-uid and set-gid bits of files are dropped unless ``allow_setuid``.
    """

    def __init__(self, rootfs_fd: int, allow_setuid: bool) -> None:
        self._cursor = _Cursor(rootfs_fd)
        self._file_mode_bits = 0o7777 if allow_setuid else 0o7777 & ~_SET_ID_BITS
        self._chown = os.geteuid() == 0  # only root can give files their image owners
        self._files: set[bytes] = set()
        self._directories: list[tuple[tuple[str, ...], tarfile.TarInfo]] = []

    def add(self, member: tarfile.TarInfo, contents: Iterator[bytes]) -> None:
        """Write ``member`` (a regular one's bytes are ``contents``); raises _Refused or OSError."""
        parts = _rootfs_parts(member.name)
        if parts is None:
            return
        if not parts or member.isdir():
            if not member.isdir():
                raise _Refused("rootfs must be a directory")
            if parts:
                self._directory(parts)
            self._directories.append((tuple(parts), _metadata_only(member)))
            return
        if member.islnk():
            self._hard_link(parts, member.linkname)
            self._files.add(name_key(member.name))
            return
        parent = self._cursor.at(parts[:-1], create=True)
        if member.isreg():
            self._file(parent, parts[-1], member, contents)
            self._files.add(name_key(member.name))
        elif member.issym():
            os.symlink(member.linkname, parts[-1], dir_fd=parent)
            self._set_metadata(parts[-1], member, dir_fd=parent)
        else:
            raise _Refused("only files, directories and links are written")

    def finish(self) -> None:
        """Give each directory its owner, mode and time after everything inside it; close what is open.

        In descending order of their components every directory comes after all
        that is inside it, and one directory is next to the one before (the cursor
        moves little).
        """
        try:
            for parts, member in sorted(self._directories, key=lambda entry: entry[0], reverse=True):
                self._set_metadata(self._cursor.at(list(parts), create=False), member)
        finally:
            self.close()

    def close(self) -> None:
        """Close the directories kept open (also when unpacking stops early)."""
        self._cursor.close()

    def _directory(self, parts: list[str]) -> None:
        """Make the directory ``parts``, or keep the one there: never through or in place of a symlink."""
        self._cursor.at(parts, create=True)

    def _file(self, parent: int, name: str, member: tarfile.TarInfo, contents: Iterator[bytes]) -> None:
        """Create the regular file ``name`` in ``parent`` with ``contents``; it must not exist yet."""
        fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        with open(fd, "wb") as file:
            for piece in contents:
                file.write(piece)
            file.flush()
            self._set_metadata(fd, member)

    def _hard_link(self, parts: list[str], target: str) -> None:
        """Link ``parts`` to ``target``, a regular file written earlier, found without following links."""
        target_parts = _rootfs_parts(target)
        if not target_parts or name_key(target) not in self._files:
            raise _Refused(f"the hard-link target {target!r} is not a regular file written earlier")
        target_parent = os.dup(self._cursor.at(target_parts[:-1], create=False))  # the cursor moves on below
        try:
            if not stat.S_ISREG(os.stat(target_parts[-1], dir_fd=target_parent, follow_symlinks=False).st_mode):
                raise _Refused(f"the hard-link target {target!r} is not a regular file")
            parent = self._cursor.at(parts[:-1], create=True)
            os.link(target_parts[-1], parts[-1], src_dir_fd=target_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(target_parent)

    def _set_metadata(self, entry: int | str, member: tarfile.TarInfo, dir_fd: int | None = None) -> None:
        """Owner, mode and time of ``entry``: an fd, or a symlink's name in ``dir_fd`` (which keeps its mode)."""
        if isinstance(entry, int):
            if self._chown:
                os.fchown(entry, member.uid, member.gid)  # before the mode: a chown clears set-uid bits
            bits = 0o7777 if member.isdir() else self._file_mode_bits
            os.fchmod(entry, member.mode & bits)
            os.utime(entry, (member.mtime, member.mtime))
            return
        if self._chown:
            os.chown(entry, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.utime(entry, (member.mtime, member.mtime), dir_fd=dir_fd, follow_symlinks=False)


def _metadata_only(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A small copy of a directory member that keeps what :meth:`Extractor.finish` sets (not its PAX headers)."""
    kept = tarfile.TarInfo()
    kept.type, kept.mode, kept.mtime = member.type, member.mode, member.mtime
    kept.uid, kept.gid = member.uid, member.gid
    return kept


class _Digesting:
    """A binary file read forward; every byte read goes into a sha512."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha512()

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._hash.update(data)
        return data

    def hexdigest_to_end(self) -> str:
        """The hex sha512 of all the bytes from where reading started to the end of the file."""
        while self.read(PIECE_SIZE):
            pass
        return self._hash.hexdigest()


def unpack_image(file: BinaryIO, shown: str, bundle: str, *, allow_setuid: bool = False) -> Unpacked:
    """Unpack the ACI read from ``file`` into ``bundle/rootfs``, reading it once; return its manifest and digest.

    Input: ``file`` opened for binary reading, read from where it is to its end
    (the digest covers exactly those bytes, compressed as they are); ``shown``
    names the image in messages; ``bundle`` an existing private directory
    without a ``rootfs``. Each member is judged, then written, as it passes; the
    manifest is validated at the end with the end-of-archive checks. The first
    refusal raises Nix2AciError (one line naming the member and the rule); what
    was written stays inside ``bundle``.
    """
    raw = _Digesting(file)
    rules = ArchiveRules(shown)
    members = AciMembers(raw, rules)
    judge = Judge(shown, rules, allow_setuid)
    bundle_fd = os.open(bundle, _DIRECTORY_FLAGS)
    try:
        os.mkdir("rootfs", 0o700, dir_fd=bundle_fd)
        rootfs_fd = os.open("rootfs", _DIRECTORY_FLAGS, dir_fd=bundle_fd)
    finally:
        os.close(bundle_fd)
    extractor = Extractor(rootfs_fd, allow_setuid)
    try:
        _unpack_members(members, judge, extractor, shown)
        manifest, problems = checked_manifest(members.reading())
        if manifest is None:
            raise Nix2AciError(f"{shown} is not a valid ACI: {problems[0]}")
        extractor.finish()
        return Unpacked(manifest, raw.hexdigest_to_end())
    except Unreadable as error:
        raise Nix2AciError(f"{shown} is not a valid ACI: {error}") from None
    except NotChecked as error:
        raise Nix2AciError(f"{shown} is not unpacked: {error}") from None
    except OSError as error:
        raise Nix2AciError(f"{shown}: {error.strerror or error}") from None
    finally:
        extractor.close()
        os.close(rootfs_fd)


def _unpack_members(members: AciMembers, judge: Judge, extractor: Extractor, shown: str) -> None:
    """Judge and write each member of ``members``; the first refusal raises Nix2AciError."""
    for member in members:
        refusal = judge.refusal(member)
        if refusal is not None:
            raise Nix2AciError(refusal)
        try:
            extractor.add(member, members.contents(member))
        except (_Refused, OSError, ValueError, OverflowError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise Nix2AciError(f"{shown}: member {member.name!r} is not unpacked: {reason}") from None

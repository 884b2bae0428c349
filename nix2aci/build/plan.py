"""Plans: what an image's file tree holds, as data.

A plan is a stream of :class:`Entry` (path in the image, kind, mode, owner,
and where the bytes come from) in plan order: by the bytes of the path, each
path once. Fat, static and profile layouts are ways of making one; the archive
writer turns one into tar bytes without knowing what image format it serves.
Trees copied from the host are generated while they are written, so a plan
holds in memory only what nix2aci makes itself (profile, basics, directories).
"""

from __future__ import annotations

import enum
import heapq
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator, Sequence

import attrs

from ..errors import Nix2AciError

DIRECTORY_MODE = 0o755
# Store paths themselves are not part of any profile.
PROFILE_SKIP = {"nix-support"}


class Kind(enum.Enum):
    """The kinds of file an image holds."""

    DIRECTORY = "directory"
    FILE = "file"
    SYMLINK = "symlink"


@attrs.frozen
class Entry:
    """One file of an image.

    ``path`` is relative to the image root, without a leading ``/`` (``bin/sh``).
    A FILE takes its bytes from the host file ``source`` (``size`` bytes) or from
    ``content``; a SYMLINK points at ``target``. A DIRECTORY of a profile that
    mirrors one package's directory names it in ``source`` (see :func:`collapse`).
    """

    path: str
    kind: Kind
    mode: int
    uid: int = 0
    gid: int = 0
    source: str | None = None
    content: bytes | None = None
    size: int = 0
    target: str | None = None

    def under(self, prefix: str) -> Entry:
        """The same entry with ``prefix/`` in front of its path."""
        # Not attrs.evolve, which looks the fields up for every call: images have 100,000s of entries.
        path = f"{prefix}/{self.path}" if self.path else prefix
        return Entry(
            path=path,
            kind=self.kind,
            mode=self.mode,
            uid=self.uid,
            gid=self.gid,
            source=self.source,
            content=self.content,
            size=self.size,
            target=self.target,
        )


def directory(path: str, mode: int = DIRECTORY_MODE, source: str | None = None) -> Entry:
    """A directory entry made by nix2aci (not copied from the store); ``source``: the package directory it mirrors."""
    return Entry(path, Kind.DIRECTORY, mode, source=source)


def file_with_content(path: str, content: bytes, mode: int = 0o644) -> Entry:
    """A regular file whose bytes nix2aci writes itself."""
    return Entry(path, Kind.FILE, mode, content=content, size=len(content))


def symlink(path: str, target: str) -> Entry:
    """A symlink entry."""
    return Entry(path, Kind.SYMLINK, 0o777, target=target)


def sort_key(entry: Entry) -> bytes:
    """The order of a plan: the path's bytes, which put every directory before its contents."""
    return os.fsencode(entry.path)


def copy_tree(source: str, path: str) -> Iterator[Entry]:
    """Entries for the host tree at ``source`` placed at ``path`` in the image, in plan order.

    Generated as the tree is walked: a closure of any number of files costs the
    memory of one directory's names per level. Symlinks are kept as symlinks and
    never followed, so loops such as ``posix -> .`` cost one entry. Hardlinks
    become independent regular files: whether the host store was optimised must
    not change the image. Modes come from the host (the store's are already
    normalised); owners are root's.
    """
    entry = _host_entry(source, path)
    yield entry
    if entry.kind is Kind.DIRECTORY:
        yield from _directory_contents(source, path)


def _host_entry(source: str, path: str) -> Entry:
    """The entry of the one host file ``source`` at ``path``; directories without their contents."""
    info = os.lstat(source)
    permissions = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return symlink(path, os.readlink(source))
    if stat.S_ISREG(info.st_mode):
        return Entry(path, Kind.FILE, permissions, source=source, size=info.st_size)
    if stat.S_ISDIR(info.st_mode):
        return Entry(path, Kind.DIRECTORY, permissions)
    raise Nix2AciError(f"{source}: only directories, regular files and symlinks can go into an image")


def _directory_contents(source: str, path: str) -> Iterator[Entry]:
    """Everything below the host directory ``source``, placed below ``path``, in plan order.

    A subdirectory ``d`` comes where ``d`` sorts, its contents where ``d/`` does:
    a sibling such as ``d-1`` sorts between the two.
    """
    pieces = []  # (sort key, the entry, or the host directory whose contents go there, and its path)
    for name in os.listdir(source):
        host, child = os.path.join(source, name), f"{path}/{name}" if path else name
        entry = _host_entry(host, child)
        pieces.append((os.fsencode(name), entry, None))
        if entry.kind is Kind.DIRECTORY:
            pieces.append((os.fsencode(name) + b"/", host, child))
    for _, piece, child in sorted(pieces, key=lambda item: item[0]):
        if child is None:
            yield piece
        else:
            yield from _directory_contents(piece, child)


def store_copies(paths: Iterable[str]) -> Iterator[Entry]:
    """The whole trees of ``paths`` (sorted store paths) at the same place in the image, in plan order.

    The directories the store lies in are not among them (see :func:`store_directories`).
    """
    for path in paths:
        yield from copy_tree(path, path.lstrip("/"))


def mount_points(paths: Iterable[str]) -> list[Entry]:
    """An empty directory for each store path in ``paths``, where a thin image mounts the host's copy."""
    return [directory(path.lstrip("/"), 0o555) for path in paths]


def store_directories(paths: Iterable[str]) -> list[Entry]:
    """The directories the store ``paths`` lie in (``nix`` and ``nix/store`` for Nix's default store), in plan order.

    Explicit, as tar members should be; taken from the paths themselves, so a store
    elsewhere (Nix's ``storeDir``) is planned as well.
    """
    parents = {parent for path in paths for parent in _ancestors(path.strip("/"))}
    return sorted_plan(directory(parent) for parent in parents)


def _ancestors(path: str) -> Iterator[str]:
    """The relative directories above ``path``: ``a/b/c`` -> ``a/b``, ``a``."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


class Profile:
    """A merged profile of ``packages`` at the image root, like nixpkgs' buildEnv.

    Directories that several packages provide are real and shared; every file or
    symlink of a package in them becomes a symlink to it in the store. A package's
    symlink to a directory (``sbin -> bin``) is merged as that directory, so it
    cannot hide another package's files.
    Two packages that provide the same file are an error naming both, unless one
    of them is in ``prefer``: then the one earlier in ``prefer`` provides it.

    ``entries`` ({path: Entry}, in no particular order) is the profile planned so
    far. A directory only one package provides is planned unopened, as a
    DIRECTORY whose ``source`` is that package's directory, and opened only when
    another package's directory meets it or :meth:`reveal` needs to look inside:
    a package's ``lib`` of thousands of files costs one entry, and
    :func:`collapse` makes it one symlink.
    """

    def __init__(self, packages: Sequence[str], prefer: Sequence[str] = ()) -> None:
        for package in prefer:
            if package not in packages:
                raise Nix2AciError(f"prefer: {package} is not one of the packages")
        self._preference = {package: index for index, package in enumerate(prefer)}
        self.entries: dict[str, Entry] = {}
        self._owners: dict[str, str] = {}
        # Unopened directory -> (its package, the directories it lies in and itself).
        self._unopened: dict[str, tuple[str, tuple[tuple[int, int], ...]]] = {}
        for package in packages:
            visiting = (directory_identity(package),)
            for name in sorted(os.listdir(package)):
                if name not in PROFILE_SKIP:
                    self._add(package, os.path.join(package, name), name, visiting)

    def reveal(self, path: str) -> None:
        """Open the unopened directories ``path`` lies in, so that ``path in entries`` says whether it is planned."""
        parts = path.split("/")
        for end in range(1, len(parts)):
            self._open("/".join(parts[:end]))

    def _rank(self, package: str) -> int:
        return self._preference.get(package, len(self._preference))

    def _open(self, path: str) -> None:
        if path in self._unopened:
            package, visiting = self._unopened.pop(path)
            host = self.entries[path].source
            for name in sorted(os.listdir(host)):
                self._add(package, os.path.join(host, name), f"{path}/{name}", visiting)

    def _add(self, package: str, host: str, path: str, visiting: tuple[tuple[int, int], ...]) -> None:
        # A directory is known by its device and inode, which one stat gives
        # (following symlinks), to stop at a symlink back to a directory being merged.
        identity = directory_identity(host)
        is_directory = identity is not None and identity not in visiting
        if path in self._owners:
            owner = self._owners[path]
            # Equal ranks: neither is preferred.
            if is_directory or self._rank(owner) == self._rank(package):
                raise Nix2AciError(
                    f"packages {owner} and {package} both provide /{path}; "
                    "pick the one to keep with prefer = [ <package> ], or leave one out of packages"
                )
            if self._rank(owner) < self._rank(package):
                return
        if is_directory and path not in self.entries:
            self.entries[path] = directory(path, source=host)
            self._unopened[path] = (package, (*visiting, identity))
        elif is_directory:
            # Another package's directory is here: open it, then merge this one into it.
            self._open(path)
            self.entries[path] = directory(path)
            for name in sorted(os.listdir(host)):
                self._add(package, os.path.join(host, name), f"{path}/{name}", (*visiting, identity))
        elif path in self.entries and self.entries[path].kind is Kind.DIRECTORY:
            raise Nix2AciError(f"/{path} is a directory in another package and a file in {package}")
        else:
            self._owners[path] = package
            self.entries[path] = symlink(path, host)


class NotADirectory(Nix2AciError):
    """A path was to be made below ``parent``, which the image has as a ``kind`` that is not a directory."""

    def __init__(self, parent: str, kind: Kind) -> None:
        super().__init__(f"/{parent} is a {kind.value} in the image, not a directory")
        self.parent = parent
        self.kind = kind

    def below(self, path: str) -> str:
        """What is wrong with the absolute ``path`` that was to be made."""
        return f"{path} lies below /{self.parent}, a {self.kind.value} in the image, not a directory"


class Planned:
    """Where the basics and the formats look up what an image holds, while it is still being planned.

    ``entries``: what is planned as entries ({path: Entry}); ``profile``: the
    merged profile, whose unopened directories a lookup opens on the way to the
    path; ``copies`` ({image path: host path}): trees that are copied as they are
    (store paths, a static image's package), looked up on the host without
    planning them. Setting a path plans an entry there.
    """

    def __init__(
        self, entries: Iterable[Entry], profile: Profile | None = None, copies: dict[str, str] | None = None
    ) -> None:
        self.entries = {entry.path: entry for entry in entries}
        self.profile = profile
        self.copies = copies or {}

    def kind(self, path: str) -> Kind | None:
        """The kind of what is planned at ``path``; None where nothing is."""
        if path in self.entries:
            return self.entries[path].kind
        if self.profile is not None:
            self.profile.reveal(path)
            if path in self.profile.entries:
                return self.profile.entries[path].kind
        for root, host in self.copies.items():
            if path == root or path.startswith(f"{root}/" if root else ""):
                found = _host_kind(host, path[len(root) + 1 :] if root else path)
                if found is not None:
                    return found
        return None

    def __contains__(self, path: str) -> bool:
        return self.kind(path) is not None

    def __setitem__(self, path: str, entry: Entry) -> None:
        self.entries[path] = entry

    def missing_parents(self, path: str) -> list[str]:
        """The parents of ``path`` where nothing is planned, outermost first.

        Raises :class:`NotADirectory` when the nearest parent that is planned is not a
        directory: nothing can be made below a file, and nothing below a symlink,
        which would put it wherever the link points.
        """
        missing = []
        parent = posixpath.dirname(path)
        while parent and parent not in self:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        kind = self.kind(parent) if parent else Kind.DIRECTORY
        if kind is not Kind.DIRECTORY:
            raise NotADirectory(parent, kind)
        return list(reversed(missing))

    def make_parents(self, path: str) -> list[Entry]:
        """Plan a directory at each parent of ``path`` where nothing is; return them, outermost first.

        Raises :class:`NotADirectory` as :meth:`missing_parents` does.
        """
        made = [directory(parent) for parent in self.missing_parents(path)]
        for entry in made:
            self[entry.path] = entry
        return made

    def make_directory(self, path: str) -> list[Entry]:
        """:meth:`make_parents`, and a directory at ``path`` too where nothing is."""
        made = self.make_parents(path)
        if path and path not in self:
            made.append(directory(path))
            self[path] = made[-1]
        return made


def _host_kind(root: str, relative: str) -> Kind | None:
    """The kind of :func:`copy_tree`'s entry of ``root`` at ``relative``: None where it has none
    (nothing there, or the path lies in a symlink, which copy_tree never follows)."""
    host = root
    try:
        for part in [part for part in relative.split("/") if part]:
            if not stat.S_ISDIR(os.lstat(host).st_mode):
                return None
            host = os.path.join(host, part)
        mode = os.lstat(host).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    return Kind.SYMLINK if stat.S_ISLNK(mode) else Kind.FILE


def directory_identity(host: str) -> tuple[int, int] | None:
    """(device, inode) of the directory ``host`` is or links to; None for anything else or a dangling link."""
    try:
        info = os.stat(host)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def sorted_plan(entries: Iterable[Entry]) -> list[Entry]:
    """The entries sorted into plan order, each path once (see :func:`merged`)."""
    return list(merged(sorted(entries, key=sort_key)))


def merged(*streams: Iterable[Entry]) -> Iterator[Entry]:
    """The entries of ``streams``, each in plan order, as one stream in plan order, each path once.

    The same directory may be planned twice (a profile and the store both make
    ``nix``) only with the same mode and owner; it then mirrors no package (no
    ``source``). Any other repeated path is an error.
    """
    previous: Entry | None = None
    for entry in heapq.merge(*streams, key=sort_key):
        if previous is not None and entry.path == previous.path:
            previous = _one_of(previous, entry)
            continue
        if previous is not None:
            yield previous
        previous = entry
    if previous is not None:
        yield previous


def _one_of(seen: Entry, entry: Entry) -> Entry:
    """The one entry that stands for ``seen`` and ``entry``, planned at the same path."""
    if seen == entry:
        return seen
    shared = attrs.evolve(entry, source=None)
    if not (seen.kind is entry.kind is Kind.DIRECTORY and attrs.evolve(seen, source=None) == shared):
        raise Nix2AciError(f"/{entry.path} is planned twice, differently: {seen} and {entry}")
    return shared


def contained(entries: Iterable[Entry]) -> Iterator[Entry]:
    """``entries`` (in plan order, the root ``""`` first), each checked to stay inside the image.

    Every writer takes its entries through this, whatever checked them before: a
    path is relative and clean (no empty, ``.`` or ``..`` name, no NUL), and its
    parent came before it as a directory, never as a file or a symlink. So a tree
    written from them on a host file system, or extracted from an archive of
    them, goes through no link and reaches nothing outside its root. Raises
    Nix2AciError at the first entry that would not; keeps the set of the
    directories' paths (a fraction of the entries).
    """
    directories: set[str] = set()
    for entry in entries:
        path = entry.path
        if path:
            if "\0" in path or any(part in ("", ".", "..") for part in path.split("/")):
                raise Nix2AciError(
                    f"the image cannot have an entry named {path!r}: names are relative, normalised paths"
                )
            parent = path.rpartition("/")[0]
            if parent not in directories:
                raise Nix2AciError(f"/{path} would lie below /{parent}, which the image does not have as a directory")
        elif directories or entry.kind is not Kind.DIRECTORY:
            raise Nix2AciError("the image's root must come first, and be a directory")
        if entry.kind is Kind.DIRECTORY:
            directories.add(path)
        yield entry


def collapse(entries: Sequence[Entry]) -> list[Entry]:
    """Sorted ``entries`` with each profile directory that only mirrors one package's directory made one symlink to it.

    A directory mirrors its ``source`` when everything planned in it is a symlink
    to the same name in ``source`` or a directory that mirrors it too: nothing of
    another package, of the basics or of the user went into it. This is what
    nixpkgs' buildEnv makes: a single package's ``lib`` of thousands of files is
    one symlink in the image, not a directory of thousands of symlinks.
    Output: the entries, still sorted.
    """
    children: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.path:
            children.setdefault(entry.path.rpartition("/")[0], []).append(entry)
    mirrors: dict[str, bool] = {}

    def mirrors_source(entry: Entry) -> bool:
        if entry.path not in mirrors:
            mirrors[entry.path] = (
                entry.kind is Kind.DIRECTORY
                and entry.source is not None
                and all(
                    (child.kind is Kind.SYMLINK and child.target == f"{entry.source}/{posixpath.basename(child.path)}")
                    or (child.source == f"{entry.source}/{posixpath.basename(child.path)}" and mirrors_source(child))
                    for child in children.get(entry.path, ())
                )
            )
        return mirrors[entry.path]

    collapsed: list[Entry] = []
    left_out: set[str] = set()  # what a symlink now stands for; a parent comes before its children
    for entry in entries:
        if entry.path.rpartition("/")[0] in left_out and entry.path:
            left_out.add(entry.path)
        elif entry.path and mirrors_source(entry):
            collapsed.append(symlink(entry.path, entry.source))
            left_out.add(entry.path)
        else:
            collapsed.append(entry)
    return collapsed

"""Opening the files a user names (images, manifests, layouts, keyrings, signatures): at once, or a clear error.

A path is opened once, without blocking (a FIFO with no writer would block an
open or a read forever), and judged by ``fstat`` on the opened descriptor, so
what is read is what was judged: it must be a regular file. :func:`open_input`
follows links (images in ./ACIs are links into the Nix store);
:func:`open_beneath` opens a file inside a directory the user named (a blob of
an OCI layout, a bundle's config.json) without following any link below it, but
for a last link into the Nix store where the caller allows it (nix2aci's layouts
link their layers' own outputs).
Refusals raise :class:`InputError`, one line naming the file and what it is.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from .errors import Nix2AciError

# Open for reading without blocking, without becoming our controlling terminal, not inherited by children.
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


# The errors of open() that lstat explains.
_ASK = (errno.ENXIO, errno.ENOTDIR)


class InputError(Nix2AciError):
    """A named file that cannot be read as a regular file (exit status 2 in the CLI: the command line names it).

    ``reason`` completes "``what`` PATH ...": ``does not exist``, ``is a FIFO,
    not a regular file``; ``missing`` tells a path that does not exist apart.
    """

    def __init__(self, what: str, path: str, reason: str, missing: bool = False) -> None:
        super().__init__(f"{what} {shown(path)} {reason}")
        self.reason = reason
        self.missing = missing


def shown(path: str) -> str:
    """``path`` as it can be printed on one line: unchanged when printable, else Python's escaped form."""
    return path if path.isprintable() else repr(path)


def kind_of(mode: int) -> str:
    """What a file of ``mode`` (``st_mode``) is, with its article: "a regular file", "a FIFO"."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _reason(error: OSError, path: str, dir_fd: int | None = None, follow_links: bool = True) -> str:
    """Why opening ``path`` (with or without ``follow_links``) failed, as the end of "``what`` PATH ..."."""
    if error.errno == errno.ENOENT:
        return "does not exist"
    try:
        # ENXIO: a socket; ENOTDIR: a directory component that is not one (O_NOFOLLOW on a link says so).
        found = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode if error.errno in _ASK else None
    except OSError:
        found = None
    if (error.errno == errno.ELOOP and not follow_links) or (found is not None and stat.S_ISLNK(found)):
        return "is or goes through a symbolic link (not followed here)"
    if error.errno == errno.ENXIO and found is not None:
        return f"is {kind_of(found)}, not a regular file"
    return f"cannot be opened: {error.strerror or error}"


def open_descriptor(path: str, dir_fd: int | None = None, follow_links: bool = True) -> tuple[int, int]:
    """``path`` (relative to ``dir_fd``) opened for reading without blocking: its descriptor and ``st_mode``.

    Directories open too (:mod:`nix2aci.validate` checks those); the descriptor
    stays non-blocking. Raises OSError; the caller closes the descriptor.
    """
    descriptor = os.open(path, _READ | (0 if follow_links else os.O_NOFOLLOW), dir_fd=dir_fd)
    try:
        return descriptor, os.fstat(descriptor).st_mode
    except OSError:
        os.close(descriptor)
        raise


def regular_file(descriptor: int, mode: int, what: str, path: str) -> BinaryIO:
    """The opened ``descriptor`` as a blocking binary file if ``mode`` is a regular file's; else closed, InputError."""
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise InputError(what, path, f"is {kind_of(mode)}, not a regular file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def open_input(path: str, what: str) -> BinaryIO:
    """The regular file at ``path`` (links followed), opened for reading; ``what`` names it in errors ("image").

    Raises InputError, at once, for a path that does not exist, cannot be opened,
    or is not a regular file (a directory, FIFO, socket or device).
    """
    try:
        descriptor, mode = open_descriptor(path)
    except OSError as error:
        raise InputError(what, path, _reason(error, path), error.errno == errno.ENOENT) from None
    return regular_file(descriptor, mode, what, path)


def store_dir() -> str:
    """The Nix store directory: ``$NIX_STORE_DIR`` (Nix's setting), ``$NIX_STORE`` (a build's), or ``/nix/store``."""
    return (os.environ.get("NIX_STORE_DIR") or os.environ.get("NIX_STORE") or "/nix/store").rstrip("/") or "/"


def open_beneath(root: str, relative: str, what: str, store_links: bool = False) -> BinaryIO:
    """The regular file ``relative`` (``a/b/c``) inside the directory ``root``, found without following a link.

    ``root`` itself may be a link (the user named it); no component of
    ``relative`` may be one, nor ``.``, ``..`` or empty. With ``store_links``,
    the last component may be a link to a normalised absolute path in the Nix
    store (:func:`store_dir`), which is opened as this function opens a file
    beneath the store: no further link. Errors name ``relative`` (InputError, as
    :func:`open_input`).
    """
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InputError(what, relative, "must be a plain relative path (no empty, '.' or '..' components)")
    try:
        directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise InputError("directory", root, _reason(error, root), error.errno == errno.ENOENT) from None
    part, link = parts[0], None
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            os.close(directory)
            directory = inner
        part = parts[-1]
        try:
            descriptor, mode = open_descriptor(part, dir_fd=directory, follow_links=False)
        except OSError as error:
            if not (store_links and error.errno == errno.ELOOP):
                raise
            link = os.readlink(part, dir_fd=directory)
    except OSError as error:
        reason = _reason(error, part, directory, follow_links=False)
        raise InputError(what, relative, reason, error.errno == errno.ENOENT) from None
    finally:
        os.close(directory)
    if link is not None:
        return _open_in_store(link, what, relative)
    return regular_file(descriptor, mode, what, relative)


def _open_in_store(target: str, what: str, relative: str) -> BinaryIO:
    """The regular file the link ``relative`` points at, ``target``, which must lie in the Nix store; opened
    without following another link. InputError naming ``relative`` otherwise."""
    store = store_dir()
    inside = target.removeprefix(store + "/")
    if inside == target or os.path.normpath(target) != target:
        raise InputError(
            what, relative, f"is a symbolic link to {shown(target)}, which is not in the Nix store {store}"
        )
    try:
        return open_beneath(store, inside, what)
    except InputError as error:
        raise InputError(what, relative, f"is a symbolic link to {shown(target)}, which {error.reason}") from None

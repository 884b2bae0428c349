"""Replacing a file or a symlink in one rename, and refusing to replace what is not nix2aci's.

One helper (:func:`replace_with`) serves postprocess (image links, GC roots),
signing (``.asc`` files, the exported public key), build-thin (its links) and
the trust store: a temporary next to the destination, an optional check, one
``rename``. Readers see the old entry or the whole new one, never a part; if
anything fails (or we are interrupted) before the rename, the destination is
untouched and the temporary removed.

**A link nix2aci made** (:func:`made_by_nix2aci`) is a symlink whose target,
exactly as written, is either

- a normalised absolute path inside the Nix store (:func:`nix2aci.inputs.store_dir`,
  as Nix says): what ``postprocess.sh`` links, and every other link into the
  store, whose target is immutable and can be linked again, so replacing the
  link loses nothing; or
- ``.NAME-result/FILE``, where ``NAME`` is the link's own name without its
  ``.aci``/``.mounts`` suffix and ``FILE`` one file name: what ``build-thin``
  links through the result link ``nix-build -o`` made.

Anything else at an image's name (a regular file, a link pointing elsewhere,
a directory) is the user's, and is replaced only when they pass ``--force``
(a directory never).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable

from ..errors import Nix2AciError
from ..inputs import store_dir

TEMPORARY_MARK = ".nix2aci-tmp-"
# The suffixes of the names postprocess and build-thin link.
LINKED_SUFFIXES = (".aci", ".mounts")


def temporary_path(path: str) -> str:
    """A fresh name next to ``path`` for replacing it atomically.

    ``.<name>.nix2aci-tmp-<pid>-<random>``: hidden, in the same directory (so
    rename is atomic), and naming its writer so :func:`remove_stale_temporaries`
    can tell a dead run's leftover from a live run's file.
    """
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove the temporaries of ``path`` left by runs that died (killed between write and rename).

    Returns the removed paths. Temporaries of live processes are left alone.
    """
    directory, name = os.path.split(path)
    prefix = f".{name}{TEMPORARY_MARK}"
    removed = []
    for entry in os.listdir(directory or "."):
        match = re.fullmatch(r"(\d+)-[0-9a-f]+", entry[len(prefix) :]) if entry.startswith(prefix) else None
        if match and not _alive(int(match.group(1))):
            stale = os.path.join(directory, entry)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
                removed.append(stale)
    return removed


def replace_with(path: str, make: Callable[[str], object], check: Callable[[str], object] | None = None) -> None:
    """Replace ``path`` by what ``make(temporary)`` creates, in one rename.

    First removes dead runs' temporaries of ``path``. ``check(temporary)``,
    when given, runs after ``make`` and before the rename: if it raises,
    nothing is replaced. On any failure or interruption the temporary is removed.
    """
    remove_stale_temporaries(path)
    temporary = temporary_path(path)
    try:
        make(temporary)
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomically(path: str, data: bytes, mode: int = 0o644, check: Callable[[str], object] | None = None) -> None:
    """Replace ``path`` by a regular file of ``data`` (fsynced, mode ``mode``), as :func:`replace_with` does."""

    def make(temporary: str) -> None:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)  # regardless of the umask

    replace_with(path, make, check)


def replace_symlink(path: str, target: str) -> None:
    """Make ``path`` a symlink to ``target`` (text written as given), as :func:`replace_with`."""
    replace_with(path, lambda temporary: os.symlink(target, temporary))


# --- Whose is it? ------------------------------------------------------------------


def in_nix_store(path: str) -> bool:
    """Whether ``path`` (symlinks resolved) lies in the Nix store."""
    return os.path.realpath(path).startswith(os.path.realpath(store_dir()) + os.sep)


def _names_the_store(target: str) -> bool:
    """Whether a link's ``target`` text is a normalised absolute path strictly inside the Nix store."""
    stores = {store_dir().rstrip("/"), os.path.realpath(store_dir())}
    return os.path.normpath(target) == target and any(target.startswith(store + "/") for store in stores)


def _names_its_result_link(link: str, target: str) -> bool:
    """Whether ``target`` is ``.NAME-result/FILE`` for the link ``.../NAME.aci`` (or ``NAME.mounts``)."""
    name = os.path.basename(link)
    for suffix in LINKED_SUFFIXES:
        if name.endswith(suffix):
            result, separator, file = target.partition("/")
            return (
                result == f".{name.removesuffix(suffix)}-result"
                and bool(separator)
                and file not in ("", ".", "..")
                and "/" not in file
            )
    return False


def made_by_nix2aci(path: str) -> bool:
    """Whether ``path`` is a symlink nix2aci made (see the module's docstring); False if absent."""
    try:
        target = os.readlink(path)
    except OSError:  # absent, or not a symlink
        return False
    return _names_the_store(target) or _names_its_result_link(path, target)


def _foreign(path: str) -> str | None:
    """What the user has at ``path`` that nix2aci did not make (``"a regular file"`` ...), or None."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(status.st_mode):
        return None if made_by_nix2aci(path) else f"a link to {os.readlink(path)}"
    if stat.S_ISREG(status.st_mode):
        return "a regular file"
    return "a directory" if stat.S_ISDIR(status.st_mode) else "a special file"


def refuse_foreign(paths: list[str], force: bool, shown: Callable[[str], str] = str) -> None:
    """Raise one line naming every path of ``paths`` that holds something of the user's.

    A directory or special file is always refused; a regular file or a link
    nix2aci did not make only without ``force``. ``shown`` turns a path into
    what the message shows. Nothing is changed either way.
    """
    found = {path: what for path in paths if (what := _foreign(path))}
    never = [f"{shown(path)} ({what})" for path, what in found.items() if what in ("a directory", "a special file")]
    if never:
        raise Nix2AciError(f"will not replace {', '.join(never)}: move it away; nix2aci never replaces those")
    if found and not force:
        listed = ", ".join(f"{shown(path)} ({what})" for path, what in found.items())
        raise Nix2AciError(f"will not replace {listed}, not made by nix2aci: move it away, or rerun with --force")

"""``nix2aci validate``: exactly the spec, for every kind of input nix2aci knows.

Input: paths of ACIs (plain tar, or compressed as :data:`nix2aci.aci.members.COMPRESSIONS`
allow), ACI manifests, unpacked ACI image layouts (kind ``layout``, appc's "image
layout"), OCI runtime bundles, OCI image layouts and docker-archives (a tar, or a
directory holding exactly one, as buildOCIImage writes it: :mod:`nix2aci.oci.archive_check`);
the kind is detected when not given. Output: one :class:`Verdict` per path: valid, invalid (with every
problem found), or not checked (with the reason), plus spec-valid warnings.
Every check is the one the builders run on what they write.

Whatever the input, a check ends in a verdict, in bounded time per byte and in
bounded memory: inputs are read forward once with size limits (see
:mod:`nix2aci.aci.members`), and what is beyond a limit is "not checked", never a guess.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import Any, BinaryIO

import attrs

from . import inputs
from .aci.members import MAX_MANIFEST_SIZE, read_aci
from .appc import ImageManifest
from .archive.read import is_tar_header
from .errors import NotChecked, SpecError
from .oci import archive_check, runtime
from .oci import layout as oci_layout
from .schema import join_path, parse_json, prefixed, show

KINDS = ("aci", "manifest", "layout", "oci-bundle", "oci-layout", "docker-archive")
# The spec allows encrypted ACIs (PGP, AES), which cannot be read without their key.
_PGP_ARMOR = b"-----BEGIN PGP MESSAGE-----"
# OpenPGP packet tag -> the versions of that packet (RFC 4880, RFC 9580): the
# session key packets an encrypted message starts with.
_SESSION_KEY_PACKETS = {1: (3, 6), 3: (4, 5, 6)}


@attrs.frozen
class Verdict:
    """What checking one input found; ``not_checked`` is the reason when it could not be checked."""

    path: str
    kind: str
    problems: tuple[SpecError, ...] = ()
    warnings: tuple[str, ...] = ()
    not_checked: str | None = None


def detect_directory(path: str) -> str:
    """The kind of the directory at ``path``, by the files in it."""
    if os.path.lexists(os.path.join(path, "oci-layout")):
        return "oci-layout"
    if archive_check.archive_in(path):
        return "docker-archive"
    if os.path.lexists(os.path.join(path, "config.json")):
        return "oci-bundle"
    return "layout"


def detect_file(path: str, head: bytes) -> str:
    """The kind of the file ``path`` starting with ``head`` (its first 512 bytes): a manifest, a docker-archive
    or an ACI.

    A file is a manifest when it starts (after a byte order mark and white
    space) like a JSON object or array and not with a tar header; a
    docker-archive when it is an uncompressed tar whose name does not end in
    .aci (an ACI's must); else an ACI.
    """
    if is_tar_header(head):
        return "aci" if path.endswith(".aci") else "docker-archive"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return "manifest" if text[:1] in (b"{", b"[") else "aci"


def _is_encrypted(head: bytes) -> bool:
    """Whether ``head`` starts an OpenPGP encrypted message (armored, or a session key packet)."""
    if head.startswith(_PGP_ARMOR):
        return True
    if len(head) < 3 or not head[0] & 0x80:
        return False
    if head[0] & 0x40:  # new format: tag in 6 bits, then a 1- or 2-octet length
        tag, body = head[0] & 0x3F, 3 if 192 <= head[1] < 224 else 2
    else:  # old format: tag in 4 bits, then a length of 1, 2 or 4 octets
        tag, body = (head[0] >> 2) & 0x0F, 1 + (1, 2, 4, 0)[head[0] & 0x03]
    return len(head) > body and head[body] in _SESSION_KEY_PACKETS.get(tag, ())


def _read_json(file: BinaryIO) -> tuple[Any, list[str]]:
    """The JSON value of an opened file of at most ``MAX_MANIFEST_SIZE`` bytes, and its warnings.

    Raises SpecError (field "") for what is not JSON, NotChecked for a bigger file.
    """
    data = file.read(MAX_MANIFEST_SIZE + 1)
    if len(data) > MAX_MANIFEST_SIZE:
        raise NotChecked(f"it is over {MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
    parsed = parse_json(data)
    return parsed.value, list(parsed.warnings)


def _read_json_beneath(root: str, name: str, rule: str) -> tuple[Any, list[str]]:
    """The JSON file ``name`` of the directory ``root`` (a regular file, not a link), as :func:`_read_json` reads it.

    Raises SpecError (field ``name``) for what is not JSON, and with ``rule`` for
    what is not a regular file (a link, a directory, a FIFO: never read).
    """
    try:
        with inputs.open_beneath(root, name, name) as file:
            return _read_json(file)
    except inputs.InputError:
        raise SpecError(name, rule) from None
    except SpecError as error:
        raise SpecError(name, error.rule) from None


def _manifest_findings(document: Any, prefix: str) -> tuple[list[SpecError], list[str]]:
    """The problems and warnings of a manifest document."""
    problems = list(prefixed(prefix, ImageManifest.problems(document)))
    if problems:
        return problems, []
    return [], [join_path(prefix, warning) for warning in ImageManifest.from_json(document).warnings]


def _check_aci(path: str, file: BinaryIO) -> tuple[list[SpecError], list[str]]:
    """An ACI file (opened): the archive rules (spec/aci.md) and its manifest."""
    head = file.read(tarfile.BLOCKSIZE)
    if _is_encrypted(head) and not is_tar_header(head):
        raise NotChecked("it is PGP-encrypted, which the spec allows; decrypt it to check it")
    reading = read_aci(path, file)
    if reading.document is None:
        return list(reading.problems), list(reading.warnings)
    problems, warnings = _manifest_findings(reading.document, "manifest")
    return [*reading.problems, *problems], [*reading.warnings, *warnings]


def _check_manifest(path: str, file: BinaryIO) -> tuple[list[SpecError], list[str]]:
    """An ImageManifest file (opened)."""
    document, warnings = _read_json(file)
    problems, manifest_warnings = _manifest_findings(document, "")
    return problems, warnings + manifest_warnings


def _check_unpacked_aci(path: str) -> tuple[list[SpecError], list[str]]:
    """An unpacked image layout: exactly ``manifest`` (a regular file) and ``rootfs`` (a directory)."""
    problems = [
        SpecError(name, "only manifest and rootfs may be in an image layout")
        for name in sorted(os.listdir(path))
        if name not in ("manifest", "rootfs")
    ]
    rootfs = os.path.join(path, "rootfs")
    if not os.path.isdir(rootfs) or os.path.islink(rootfs):
        problems.append(SpecError("rootfs", "must be a directory"))
    try:
        document, warnings = _read_json_beneath(path, "manifest", "must be a regular file")
    except SpecError as error:
        return [*problems, error], []
    manifest_problems, manifest_warnings = _manifest_findings(document, "manifest")
    return problems + manifest_problems, [join_path("manifest", warning) for warning in warnings] + manifest_warnings


def _root_problem(bundle: str, root: str) -> SpecError | None:
    """A problem when ``root`` (config.json's root.path) is not a directory inside the bundle, links resolved.

    The root filesystem is part of the bundle (bundle.md): a ``..`` or a
    symlink may not lead out of it, and the bundle itself is not its own root.
    """
    field = "config.json.root.path"
    if "\0" not in root:  # no file name holds a NUL
        resolved = os.path.realpath(os.path.join(bundle, root))
        if not resolved.startswith(os.path.realpath(bundle).rstrip("/") + "/"):
            return SpecError(field, f"must name a directory inside the bundle; {show(root)} leads out of it")
        if os.path.isdir(resolved):
            return None
    return SpecError(field, "must name a directory of the bundle")


def _check_bundle(path: str) -> tuple[list[SpecError], list[str]]:
    """An OCI runtime bundle: a valid config.json (bundle.md: REQUIRED) whose root.path is a directory in it."""
    try:
        document, warnings = _read_json_beneath(
            path, "config.json", "must be a regular file in the bundle's directory (bundle.md)"
        )
    except SpecError as error:
        return [error], []
    problems = list(prefixed("config.json", runtime.problems(document)))
    if not problems and (root := _root_problem(path, document["root"]["path"])):
        problems.append(root)
    return problems, [join_path("config.json", warning) for warning in warnings]


def _check_oci_layout(path: str) -> tuple[list[SpecError], list[str]]:
    """An OCI image layout (image-layout.md); a referenced blob may be missing, with a warning."""
    warnings: list[str] = []
    return oci_layout.problems(path, warnings=warnings), warnings


def _check_docker_archive(path: str, file: BinaryIO) -> tuple[list[SpecError], list[str]]:
    """A docker-archive (opened): its tar, manifest.json, configs and layers (see :mod:`nix2aci.oci.archive_check`)."""
    reading = archive_check.read(file)
    return list(reading.problems), list(reading.warnings)


def _check_docker_archive_directory(path: str) -> tuple[list[SpecError], list[str]]:
    """A directory holding one docker-archive (buildOCIImage's output); its problems name it."""
    name = archive_check.archive_in(path)
    if name is None:
        return [SpecError("", "must hold exactly one .tar file to be a docker-archive's directory")], []
    with inputs.open_beneath(path, name, "docker-archive") as file:
        problems, warnings = _check_docker_archive(path, file)
    return list(prefixed(name, problems)), [join_path(name, warning) for warning in warnings]


# The checks of each kind: of an opened file, or of a directory.
FILE_CHECKS = {"aci": _check_aci, "manifest": _check_manifest, "docker-archive": _check_docker_archive}
DIRECTORY_CHECKS = {
    "layout": _check_unpacked_aci,
    "oci-bundle": _check_bundle,
    "oci-layout": _check_oci_layout,
    "docker-archive": _check_docker_archive_directory,
}


def _shape_problem(kind: str, found: str) -> SpecError:
    """The problem of a ``found`` ("directory", "file") given as ``kind``, which is the other shape."""
    article = "an" if kind[0] in "aeiou" else "a"
    wanted = "a file" if kind in FILE_CHECKS else "a directory"
    return SpecError("", f"must be {wanted} to be {article} {kind}, and this is a {found}")


def _checked(path: str, file: BinaryIO | None, kind: str) -> Verdict:
    """The verdict on ``path`` as ``kind``: the opened regular ``file``, or (None) the directory at ``path``.

    Raises NotChecked, SpecError and OSError.
    """
    checks, shape = (FILE_CHECKS, "file") if file is not None else (DIRECTORY_CHECKS, "directory")
    if kind not in checks:
        return Verdict(path, kind, (_shape_problem(kind, shape),))
    problems, warnings = checks[kind](path) if file is None else checks[kind](path, file)
    return Verdict(path, kind, tuple(problems), tuple(warnings))


def check(path: str, kind: str | None = None) -> Verdict:
    """The verdict on the input at ``path``, of ``kind`` or the detected kind; never raises.

    ``kind`` must be one of KINDS (or None). The path is opened once, without
    blocking; a file is detected and read through that one descriptor. What is
    neither a regular file nor a directory (a FIFO, a device, a socket) is not
    read: it could block or never end.
    """
    file = None
    try:
        descriptor, mode = inputs.open_descriptor(path)
        if stat.S_ISREG(mode):
            file = inputs.regular_file(descriptor, mode, "input", path)
            kind = kind or detect_file(path, file.read(tarfile.BLOCKSIZE))
            file.seek(0)
        else:
            os.close(descriptor)
            kind = kind or (detect_directory(path) if stat.S_ISDIR(mode) else "aci")
            if not stat.S_ISDIR(mode):
                return Verdict(path, kind, not_checked="it is neither a regular file nor a directory")
        return _checked(path, file, kind)
    except NotChecked as reason:
        return Verdict(path, kind or "aci", not_checked=str(reason))
    except SpecError as problem:
        return Verdict(path, kind or "aci", (problem,))
    except inputs.InputError as error:  # a file inside a directory given (a docker-archive's tar) is no regular file
        return Verdict(path, kind or "aci", (SpecError("", str(error)),))
    except OSError as error:
        if error.errno == errno.ENXIO:  # what opening a socket says
            return Verdict(path, kind or "aci", not_checked="it is neither a regular file nor a directory")
        return Verdict(path, kind or "aci", not_checked=f"it cannot be read: {error.strerror or error}")
    finally:
        if file is not None:
            file.close()

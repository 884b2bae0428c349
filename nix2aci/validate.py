"""``nix2aci validate``: exactly the spec, for every kind of input nix2aci knows.

Input: paths of ACIs (plain tar, gzip, bzip2 or xz), ACI manifests, unpacked ACI
image layouts, OCI runtime bundles and OCI image layouts; the kind is detected
when not given. Output: one :class:`Verdict` per path: valid, invalid (with every
problem found), or not checked (with the reason), plus spec-valid warnings.
Every check is the one the builders run on what they write.

Whatever the input, a check ends in a verdict, in bounded time per byte and in
bounded memory: inputs are read forward once with size limits (see
:mod:`nix2aci.aci`), and what is beyond a limit is "not checked", never a guess.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Any

import attrs

from . import aci, unarchive
from .appc import ImageManifest
from .errors import NotChecked, SpecError
from .oci import layout, runtime
from .schema import join_path, parse_json, prefixed

KINDS = ("aci", "manifest", "layout", "oci-bundle", "oci-layout")
# The kinds that are files; the others are directories.
FILE_KINDS = ("aci", "manifest")
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


def detect(path: str) -> str:
    """The kind of the input at ``path``: by the files in a directory, by the first bytes of a file.

    A file is a manifest when it starts (after a byte order mark and white
    space) like a JSON object or array and not with a tar header, else an ACI.
    Opens nothing but a regular file (a FIFO would block); anything else is
    called an ``aci``, which :func:`check` then refuses to read.
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        if os.path.exists(os.path.join(path, "oci-layout")):
            return "oci-layout"
        if os.path.exists(os.path.join(path, "config.json")):
            return "oci-bundle"
        return "layout"
    if not stat.S_ISREG(mode):
        return "aci"
    with open(path, "rb") as file:
        head = file.read(tarfile.BLOCKSIZE)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return "manifest" if text[:1] in (b"{", b"[") and not unarchive.is_tar_header(head) else "aci"


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


def _read_json(path: str) -> tuple[Any, list[str]]:
    """The JSON value of a file of at most ``aci.MAX_MANIFEST_SIZE`` bytes, and its warnings.

    Raises SpecError (field "") for what is not JSON, NotChecked for a bigger file.
    """
    with open(path, "rb") as file:
        data = file.read(aci.MAX_MANIFEST_SIZE + 1)
    if len(data) > aci.MAX_MANIFEST_SIZE:
        raise NotChecked(f"it is over {aci.MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
    parsed = parse_json(data)
    return parsed.value, list(parsed.warnings)


def _manifest_findings(document: Any, prefix: str) -> tuple[list[SpecError], list[str]]:
    """The problems and warnings of a manifest document."""
    problems = list(prefixed(prefix, ImageManifest.problems(document)))
    if problems:
        return problems, []
    return [], [join_path(prefix, warning) for warning in ImageManifest.from_json(document).warnings]


def _check_aci(path: str) -> tuple[list[SpecError], list[str]]:
    """An ACI file: the archive rules (spec/aci.md) and its manifest."""
    with open(path, "rb") as file:
        head = file.read(tarfile.BLOCKSIZE)
    if _is_encrypted(head) and not unarchive.is_tar_header(head):
        raise NotChecked("it is PGP-encrypted, which the spec allows; decrypt it to check it")
    reading = aci.read_aci(path)
    if reading.document is None:
        return list(reading.problems), list(reading.warnings)
    problems, warnings = _manifest_findings(reading.document, "manifest")
    return [*reading.problems, *problems], [*reading.warnings, *warnings]


def _check_manifest(path: str) -> tuple[list[SpecError], list[str]]:
    """An ImageManifest file."""
    document, warnings = _read_json(path)
    problems, manifest_warnings = _manifest_findings(document, "")
    return problems, warnings + manifest_warnings


def _check_layout(path: str) -> tuple[list[SpecError], list[str]]:
    """An unpacked image layout: exactly ``manifest`` (a regular file) and ``rootfs`` (a directory)."""
    problems = [
        SpecError(name, "only manifest and rootfs may be in an image layout")
        for name in sorted(os.listdir(path))
        if name not in ("manifest", "rootfs")
    ]
    manifest, rootfs = os.path.join(path, "manifest"), os.path.join(path, "rootfs")
    if not os.path.isdir(rootfs) or os.path.islink(rootfs):
        problems.append(SpecError("rootfs", "must be a directory"))
    if not os.path.isfile(manifest) or os.path.islink(manifest):
        return [*problems, SpecError("manifest", "must be a regular file")], []
    try:
        document, warnings = _read_json(manifest)
    except SpecError as error:
        return [*problems, SpecError("manifest", error.rule)], []
    manifest_problems, manifest_warnings = _manifest_findings(document, "manifest")
    return problems + manifest_problems, [join_path("manifest", warning) for warning in warnings] + manifest_warnings


def _check_bundle(path: str) -> tuple[list[SpecError], list[str]]:
    """An OCI runtime bundle: a valid config.json (bundle.md: REQUIRED) whose root.path is a directory."""
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        return [SpecError("config.json", "must be a regular file in the bundle's directory (bundle.md)")], []
    try:
        document, warnings = _read_json(config)
    except SpecError as error:
        return [SpecError("config.json", error.rule)], []
    problems = list(prefixed("config.json", runtime.problems(document)))
    if not problems and not os.path.isdir(os.path.join(path, document["root"]["path"])):
        problems.append(SpecError("config.json.root.path", "must name a directory of the bundle"))
    return problems, [join_path("config.json", warning) for warning in warnings]


def _check_oci_layout(path: str) -> tuple[list[SpecError], list[str]]:
    """An OCI image layout (image-layout.md); a referenced blob may be missing, with a warning."""
    warnings: list[str] = []
    return layout.problems(path, warnings=warnings), warnings


CHECKS = {
    "aci": _check_aci,
    "manifest": _check_manifest,
    "layout": _check_layout,
    "oci-bundle": _check_bundle,
    "oci-layout": _check_oci_layout,
}


def _shape_problem(path: str, kind: str) -> SpecError | None:
    """A problem when ``path`` is a directory but ``kind`` is a file kind, or the reverse; else None.

    Raises NotChecked for what is neither a regular file nor a directory (a
    FIFO, a device): reading it could block or never end.
    """
    mode = os.stat(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise NotChecked("it is neither a regular file nor a directory")
    article = "an" if kind[0] in "aeiou" else "a"
    if kind in FILE_KINDS and stat.S_ISDIR(mode):
        return SpecError("", f"must be a file to be {article} {kind}, and this is a directory")
    if kind not in FILE_KINDS and not stat.S_ISDIR(mode):
        return SpecError("", f"must be a directory to be {article} {kind}, and this is a file")
    return None


def check(path: str, kind: str | None = None) -> Verdict:
    """The verdict on the input at ``path``, of ``kind`` or the detected kind; never raises.

    ``kind`` must be one of KINDS (or None).
    """
    try:
        kind = kind or detect(path)
        shape = _shape_problem(path, kind)
        problems, warnings = ([shape], []) if shape else CHECKS[kind](path)
    except NotChecked as reason:
        return Verdict(path, kind or "unknown", not_checked=str(reason))
    except SpecError as problem:
        problems, warnings = [problem], []
    except OSError as error:
        return Verdict(path, kind or "unknown", not_checked=f"it cannot be read: {error.strerror or error}")
    return Verdict(path, kind, tuple(problems), tuple(warnings))

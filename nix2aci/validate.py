"""``nix2aci validate``: exactly the spec, for every kind of input nix2aci knows.

Input: paths of ACIs (plain tar, gzip, bzip2 or xz), ACI manifests, unpacked ACI
image layouts, OCI runtime bundles and OCI image layouts; the kind is detected
when not given. Output: one :class:`Verdict` per path: valid, invalid (with every
problem found), or not checked (with the reason), plus spec-valid warnings.
Every check is the one the builders run on what they write.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs

from . import aci
from .appc import ImageManifest
from .errors import NotChecked, SpecError
from .oci import layout, runtime
from .schema import prefixed

KINDS = ("aci", "manifest", "layout", "oci-bundle", "oci-layout")
# OpenPGP messages start with a packet tag byte (bit 7 set) or an ASCII armor line;
# the spec allows encrypted ACIs, which cannot be read without their key.
_PGP_ARMOR = b"-----BEGIN PGP MESSAGE-----"


@attrs.frozen
class Verdict:
    """What checking one input found; ``not_checked`` is the reason when it could not be checked."""

    path: str
    kind: str
    problems: tuple[SpecError, ...] = ()
    warnings: tuple[str, ...] = ()
    not_checked: str | None = None


def detect(path: str) -> str:
    """The kind of the input at ``path`` (an existing file or directory)."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "oci-layout")):
            return "oci-layout"
        if os.path.exists(os.path.join(path, "config.json")):
            return "oci-bundle"
        return "layout"
    with open(path, "rb") as file:
        head = file.read(64).lstrip()
    return "manifest" if head.startswith(b"{") else "aci"


def _is_encrypted(path: str) -> bool:
    """Whether the file is an OpenPGP message rather than a tar or a compressed tar."""
    with open(path, "rb") as file:
        head = file.read(len(_PGP_ARMOR))
    # Old-format packet tags 1 and 3 (encrypted session keys) and new-format 0xc1/0xc3.
    return head.startswith(_PGP_ARMOR) or (bool(head) and head[0] in (0x84, 0x85, 0x8C, 0x8D, 0xC1, 0xC3))


def _read_json(path: str) -> Any:
    """The JSON value of a file of at most ``aci.MAX_MANIFEST_SIZE`` bytes; raises SpecError or NotChecked."""
    with open(path, "rb") as file:
        data = file.read(aci.MAX_MANIFEST_SIZE + 1)
    if len(data) > aci.MAX_MANIFEST_SIZE:
        raise NotChecked(f"it is over {aci.MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise SpecError("", f"must be JSON: {error}") from None


def _manifest_findings(document: Any, prefix: str) -> tuple[list[SpecError], list[str]]:
    """The problems and warnings of a manifest document."""
    problems = list(prefixed(prefix, ImageManifest.problems(document)))
    warnings = [] if problems else ImageManifest.from_json(document).warnings
    return problems, warnings


def _check_aci(path: str) -> tuple[list[SpecError], list[str]]:
    if _is_encrypted(path):
        raise NotChecked("it is PGP-encrypted, which the spec allows; decrypt it to check it")
    document, problems = aci.read_archive(path)
    if document is None:
        return problems, []
    manifest_problems, warnings = _manifest_findings(document, "manifest")
    return problems + manifest_problems, warnings


def _check_manifest(path: str) -> tuple[list[SpecError], list[str]]:
    return _manifest_findings(_read_json(path), "")


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
    manifest_problems, warnings = _manifest_findings(_read_json(manifest), "manifest")
    return problems + manifest_problems, warnings


def _check_bundle(path: str) -> tuple[list[SpecError], list[str]]:
    """An OCI runtime bundle: a valid config.json whose root.path exists."""
    document = _read_json(os.path.join(path, "config.json"))
    problems = list(prefixed("config.json", runtime.problems(document)))
    if not problems and not os.path.isdir(os.path.join(path, document["root"]["path"])):
        problems.append(SpecError("config.json.root.path", "must name a directory of the bundle"))
    return problems, []


CHECKS = {
    "aci": _check_aci,
    "manifest": _check_manifest,
    "layout": _check_layout,
    "oci-bundle": _check_bundle,
    "oci-layout": lambda path: (layout.problems(path), []),
}


def check(path: str, kind: str | None = None) -> Verdict:
    """The verdict on the input at ``path`` (which must exist), of ``kind`` or the detected kind."""
    kind = kind or detect(path)
    try:
        problems, warnings = CHECKS[kind](path)
    except NotChecked as reason:
        return Verdict(path, kind, not_checked=str(reason))
    except SpecError as problem:
        problems, warnings = [problem], []
    except OSError as error:
        return Verdict(path, kind, not_checked=f"it cannot be read: {error.strerror or error}")
    return Verdict(path, kind, tuple(problems), tuple(warnings))

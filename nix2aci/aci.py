"""The ACI output format: a plan and the image arguments -> ``NAME-VERSION-OS-ARCH.aci``.

Input: a :class:`~nix2aci.spec.BuildSpec` of format ``aci``.
Output, in ``spec.out``: the image, and ``<image>.id`` holding its image ID
(``sha512-`` and the hex sha512 of the uncompressed tar, appc's definition).
The manifest is validated by :class:`nix2aci.appc.ImageManifest` before anything
is written.
"""

from __future__ import annotations

import bz2
import collections
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import attrs

from . import basics, plan, postprocess, tree
from .appc import ImageManifest
from .archive import ArchiveSummary, write_archive
from .errors import NotChecked, SpecError
from .schema import join_path, parse_json, prefixed
from .spec import BuildSpec

# Labels nix2aci always sets from their own arguments.
ARGUMENT_LABELS = ("version", "os", "arch")


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
    if "/" in version:
        raise SpecError("version", f"becomes part of the file name and must not contain '/', got {version!r}")
    return f"{manifest.name.rsplit('/', 1)[-1]}-{version}-{manifest.label('os')}-{manifest.label('arch')}.aci"


def store_mount_names(paths: list[str], taken: set[str]) -> dict[str, str]:
    """``{store path: AC Name}`` for the mount points of a thin image.

    A name is the store path's name made an AC Name (``glibc-host-2.36`` ->
    ``glibc-host-2-36``), so it is readable and stable across rebuilds; where two
    paths, or one of ``taken``, would share it, the path's hash tells them apart
    (``source-0abc1234``). Input paths are sorted; so is the output.
    """

    def readable(path: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "-", os.path.basename(path).split("-", 1)[-1].lower()).strip("-")
        return stem or "store-path"

    stems = {path: readable(path) for path in paths}
    counts = collections.Counter(stems.values())
    return {
        path: stem if counts[stem] == 1 and stem not in taken else f"{stem}-{os.path.basename(path)[:8]}"
        for path, stem in stems.items()
    }


def mounts_flags(host_mounts: dict[str, str]) -> str:
    """The rkt flags that give an image its host paths: ``rkt run $(cat X.mounts) X.aci``."""
    return " ".join(f"--volume={name},kind=host,source={path},readOnly=true" for path, name in host_mounts.items())


def build(spec: BuildSpec) -> AciResult:
    """Build the ACI of ``spec`` into ``spec.out``; return what was written.

    An image with host mounts (thin, or resolvConf) also gets
    ``NAME-VERSION-OS-ARCH.mounts``, its volumes as rkt flags.
    """
    host_mounts = (
        store_mount_names(spec.closure.paths_needed_by(spec.roots), set(spec.image["mounts"]))
        if spec.mode == "thin"
        else {}
    )
    if spec.rootfs["resolvConf"]:
        host_mounts["/etc/resolv.conf"] = "resolv-conf"
    image = {**spec.image, "env": basics.environment(spec.rootfs, spec.image["env"])}
    manifest = ImageManifest.from_json(manifest_document(image, host_mounts))
    manifest_bytes = (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
    entries = [
        plan.file_with_content("manifest", manifest_bytes),
        *(entry.under("rootfs") for entry in tree.image_tree(spec)),
    ]
    path = os.path.join(spec.out, file_name(manifest))
    layout = Layout(path)
    for entry in entries:
        layout.add(entry.path, entry.kind)
    if problems := layout.finish():
        raise problems[0]
    os.makedirs(spec.out, exist_ok=True)
    with open(path, "wb") as output:
        summary = write_archive(entries, output, compression=spec.compression, level=spec.compression_level)
    image_id = f"sha512-{summary.uncompressed_digest}"
    with open(f"{path}.id", "w", encoding="ascii") as id_file:
        id_file.write(image_id + "\n")
    if host_mounts:
        with open(path.removesuffix(".aci") + ".mounts", "w", encoding="utf-8") as mounts_file:
            mounts_file.write(mounts_flags(host_mounts) + "\n")
    postprocess.write_script(spec, spec.out)
    return AciResult(path=path, image_id=image_id, archive=summary)


# The largest manifest nix2aci reads: real ones are a few KiB, and a bound keeps a
# hostile archive from exhausting memory.
MAX_MANIFEST_SIZE = 1 << 20
# The most members nix2aci reads from one archive (large closures have a few
# 100,000 files). A digest of each name is kept to find duplicates: about 90 bytes
# a member, so this bounds that memory to about 100 MB.
MAX_MEMBERS = 1 << 20
# The most header bytes read for one member, PAX and GNU extensions included:
# tarfile reads each extension whole, and a hostile one may claim gigabytes.
MAX_HEADER_SIZE = MAX_MANIFEST_SIZE + (64 << 10)
# xz streams that need more memory than this are not decompressed: xz -9 needs
# 65 MiB, but a stream's header may ask for a 1.5 GiB dictionary.
XZ_MEMORY_LIMIT = 128 << 20
# Compressed bytes read at a time, and the most uncompressed bytes made at once.
_CHUNK = 1 << 16
_PIECE = 1 << 20
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)


def clean_name(name: str) -> str:
    """A member name as appc compares names: cleaned (``./a//b/`` -> ``a/b``)."""
    return posixpath.normpath(name) if name else ""


def _name_key(name: str) -> bytes:
    """A 16-byte digest standing for a cleaned name in the set of names seen (a fraction of its memory)."""
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
        key = _name_key(name)
        if key in self.seen:
            self.problems.append(SpecError(where, "duplicate entry (the archive must have each name once)"))
        self.seen.add(key)
        if name == "manifest" and kind is not plan.Kind.FILE:
            self.problems.append(SpecError(where, "manifest must be a regular file"))
        elif name == "rootfs" and kind is not plan.Kind.DIRECTORY:
            self.problems.append(SpecError(where, "rootfs must be a directory"))
        return name

    def finish(self) -> list[SpecError]:
        """All problems, including the required members that never came."""
        missing = [name for name in ("manifest", "rootfs") if _name_key(name) not in self.seen]
        return self.problems + [SpecError("", f"an ACI must contain {name}") for name in missing]


def _kind(member: tarfile.TarInfo) -> plan.Kind | None:
    """The plan kind of a tar member, None for hardlinks, devices and FIFOs."""
    if member.isdir():
        return plan.Kind.DIRECTORY
    if member.isreg():
        return plan.Kind.FILE
    return plan.Kind.SYMLINK if member.issym() else None


class _Unreadable(SpecError):
    """The archive cannot be read as a (compressed) tar; ``rule`` says why."""

    def __init__(self, rule: str) -> None:
        super().__init__("", rule)


class _Inflate:
    """zlib's decompressor of one gzip member, with the interface of bz2's and lzma's."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._zlib.unconsumed_tail

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)


# The compressions an ACI may use (spec/aci.md), by magic bytes.
_COMPRESSIONS: tuple[tuple[bytes, str, Callable[[], Any]], ...] = (
    (b"\x1f\x8b", "gzip", _Inflate),
    (b"BZh", "bzip2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", "xz", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)),
)
# Compressions it may not use, recognised to say so.
_OTHER_COMPRESSIONS = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma (the legacy .lzma format, not xz)"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x1f\x9d", "compress (.Z)"),
)


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` (512 bytes) is a tar header block with a right checksum."""
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


def _compression_named(head: bytes, compressions: Iterable[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The entry of ``compressions`` whose magic ``head`` starts with, unless ``head`` is a tar header."""
    if is_tar_header(head[: tarfile.BLOCKSIZE]):
        return None
    return next((entry for entry in compressions if head.startswith(entry[0])), None)


def _decompressed(file: BinaryIO, name: str, new: Callable[[], Any]) -> Iterator[bytes]:
    """The uncompressed bytes of ``file`` (``name`` streams, one after another) in pieces of at most _PIECE.

    Reads to the end of the file: what follows a stream must be another one
    (gzip, bzip2 and xz files may be concatenated), and a damaged or cut stream
    is an error (_Unreadable), so the whole file is checked, as rkt reads it.
    """
    decompressor, data, streams, produced = new(), b"", 1, False
    while True:
        if decompressor.eof:
            data = decompressor.unused_data or file.read(_CHUNK)
            if not data:
                return
            decompressor, streams, produced = new(), streams + 1, False
        elif decompressor.needs_input:
            data = file.read(_CHUNK)
            if not data:
                if streams > 1 and not produced:
                    raise _Unreadable(f"has bytes after the end of its {name} data that are not {name} data")
                raise _Unreadable(f"has {name} data that ends early: it is cut short")
        else:
            data = b""
        try:
            piece = decompressor.decompress(data, _PIECE)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as error:
            if isinstance(error, lzma.LZMAError) and "memory usage limit" in str(error).lower():
                raise NotChecked(
                    f"its xz data needs over {XZ_MEMORY_LIMIT >> 20} MiB of memory to decompress,"
                    " more than nix2aci uses"
                ) from None
            if streams > 1 and not produced:
                raise _Unreadable(f"has bytes after the end of its {name} data that are not {name} data") from None
            raise _Unreadable(f"has damaged {name} data: {error}") from None
        if piece:
            produced = True
            yield piece


class _Stream:
    """The uncompressed bytes of an archive as tarfile reads them: forward only, in bounded reads.

    tarfile reads headers and member contents with read(), skips contents with
    seek() (here: reading on), and asks tell() where it is. ``budget`` is how many
    more bytes read() may return (the caller sets it before each step); a read
    beyond it is NotChecked, as tarfile reads each header extension whole.
    """

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._piece = b""
        self._at = 0  # how much of _piece has been read
        self.position = 0
        self.last = b""  # what the last read() returned
        self.budget = MAX_HEADER_SIZE

    def _fill(self) -> bool:
        """Make sure _piece has unread bytes; False at the end of the archive."""
        while self._at == len(self._piece):
            piece = next(self._pieces, None)
            if piece is None:
                return False
            self._piece, self._at = piece, 0
        return True

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end), left unread."""
        while len(self._piece) - self._at < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._piece, self._at = self._piece[self._at :] + piece, 0
        return self._piece[self._at : self._at + size]

    def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes (fewer at the end)."""
        if size is None or size < 0 or size > self.budget:
            raise NotChecked(
                f"it has tar headers (with their PAX or GNU extensions) of over {MAX_HEADER_SIZE} bytes"
                " for one member, more than nix2aci reads"
            )
        parts = []
        while size and self._fill():
            part = self._piece[self._at : self._at + size]
            self._at += len(part)
            size -= len(part)
            parts.append(part)
        self.last = b"".join(parts)
        self.position += len(self.last)
        self.budget -= len(self.last)
        return self.last

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Read on to ``offset``; past the end, as in a file, later reads return nothing."""
        if whence != io.SEEK_SET or offset < self.position:
            raise io.UnsupportedOperation("an archive is read forward only")
        while self.position < offset and self._fill():
            step = min(offset - self.position, len(self._piece) - self._at)
            self._at += step
            self.position += step
        self.position = offset
        return offset

    def tell(self) -> int:
        """Where the next read starts."""
        return self.position

    def drain(self) -> None:
        """Read to the end (which checks what is left of the compressed data)."""
        while self._fill():
            self._at = len(self._piece)


def _uncompressed(file: BinaryIO) -> tuple[Iterator[bytes], str | None]:
    """The uncompressed bytes of an opened file in pieces, and the name of its compression (None: none).

    Raises _Unreadable for a compression other than gzip, bzip2 or xz.
    """
    head = file.read(tarfile.BLOCKSIZE)
    file.seek(0)
    compression = _compression_named(head, _COMPRESSIONS)
    if compression is not None:
        _, name, new = compression
        return _decompressed(file, name, new), name
    other = _compression_named(head, _OTHER_COMPRESSIONS)
    if other is not None:
        raise _Unreadable(f"is compressed with {other[1]}; an ACI may only be compressed with gzip, bzip2 or xz")
    return iter(lambda: file.read(_PIECE), b""), None


def uncompressed_pieces(file: BinaryIO) -> Iterator[bytes]:
    """The uncompressed bytes of an opened tar, gzip, bzip2 or xz file, in pieces of at most 1 MiB.

    Memory stays bounded whatever the file (an xz stream asking for more than
    XZ_MEMORY_LIMIT raises NotChecked); damaged, cut or unknown compressed data
    raises SpecError (field "", the rule broken).
    """
    pieces, _ = _uncompressed(file)
    return pieces


def _end_problem(tar: tarfile.TarFile, stream: _Stream, members: int) -> str | None:
    """Why the tar stopped where it did, if not at its end-of-archive marker (two zero blocks).

    tarfile stops silently at a header it cannot read after the first, so a
    cut or damaged archive would pass for a shorter one without this check.
    """
    where, block = tar.offset, stream.last
    if stream.position == where + tarfile.BLOCKSIZE and block == _ZERO_BLOCK:
        stream.budget = tarfile.BLOCKSIZE
        second = stream.read(tarfile.BLOCKSIZE)
        if second == _ZERO_BLOCK:
            return None
        if len(second) < tarfile.BLOCKSIZE:
            return "ends after one zero block: a tar archive ends with two (it is cut short)"
        return f"has a zero block followed by data at offset {where}: a damaged tar header"
    if stream.position == where and not block:
        return f"ends after {members} members without the tar end-of-archive marker (two zero blocks): it is cut short"
    if stream.position == where + len(block) and len(block) < tarfile.BLOCKSIZE:
        return f"ends in the middle of the tar header at offset {where}: it is cut short"
    reason = "bad checksum" if len(block) == tarfile.BLOCKSIZE and not is_tar_header(block) else "bad extension"
    return f"has an unreadable tar header at offset {where} ({reason})"


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


def read_aci(path: str) -> ArchiveReading:
    """Check an ACI's archive rules and read its manifest, in bounded memory.

    Input: the path of an ACI (plain tar, gzip, bzip2 or xz). The archive is read
    once, forward, to its end; raises NotChecked for what nix2aci does not read
    (over MAX_MEMBERS members, a manifest over MAX_MANIFEST_SIZE or nested deeper
    than Python parses, headers over MAX_HEADER_SIZE, xz needing over
    XZ_MEMORY_LIMIT) and OSError when the file cannot be read.
    """
    layout = Layout(path)
    warnings: list[str] = []
    manifest_bytes = None

    def broken(rule: str) -> ArchiveReading:
        return ArchiveReading(None, (*layout.problems, SpecError("", rule)), tuple(warnings))

    with open(path, "rb") as file:
        try:
            pieces, compression = _uncompressed(file)
            stream = _Stream(pieces)
            head = stream.peek(tarfile.BLOCKSIZE)
            inner = _compression_named(head, _COMPRESSIONS + _OTHER_COMPRESSIONS)
            if compression is not None and inner is not None:
                return broken(f"is compressed twice ({inner[1]} inside {compression}); an ACI is compressed once")
            if compression is None and is_tar_header(head) and head[257:262] != b"ustar":
                # actool finds a plain tar by its ustar magic (a compressed one by the compression's).
                warnings.append(
                    "is a v7 tar (its headers have no ustar magic): the spec allows any tar,"
                    " but actool rejects an uncompressed one (unknown image filetype)"
                )
            members = 0
            with tarfile.open(fileobj=stream, mode="r:") as tar:
                while True:
                    stream.budget = MAX_HEADER_SIZE
                    member = tar.next()
                    if member is None:
                        break
                    tar.members.clear()  # tarfile keeps every member read; an archive may have millions
                    members += 1
                    if members > MAX_MEMBERS:
                        raise NotChecked(f"it has over {MAX_MEMBERS} members, more than nix2aci reads")
                    name = layout.add(member.name, _kind(member))
                    if name == "manifest" and member.isreg() and manifest_bytes is None:
                        if member.size > MAX_MANIFEST_SIZE:
                            raise NotChecked(f"its manifest is over {MAX_MANIFEST_SIZE} bytes, more than nix2aci reads")
                        stream.budget = MAX_MANIFEST_SIZE
                        manifest_bytes = tar.extractfile(member).read()
                end = _end_problem(tar, stream, members)
            if end is not None:
                return broken(end)
            if compression is not None:
                stream.drain()
        except _Unreadable as error:
            return broken(error.rule)
        except (tarfile.TarError, ValueError, OverflowError, IndexError, RecursionError, EOFError) as error:
            if str(error) == "unexpected end of data":  # what tarfile says when a member's contents are cut
                return broken("ends in the middle of a member's contents: it is cut short")
            # tarfile lists what it tried over several lines: keep the message on one.
            reason = " ".join(str(error).split()) or type(error).__name__
            return broken(f"must be a tar archive, plain or compressed with gzip, bzip2 or xz: {reason}")
    problems = layout.finish()
    if manifest_bytes is None:
        return ArchiveReading(None, tuple(problems), tuple(warnings))
    try:
        parsed = parse_json(manifest_bytes)
    except SpecError as error:
        return ArchiveReading(None, (*problems, SpecError("manifest", error.rule)), tuple(warnings))
    return ArchiveReading(
        parsed.value, tuple(problems), (*warnings, *(join_path("manifest", w) for w in parsed.warnings))
    )


def read_archive(path: str) -> tuple[dict[str, Any] | None, list[SpecError]]:
    """:func:`read_aci` as (the manifest JSON or None, the archive's problems), without its warnings."""
    reading = read_aci(path)
    return reading.document, list(reading.problems)


def validate_archive(path: str) -> tuple[ImageManifest | None, list[SpecError]]:
    """All problems of an ACI, archive and manifest; the manifest when it is valid."""
    document, problems = read_archive(path)
    if document is None:
        return None, problems
    problems += prefixed("manifest", ImageManifest.problems(document))
    return (None if problems else ImageManifest.from_json(document)), problems

"""The OCI image layout format (image-spec v1.0.2): its documents' kinds, and the check of a layout.

:mod:`nix2aci.oci.image` writes layouts. :func:`problems` checks a layout,
including what skopeo does not: descriptor sizes and digests, diff_ids, media
types and the layout version. The check reads the layout's files through an
:class:`Opener`: a directory's (:class:`DirectoryOpener`), or an archive's
members (:mod:`nix2aci.oci.archive_check`, which reads a docker-archive's layers
with :func:`read_layer` too).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

import attrs

from .. import inputs
from ..archive.compression import Allowed, Compression, uncompressed
from ..errors import NotChecked, SpecError
from ..schema import Schema, load_json, parse_json, prefixed, show

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
# image-spec 1.1's empty descriptor: the config of an artifact, whose blob is these two bytes.
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = f"sha256:{hashlib.sha256(EMPTY_BLOB).hexdigest()}"
# The key of a descriptor (image-spec 1.1) that makes the manifest it names an artifact's.
ARTIFACT = "artifactType"
REF_NAME = "org.opencontainers.image.ref.name"
# The compressions a layer may use (image-spec layer.md), each named in the media type by its suffix;
# nix/oci-image.nix reads the same file for its `layerCompression` argument.
LAYER_COMPRESSIONS = Allowed("OCI layers", tuple(load_json(__package__, "layer-compressions.json")))
LAYER = "application/vnd.oci.image.layer.v1.tar"
NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"


def layer_media_type(compression: Compression, base: str = LAYER) -> str:
    """The media type of a layer compressed with ``compression`` (of LAYER_COMPRESSIONS): ``base`` + its suffix."""
    if compression not in LAYER_COMPRESSIONS or compression.media_suffix is None:
        raise ValueError(f"OCI layers may not be compressed with {compression.described}")
    return base + compression.media_suffix


def schemas() -> dict[str, Schema]:
    """One schema per document kind, all sharing the definitions of image.schema.json, whose layer media types
    (left open in the file) are those of LAYER_COMPRESSIONS: so a compression is allowed for layers in one place."""
    document = load_json(__package__, "image.schema.json")
    compressions = [LAYER_COMPRESSIONS.named(name) for name in LAYER_COMPRESSIONS.names]
    layer = document["definitions"]["manifest"]["properties"]["layers"]["items"]["allOf"][1]["properties"]
    layer["mediaType"] = {
        "description": "a layer media type: "
        + ", ".join([LAYER, *(f"...tar{known.media_suffix}" for known in compressions if known.media_suffix)])
        + ", or their nondistributable forms",
        "enum": [layer_media_type(known, base) for base in (LAYER, NONDISTRIBUTABLE_LAYER) for known in compressions],
    }
    return {
        kind: Schema({**document, "$ref": f"#/definitions/{kind}"})
        for kind in ("layout", "index", "manifest", "artifact", "config")
    }


SCHEMAS = schemas()


@attrs.frozen
class Descriptor:
    """A blob as the layout refers to it."""

    media_type: str
    digest: str
    size: int

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """The descriptor object, with ``extra`` keys (platform, annotations)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def canonical(document: Any) -> bytes:
    """JSON bytes that depend only on the document: sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# The largest JSON document (index, manifest, config) the checks read; real ones are KiBs.
MAX_DOCUMENT = 4 << 20
# The digest algorithms registered by descriptor.md; blobs named by others are not hashed.
_DIGEST_ALGORITHMS = ("sha256", "sha512")


class Opener(Protocol):
    """Where a layout's files are read from: ``open`` yields a regular file and its size, or raises
    inputs.InputError (``missing`` for a file that is not there) or OSError; a ``blob`` may be a link into
    the Nix store where the files are a directory's. ``is_directory`` tells whether a directory is there."""

    def open(
        self, relative: str, what: str, blob: bool = False
    ) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]]: ...

    def is_directory(self, relative: str) -> bool: ...


@attrs.frozen
class DirectoryOpener:
    """The files of the layout directory ``root``: opened without following a link (see
    :func:`nix2aci.inputs.open_beneath`), but for a blob linking into the Nix store."""

    root: str

    @contextlib.contextmanager
    def open(self, relative: str, what: str, blob: bool = False) -> Iterator[tuple[BinaryIO, int]]:
        """The regular file ``relative`` opened, and its size."""
        with inputs.open_beneath(self.root, relative, what, store_links=blob) as file:
            yield file, os.fstat(file.fileno()).st_size

    def is_directory(self, relative: str) -> bool:
        """Whether ``relative`` is a directory, not a link to one."""
        path = os.path.join(self.root, relative)
        return os.path.isdir(path) and not os.path.islink(path)


class _HashingFile:
    """An opened file whose bytes are hashed (``digest``, may be None), counted and copied to ``copy_to`` (may be
    None) the first time they are read.

    The layer reader peeks at the first bytes and seeks back: those are hashed once.
    """

    def __init__(self, file: BinaryIO, digest: Any, copy_to: BinaryIO | None = None) -> None:
        self._file = file
        self._digest = digest
        self._copy_to = copy_to
        self._position = 0
        self.size = 0  # how many bytes have been read (and hashed)

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        start, self._position = self._position, self._position + len(data)
        if self._position > self.size:
            new = data[self.size - start :]
            if self._digest is not None:
                self._digest.update(new)
            if self._copy_to is not None:
                self._copy_to.write(new)
            self.size = self._position
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position


@attrs.frozen
class _Blob:
    """What one read of a blob found: its size, and as asked its digest, a document's bytes, a layer's diff_id.

    ``digest`` is the hex digest in the algorithm that names the blob (None: not
    hashed); ``layer_problem`` says why a layer could not be decompressed, ``compression``
    how it is compressed.
    """

    size: int
    digest: str | None = None
    data: bytes | None = None
    diff_id: str | None = None
    layer_problem: str | None = None
    compression: Compression | None = None


def _layer_compression(media_type: str | None) -> Allowed:
    """The compressions a layer of ``media_type`` (one the schema allows) may use: the one it names; with None
    (a docker-archive's layer, which has no media type), any of LAYER_COMPRESSIONS."""
    if media_type is None:
        return LAYER_COMPRESSIONS
    suffix = media_type.removeprefix(NONDISTRIBUTABLE_LAYER).removeprefix(LAYER)
    name = next(name for name in LAYER_COMPRESSIONS.names if LAYER_COMPRESSIONS.named(name).media_suffix == suffix)
    return Allowed(f"a layer of media type {media_type}", (name,))


def read_layer(file: BinaryIO, algorithm: str, media_type: str | None, copy_to: BinaryIO | None = None) -> _Blob:
    """One read of an opened layer to its end: its size, digest (in ``algorithm``, if registered), uncompressed
    sha256 and compression, decompressed as ``media_type`` says (see :func:`_layer_compression`), each byte
    copied to ``copy_to`` when given. A layer that cannot be decompressed has a ``layer_problem``. Raises
    NotChecked for a layer needing too much memory, OSError for a failed read or write."""
    digest = hashlib.new(algorithm) if algorithm in _DIGEST_ALGORITHMS else None
    hashing, diff_id = _HashingFile(file, digest, copy_to), hashlib.sha256()
    try:
        pieces, compression = uncompressed(hashing, _layer_compression(media_type))
        for piece in pieces:
            diff_id.update(piece)
    except SpecError as error:
        while hashing.read(1 << 20):  # the digest still covers the whole blob
            pass
        return _Blob(hashing.size, digest and digest.hexdigest(), layer_problem=error.rule)
    return _Blob(
        hashing.size, digest and digest.hexdigest(), diff_id=f"sha256:{diff_id.hexdigest()}", compression=compression
    )


def _read_blob(file: BinaryIO, size: int, algorithm: str, purpose: str, media_type: str | None) -> _Blob:
    """One read of an opened blob of ``size`` bytes, for ``purpose``.

    "size": not read; "document": its bytes (up to MAX_DOCUMENT + 1) and digest;
    "bytes": its digest; "layer": see :func:`read_layer`. Raises NotChecked for a
    layer needing too much memory, OSError for a failed read.
    """
    if purpose == "size":
        return _Blob(size)
    if purpose == "layer":
        return read_layer(file, algorithm, media_type)
    digest = hashlib.new(algorithm) if algorithm in _DIGEST_ALGORITHMS else None
    if purpose == "bytes":
        hashing = _HashingFile(file, digest)
        while hashing.read(1 << 20):
            pass
        return _Blob(hashing.size, digest and digest.hexdigest())
    data = file.read(MAX_DOCUMENT + 1)
    if digest is not None:
        digest.update(data)
    return _Blob(len(data), digest and digest.hexdigest(), data=data)


def parse_document(data: bytes, kind: str, schema: Schema | None = None) -> tuple[Any, list[SpecError]]:
    """The JSON document ``data`` checked as ``kind`` (with ``schema``, default SCHEMAS[kind]): (the document or
    None, its problems relative to it)."""
    try:
        document = parse_json(data).value
    except SpecError as error:
        return None, [SpecError("", f"{error.rule} (a JSON {kind})")]
    errors = (schema or SCHEMAS[kind]).check(document).errors
    return (None if errors else document), list(errors)


class LayoutCheck:
    """The check of one layout, its files read through ``opener``: the problems found, and every blob read at
    most once per purpose.

    However many descriptors name a blob, it is opened and hashed once (a cache
    for this check), and a manifest's config and layers are checked once.
    """

    def __init__(self, opener: Opener, hash_layers: bool, warnings: list[str] | None) -> None:
        self.opener = opener
        self.hash_layers = hash_layers
        self.warnings = warnings
        self.found: list[SpecError] = []
        self._blobs: dict[tuple[str, str, str], _Blob | inputs.InputError | OSError] = {}
        self._documents: dict[tuple[str, str], tuple[Any, list[SpecError]]] = {}
        # The manifests checked, by digest: their config documents (None: unreadable).
        self._configs: dict[str, Any] = {}
        # The image manifests' descriptors, by digest: in index.json, or in an image index it names.
        self.images: dict[str, dict[str, Any]] = {}
        # index.json as checked (None: unread or invalid), for what reads on after the check (inspect).
        self.index: Any = None

    def document(self, name: str, kind: str, schema: Schema | None = None) -> Any:
        """The JSON file ``name`` checked as ``kind`` (with ``schema``, default SCHEMAS[kind]); None (and a
        problem) if bad. Raises NotChecked for a file over MAX_DOCUMENT bytes."""
        try:
            with self.opener.open(name, name) as (file, _):
                data = file.read(MAX_DOCUMENT + 1)
        except inputs.InputError as error:
            rule = f"must be a regular file holding a JSON {kind}"
            self.found.append(SpecError(name, rule if error.missing else f"{rule}: it {error.reason}"))
            return None
        except OSError as error:
            self.found.append(SpecError(name, f"must be a readable JSON {kind}: {error.strerror or error}"))
            return None
        if len(data) > MAX_DOCUMENT:
            raise NotChecked(f"{name} is over {MAX_DOCUMENT} bytes, more than nix2aci reads")
        document, errors = parse_document(data, kind, schema)
        self.found.extend(prefixed(name, errors))
        return document

    def read(
        self, relative: str, algorithm: str, purpose: str, media_type: str | None
    ) -> _Blob | inputs.InputError | OSError:
        """The blob at ``relative`` read for ``purpose`` (see :func:`_read_blob`), or why it cannot be; cached."""
        key = (relative, purpose, (media_type or "") if purpose == "layer" else "")
        if key not in self._blobs:
            try:
                with self.opener.open(relative, "blob", blob=True) as (file, size):
                    self._blobs[key] = _read_blob(file, size, algorithm, purpose, media_type)
            except (inputs.InputError, OSError) as error:
                self._blobs[key] = error
        return self._blobs[key]

    def blob(self, descriptor: dict[str, Any], where: str, kind: str | None) -> Any:
        """Check the blob a descriptor names (size, digest); return its JSON document as ``kind`` if asked.

        A layer (``kind`` None) is hashed and decompressed with ``hash_layers``,
        its diff_id returned;
        another blob (``kind`` "bytes", an artifact's) is hashed with ``hash_layers``.
        A missing blob is allowed by image-layout.md (blobs/
        MAY lack a referenced blob, to be fetched from elsewhere): with
        ``warnings`` it is noted there; without (nix2aci's builders, which write
        every blob), it is a problem. A blob that is not a regular file, or is a
        link, is a problem, and is never read.
        """
        algorithm, _, encoded = descriptor["digest"].partition(":")
        if kind in (None, "bytes"):
            purpose = ("layer" if kind is None else "bytes") if self.hash_layers else "size"
        else:
            purpose = "document"
        blob = self.read(f"blobs/{algorithm}/{encoded}", algorithm, purpose, descriptor["mediaType"])
        if isinstance(blob, inputs.InputError) and blob.missing and self.warnings is not None:
            self.warnings.append(
                f"{where}: blob {descriptor['digest']} is not in blobs/, which the spec allows"
                " (it is fetched from elsewhere); it was not checked"
            )
            return None
        if isinstance(blob, inputs.InputError):
            reason = "is not a file in blobs/" if blob.missing else blob.reason
            self.found.append(SpecError(where, f"names blob {descriptor['digest']}, which {reason}"))
            return None
        if isinstance(blob, OSError):
            message = f"names blob {descriptor['digest']}, which cannot be read: {blob.strerror or blob}"
            self.found.append(SpecError(where, message))
            return None
        if kind and blob.size > MAX_DOCUMENT:
            raise NotChecked(f"{where} ({kind} blob) is over {MAX_DOCUMENT} bytes, more than nix2aci reads")
        if blob.size != descriptor["size"]:
            rule = f"must be the blob's size {blob.size}, got {descriptor['size']}"
            self.found.append(SpecError(f"{where}.size", rule))
        if blob.digest is not None and blob.digest != encoded:
            self.found.append(SpecError(f"{where}.digest", f"must be the blob's digest {algorithm}:{blob.digest}"))
        if blob.layer_problem:
            self.found.append(SpecError(where, f"must be a readable layer: it {blob.layer_problem}"))
        if kind is None:
            return blob.diff_id
        if kind == "bytes":
            return None
        key = (descriptor["digest"], kind)
        if key not in self._documents:
            self._documents[key] = parse_document(blob.data or b"", kind)
        document, errors = self._documents[key]
        self.found.extend(prefixed(f"{where} ({kind} blob)", errors))
        return document

    def manifest(self, manifest: dict[str, Any], where: str) -> Any:
        """Check a manifest's config and layers, and that the config's diff_ids are the layers' (with hash_layers);
        return the config document (None if unreadable)."""
        config = self.blob(manifest["config"], f"{where} config", "config")
        diff_ids = [self.blob(layer, f"{where} layers[{j}]", None) for j, layer in enumerate(manifest["layers"])]
        if config is None:
            return None
        recorded = config["rootfs"]["diff_ids"]
        if len(recorded) != len(manifest["layers"]):
            self.found.append(
                SpecError(
                    f"{where} config.rootfs.diff_ids",
                    f"must have one entry per layer ({len(manifest['layers'])}), has {len(recorded)}",
                )
            )
        elif self.hash_layers and None not in diff_ids and recorded != diff_ids:
            self.found.append(
                SpecError(f"{where} config.rootfs.diff_ids", f"must be the uncompressed layers' digests {diff_ids}")
            )
        return config

    def entry(self, entry: dict[str, Any], where: str, *, top: bool) -> None:
        """Check what a descriptor of an index names: an image manifest, with the platform it gives (if any) the
        one its config says; or, for index.json's own entries (``top``), an image index and each entry it lists."""
        if entry["mediaType"] == INDEX and top:
            nested = self.blob(entry, where, "index")
            for j, inner in enumerate(nested["manifests"] if nested else []):
                self.entry(inner, f"{where} manifests[{j}]", top=False)
            return
        if entry["mediaType"] != MANIFEST:
            if self.warnings is None:
                rule = f"must be {MANIFEST}" + (f" or {INDEX}" if top else " (nix2aci reads one level of indexes)")
                self.found.append(SpecError(f"{where}.mediaType", rule))
            else:
                kind = show(entry["mediaType"])
                self.warnings.append(f"{where}: a {kind}, not an image manifest; it was not checked")
            return
        self.images.setdefault(entry["digest"], entry)
        manifest = self.blob(entry, where, "manifest")
        if manifest is None:
            return
        # A manifest named again (another tag, another platform) is checked once, under its first descriptor.
        if entry["digest"] not in self._configs:
            self._configs[entry["digest"]] = self.manifest(manifest, where)
        config = self._configs[entry["digest"]]
        if "platform" in entry and config is not None:
            said, own = platform_name(entry["platform"]), platform_name(config)
            if said != own:
                self.found.append(
                    SpecError(f"{where}.platform", f"must be the platform its config says, {own}, got {said}")
                )

    def artifact(self, manifest: dict[str, Any], where: str, images: dict[str, dict[str, Any]]) -> None:
        """Check an artifact manifest: its config (the empty one's two bytes ``{}`` when of that media type)
        and layers, and that its subject is an image manifest of the layout, ``images`` by digest."""
        config = manifest["config"]
        self.blob(config, f"{where} config", "bytes")
        if config["mediaType"] == EMPTY and config["digest"] != EMPTY_DIGEST:
            self.found.append(SpecError(f"{where} config.digest", f"must be {EMPTY_DIGEST}, the digest of {{}}"))
        for j, layer in enumerate(manifest["layers"]):
            self.blob(layer, f"{where} layers[{j}]", "bytes")
        subject = manifest["subject"]
        named = images.get(subject["digest"])
        if named is None or (named["mediaType"], named["size"]) != (subject["mediaType"], subject["size"]):
            self.found.append(
                SpecError(
                    f"{where} subject",
                    "must be the descriptor of an image manifest that index.json names, or an image index it names",
                )
            )


def names_artifact(entry: dict[str, Any]) -> bool:
    """Whether a descriptor of index.json names an artifact's manifest (one with an ``artifactType``)."""
    return entry["mediaType"] == MANIFEST and ARTIFACT in entry


def platform_name(document: dict[str, Any]) -> str:
    """A platform's os/architecture[/variant], of a descriptor's platform object or an image config."""
    return "/".join(document[name] for name in ("os", "architecture", "variant") if document.get(name))


def problems(root: str | Opener, *, hash_layers: bool = True, warnings: list[str] | None = None) -> list[SpecError]:
    """Every problem of the image layout directory ``root`` (or the layout an Opener reads).

    Checks the oci-layout version, index.json, and for each manifest the index
    names (directly, or through an image index it names: a multi-platform image):
    its blob, its config blob, each layer's size and (with ``hash_layers``)
    digest, that the config's diff_ids are the layers' uncompressed digests (with
    ``hash_layers``), one per layer, and that the platform a descriptor gives is
    the one the config says. A manifest whose descriptor in index.json has an
    ``artifactType`` is an artifact's (image-spec 1.1, nix2aci's SBOM): its blobs
    are checked, and that its ``subject`` is an image manifest of the layout
    (one index.json names, or one of an image index it names). Each blob is
    read at most once, and no file is read through a link, but for a blob that
    links into the Nix store (nix2aci's layouts link their layers' builds), nor
    when it is not a regular file. With ``warnings`` (a list, for ``nix2aci validate``), what the
    spec allows but nix2aci cannot check is noted there: a missing blob, an index
    inside an index. Raises NotChecked for a JSON document too big to read.
    """
    return checked(root, hash_layers=hash_layers, warnings=warnings).found


def checked(root: str | Opener, *, hash_layers: bool = True, warnings: list[str] | None = None) -> LayoutCheck:
    """The finished check of a layout (see :func:`problems`): its problems in ``found``, and what it read (the
    index, the blobs' documents) for reading on without reading a file again."""
    check = LayoutCheck(DirectoryOpener(root) if isinstance(root, str) else root, hash_layers, warnings)
    check.document("oci-layout", "layout")
    index = check.index = check.document("index.json", "index")
    if not check.opener.is_directory("blobs"):
        check.found.append(SpecError("blobs", "must be a directory"))
    entries = list(enumerate(index["manifests"] if index else []))
    is_artifact = [names_artifact(entry) for _, entry in entries]
    for (i, entry), artifact in zip(entries, is_artifact, strict=True):
        if not artifact:
            check.entry(entry, f"index.json.manifests[{i}]", top=True)
    # The images are all known (an index's too) before an artifact's subject is looked up among them.
    for (i, entry), artifact in zip(entries, is_artifact, strict=True):
        if artifact:
            where = f"index.json.manifests[{i}]"
            document = check.blob(entry, where, "artifact")
            if document is not None:
                check.artifact(document, where, check.images)
    return check

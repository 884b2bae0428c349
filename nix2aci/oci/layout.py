"""The OCI image layout format (image-spec v1.0.2): its documents' kinds, and the check of a layout.

:mod:`nix2aci.oci.image` writes layouts. :func:`problems` checks a layout
directory, including what skopeo does not: descriptor sizes and digests,
diff_ids, media types and the layout version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any, BinaryIO

import attrs

from .. import inputs
from ..archive.compression import Allowed, Compression, uncompressed
from ..errors import NotChecked, SpecError
from ..schema import Schema, load_json, parse_json, prefixed, show

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
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
        for kind in ("layout", "index", "manifest", "config")
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
_MAX_DOCUMENT = 4 << 20
# The digest algorithms registered by descriptor.md; blobs named by others are not hashed.
_DIGEST_ALGORITHMS = ("sha256", "sha512")


class _HashingFile:
    """An opened file whose bytes are hashed (``digest``, may be None) and counted the first time they are read.

    The layer reader peeks at the first bytes and seeks back: those are hashed once.
    """

    def __init__(self, file: BinaryIO, digest: Any) -> None:
        self._file = file
        self._digest = digest
        self._position = 0
        self.size = 0  # how many bytes have been read (and hashed)

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        start, self._position = self._position, self._position + len(data)
        if self._position > self.size:
            if self._digest is not None:
                self._digest.update(data[self.size - start :])
            self.size = self._position
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position


@attrs.frozen
class _Blob:
    """What one read of a blob found: its size, and as asked its digest, a document's bytes, a layer's diff_id.

    ``digest`` is the hex digest in the algorithm that names the blob (None: not
    hashed); ``layer_problem`` says why a layer could not be decompressed.
    """

    size: int
    digest: str | None = None
    data: bytes | None = None
    diff_id: str | None = None
    layer_problem: str | None = None


def _layer_compression(media_type: str) -> Allowed:
    """The one compression a layer of ``media_type`` (one the schema allows) may use, as an allowed set."""
    suffix = media_type.removeprefix(NONDISTRIBUTABLE_LAYER).removeprefix(LAYER)
    name = next(name for name in LAYER_COMPRESSIONS.names if LAYER_COMPRESSIONS.named(name).media_suffix == suffix)
    return Allowed(f"a layer of media type {media_type}", (name,))


def _read_blob(file: BinaryIO, algorithm: str, purpose: str, media_type: str) -> _Blob:
    """One read of an opened blob, for ``purpose``.

    "size": not read; "document": its bytes (up to _MAX_DOCUMENT + 1) and digest;
    "layer": its digest and uncompressed sha256, in one pass, decompressed as its
    ``media_type`` says. Raises NotChecked for a layer needing too much memory,
    OSError for a failed read.
    """
    size = os.fstat(file.fileno()).st_size
    digest = hashlib.new(algorithm) if algorithm in _DIGEST_ALGORITHMS else None
    if purpose == "size":
        return _Blob(size)
    if purpose == "document":
        data = file.read(_MAX_DOCUMENT + 1)
        if digest is not None:
            digest.update(data)
        return _Blob(len(data), digest and digest.hexdigest(), data=data)
    hashing, diff_id = _HashingFile(file, digest), hashlib.sha256()
    try:
        pieces, _ = uncompressed(hashing, _layer_compression(media_type))
        for piece in pieces:
            diff_id.update(piece)
    except SpecError as error:
        while hashing.read(1 << 20):  # the digest still covers the whole blob
            pass
        return _Blob(hashing.size, digest and digest.hexdigest(), layer_problem=error.rule)
    return _Blob(hashing.size, digest and digest.hexdigest(), diff_id=f"sha256:{diff_id.hexdigest()}")


def _parse(data: bytes, kind: str) -> tuple[Any, list[SpecError]]:
    """The JSON document ``data`` checked as ``kind``: (the document or None, its problems relative to it)."""
    try:
        document = parse_json(data).value
    except SpecError as error:
        return None, [SpecError("", f"{error.rule} (a JSON {kind})")]
    errors = SCHEMAS[kind].check(document).errors
    return (None if errors else document), list(errors)


class _LayoutCheck:
    """The check of one layout directory: the problems found, and every blob read at most once per purpose.

    However many descriptors name a blob, it is opened and hashed once (a cache
    for this check), and a manifest's config and layers are checked once.
    """

    def __init__(self, root: str, hash_layers: bool, warnings: list[str] | None) -> None:
        self.root = root
        self.hash_layers = hash_layers
        self.warnings = warnings
        self.found: list[SpecError] = []
        self._blobs: dict[tuple[str, str, str], _Blob | inputs.InputError | OSError] = {}
        self._documents: dict[tuple[str, str], tuple[Any, list[SpecError]]] = {}
        # The manifests checked, by digest: their config documents (None: unreadable).
        self._configs: dict[str, Any] = {}

    def document(self, name: str, kind: str) -> Any:
        """The JSON file ``name`` of the layout's top directory checked as ``kind``; None (and a problem) if bad."""
        try:
            with inputs.open_beneath(self.root, name, name) as file:
                data = file.read(_MAX_DOCUMENT + 1)
        except inputs.InputError as error:
            rule = f"must be a regular file holding a JSON {kind}"
            self.found.append(SpecError(name, rule if error.missing else f"{rule}: it {error.reason}"))
            return None
        except OSError as error:
            self.found.append(SpecError(name, f"must be a readable JSON {kind}: {error.strerror or error}"))
            return None
        if len(data) > _MAX_DOCUMENT:
            raise NotChecked(f"{name} is over {_MAX_DOCUMENT} bytes, more than nix2aci reads")
        document, errors = _parse(data, kind)
        self.found.extend(prefixed(name, errors))
        return document

    def _read(
        self, relative: str, algorithm: str, purpose: str, media_type: str
    ) -> _Blob | inputs.InputError | OSError:
        """The blob at ``relative`` read for ``purpose`` (see :func:`_read_blob`), or why it cannot be; cached."""
        key = (relative, purpose, media_type if purpose == "layer" else "")
        if key not in self._blobs:
            try:
                with inputs.open_beneath(self.root, relative, "blob", store_links=True) as file:
                    self._blobs[key] = _read_blob(file, algorithm, purpose, media_type)
            except (inputs.InputError, OSError) as error:
                self._blobs[key] = error
        return self._blobs[key]

    def blob(self, descriptor: dict[str, Any], where: str, kind: str | None) -> Any:
        """Check the blob a descriptor names (size, digest); return its JSON document as ``kind`` if asked.

        A layer (``kind`` None) is hashed and decompressed with ``hash_layers``,
        its diff_id returned. A missing blob is allowed by image-layout.md (blobs/
        MAY lack a referenced blob, to be fetched from elsewhere): with
        ``warnings`` it is noted there; without (nix2aci's builders, which write
        every blob), it is a problem. A blob that is not a regular file, or is a
        link, is a problem, and is never read.
        """
        algorithm, _, encoded = descriptor["digest"].partition(":")
        purpose = "document" if kind else "layer" if self.hash_layers else "size"
        blob = self._read(f"blobs/{algorithm}/{encoded}", algorithm, purpose, descriptor["mediaType"])
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
        if kind and blob.size > _MAX_DOCUMENT:
            raise NotChecked(f"{where} ({kind} blob) is over {_MAX_DOCUMENT} bytes, more than nix2aci reads")
        if blob.size != descriptor["size"]:
            rule = f"must be the blob's size {blob.size}, got {descriptor['size']}"
            self.found.append(SpecError(f"{where}.size", rule))
        if blob.digest is not None and blob.digest != encoded:
            self.found.append(SpecError(f"{where}.digest", f"must be the blob's digest {algorithm}:{blob.digest}"))
        if blob.layer_problem:
            self.found.append(SpecError(where, f"must be a readable layer: it {blob.layer_problem}"))
        if not kind:
            return blob.diff_id
        key = (descriptor["digest"], kind)
        if key not in self._documents:
            self._documents[key] = _parse(blob.data or b"", kind)
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
        manifest = self.blob(entry, where, "manifest")
        if manifest is None:
            return
        # A manifest named again (another tag, another platform) is checked once, under its first descriptor.
        if entry["digest"] not in self._configs:
            self._configs[entry["digest"]] = self.manifest(manifest, where)
        config = self._configs[entry["digest"]]
        if "platform" in entry and config is not None:
            said, own = _platform(entry["platform"]), _platform(config)
            if said != own:
                self.found.append(
                    SpecError(f"{where}.platform", f"must be the platform its config says, {own}, got {said}")
                )


def _platform(document: dict[str, Any]) -> str:
    """A platform's os/architecture[/variant], of a descriptor's platform object or an image config."""
    return "/".join(document[name] for name in ("os", "architecture", "variant") if document.get(name))


def problems(root: str, *, hash_layers: bool = True, warnings: list[str] | None = None) -> list[SpecError]:
    """Every problem of the image layout directory ``root``.

    Checks the oci-layout version, index.json, and for each manifest the index
    names (directly, or through an image index it names: a multi-platform image):
    its blob, its config blob, each layer's size and (with ``hash_layers``)
    digest, that the config's diff_ids are the layers' uncompressed digests (with
    ``hash_layers``), one per layer, and that the platform a descriptor gives is
    the one the config says. Each blob is
    read at most once, and no file is read through a link, but for a blob that
    links into the Nix store (nix2aci's layouts link their layers' builds), nor
    when it is not a regular file. With ``warnings`` (a list, for ``nix2aci validate``), what the
    spec allows but nix2aci cannot check is noted there: a missing blob, an index
    inside an index. Raises NotChecked for a JSON document too big to read.
    """
    check = _LayoutCheck(root, hash_layers, warnings)
    check.document("oci-layout", "layout")
    index = check.document("index.json", "index")
    if not os.path.isdir(os.path.join(root, "blobs")) or os.path.islink(os.path.join(root, "blobs")):
        check.found.append(SpecError("blobs", "must be a directory"))
    for i, entry in enumerate(index["manifests"] if index else []):
        check.entry(entry, f"index.json.manifests[{i}]", top=True)
    return check.found

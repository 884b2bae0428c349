"""The OCI image layout format (image-spec v1.0.2): made, and checked.

:func:`build` turns a :class:`~nix2aci.spec.BuildSpec` of format ``oci-layout``
(from ``lib.buildOCIImage``) into ``$out/oci-layout``, ``$out/index.json`` and
``$out/blobs/sha256/``: one deterministic layer of the closure and profile, its
config and its manifest, tagged in the index. :func:`problems` checks a layout
directory, including what skopeo does not: descriptor sizes and digests,
diff_ids, media types and the layout version.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from typing import Any

import attrs

from .. import basics, plan, tree, unarchive
from ..archive import write_archive
from ..errors import NotChecked, SpecError
from ..schema import Schema, load_json, parse_json, prefixed, show
from ..spec import BuildSpec

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip", "none": "application/vnd.oci.image.layer.v1.tar"}
REF_NAME = "org.opencontainers.image.ref.name"
_DOCUMENT = load_json(__package__, "image.schema.json")
# One schema per document kind, all sharing the definitions of image.schema.json.
SCHEMAS = {
    kind: Schema({**_DOCUMENT, "$ref": f"#/definitions/{kind}"}) for kind in ("layout", "index", "manifest", "config")
}


@attrs.frozen
class Descriptor:
    """A blob as the layout refers to it."""

    media_type: str
    digest: str
    size: int

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """The descriptor object, with ``extra`` keys (platform, annotations)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def _canonical(document: dict[str, Any]) -> bytes:
    """JSON bytes that depend only on the document: sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _write_blob(blobs: str, media_type: str, content: bytes) -> Descriptor:
    """Store ``content`` under its digest in ``blobs`` (``blobs/sha256``)."""
    digest = hashlib.sha256(content).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as file:
        file.write(content)
    return Descriptor(media_type, f"sha256:{digest}", len(content))


def image_config(image: dict[str, Any], env: dict[str, str], diff_id: str) -> dict[str, Any]:
    """The image config: Go platform names, the execution parameters, one layer's diff_id."""
    execution = {
        "Entrypoint": image["entrypoint"],
        "Cmd": image["cmd"],
        "Env": [f"{name}={env[name]}" for name in sorted(env)],
        "WorkingDir": image["workingDir"],
        "User": image["user"],
        "ExposedPorts": {port: {} for port in sorted(image["exposedPorts"])},
        "Labels": image["labels"],
    }
    document = {
        "architecture": image["arch"],
        "os": image["os"],
        "config": {key: value for key, value in execution.items() if value},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if image.get("variant"):
        document["variant"] = image["variant"]
    return document


def build(spec: BuildSpec) -> Descriptor:
    """Write the image layout of ``spec`` into ``spec.out``; return the manifest's descriptor."""
    image = spec.image
    blobs = os.path.join(spec.out, "blobs", "sha256")
    os.makedirs(blobs)
    # A layer holds the tree below its root; the root directory itself is implied.
    entries = (entry for entry in plan.contained(tree.image_tree(spec)) if entry.path)
    with tempfile.NamedTemporaryFile(dir=blobs, delete=False) as output:
        summary = write_archive(
            entries, output, compression=spec.compression, uncompressed_digest="sha256", compressed_digest="sha256"
        )
    os.replace(output.name, os.path.join(blobs, summary.compressed_digest))
    env = basics.environment(spec.rootfs, image["env"])
    layer = Descriptor(LAYER[spec.compression], f"sha256:{summary.compressed_digest}", summary.compressed_size)
    config = _write_blob(
        blobs,
        CONFIG,
        _canonical(image_config(image, env, f"sha256:{summary.uncompressed_digest}")),
    )
    manifest = _write_blob(
        blobs,
        MANIFEST,
        _canonical(
            {"schemaVersion": 2, "mediaType": MANIFEST, "config": config.to_json(), "layers": [layer.to_json()]}
        ),
    )
    platform = {
        "architecture": image["arch"],
        "os": image["os"],
        **({"variant": image["variant"]} if image.get("variant") else {}),
    }
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [manifest.to_json(platform=platform, annotations={REF_NAME: image["tag"]})],
    }
    with open(os.path.join(spec.out, "index.json"), "wb") as file:
        file.write(_canonical(index))
    with open(os.path.join(spec.out, "oci-layout"), "wb") as file:
        file.write(_canonical({"imageLayoutVersion": "1.0.0"}))
    # The layer was hashed while written: check everything but re-reading it.
    found = problems(spec.out, hash_layers=False)
    if found:
        raise found[0]
    return manifest


# The largest JSON document (index, manifest, config) the checks read; real ones are KiBs.
_MAX_DOCUMENT = 4 << 20
# The digest algorithms registered by descriptor.md; blobs named by others are not hashed.
_DIGEST_ALGORITHMS = ("sha256", "sha512")


def _regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file (what a blob or document must be; a FIFO would block a read)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _read_json(path: str, where: str, kind: str, found: list[SpecError]) -> Any:
    """The JSON document at ``path`` checked as ``kind``; None (and a problem) when unreadable.

    Raises NotChecked for a document over _MAX_DOCUMENT bytes or nested deeper than Python parses.
    """
    if not _regular_file(path):
        found.append(SpecError(where, f"must be a regular file holding a JSON {kind}"))
        return None
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_DOCUMENT + 1)
    except OSError as error:
        found.append(SpecError(where, f"must be a readable JSON {kind}: {error.strerror or error}"))
        return None
    if len(data) > _MAX_DOCUMENT:
        raise NotChecked(f"{where} is over {_MAX_DOCUMENT} bytes, more than nix2aci reads")
    try:
        document = parse_json(data).value
    except SpecError as error:
        found.append(SpecError(where, f"{error.rule} (a JSON {kind})"))
        return None
    errors = SCHEMAS[kind].check(document).errors
    found.extend(prefixed(where, errors))
    return None if errors else document


def _file_digest(path: str, algorithm: str | None) -> tuple[int, str | None]:
    """The size of a file and its hex digest, read in pieces (no digest for None or an unregistered algorithm)."""
    if algorithm not in _DIGEST_ALGORITHMS:
        return os.stat(path).st_size, None
    digest, size = hashlib.new(algorithm), 0
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def _blob(
    root: str,
    descriptor: dict[str, Any],
    where: str,
    kind: str | None,
    found: list[SpecError],
    warnings: list[str] | None,
    hash_blob: bool = True,
) -> Any:
    """Check the blob a descriptor names (size, and digest if ``hash_blob``); return its JSON as ``kind`` if asked.

    A missing blob is allowed by image-layout.md (blobs/ MAY lack a referenced
    blob, to be fetched from elsewhere): with ``warnings`` it is noted there;
    without (nix2aci's builders, which write every blob), it is a problem.
    """
    algorithm, _, encoded = descriptor["digest"].partition(":")
    path = os.path.join(root, "blobs", algorithm, encoded)
    if not os.path.lexists(path) and warnings is not None:
        warnings.append(
            f"{where}: blob {descriptor['digest']} is not in blobs/, which the spec allows"
            " (it is fetched from elsewhere); it was not checked"
        )
        return None
    if not _regular_file(path):
        found.append(SpecError(where, f"names blob {descriptor['digest']}, which is not a file in blobs/"))
        return None
    try:
        size, actual = _file_digest(path, algorithm if hash_blob or kind else None)
    except OSError as error:
        found.append(SpecError(where, f"names blob {descriptor['digest']}, which cannot be read: {error.strerror}"))
        return None
    if size != descriptor["size"]:
        found.append(SpecError(f"{where}.size", f"must be the blob's size {size}, got {descriptor['size']}"))
    if actual is not None and actual != encoded:
        found.append(SpecError(f"{where}.digest", f"must be the blob's digest {algorithm}:{actual}"))
    if kind is None:
        return None
    return _read_json(path, f"{where} ({kind} blob)", kind, found)


def _uncompressed_digest(path: str) -> str:
    """The sha256 of a layer blob's uncompressed tar, decompressed in bounded memory.

    Raises SpecError for damaged compressed data, NotChecked for an xz layer
    needing too much memory (see :func:`nix2aci.unarchive.uncompressed_pieces`).
    """
    uncompressed = hashlib.sha256()
    with open(path, "rb") as file:
        for piece in unarchive.uncompressed_pieces(file):
            uncompressed.update(piece)
    return uncompressed.hexdigest()


def problems(root: str, *, hash_layers: bool = True, warnings: list[str] | None = None) -> list[SpecError]:
    """Every problem of the image layout directory ``root``.

    Checks the oci-layout version, index.json, and for each manifest the index
    names: its blob, its config blob, each layer's size and (with
    ``hash_layers``) digest, and that the config's diff_ids are the layers'
    uncompressed digests (with ``hash_layers``), one per layer. With ``warnings`` (a list, for ``nix2aci validate``),
    what the spec allows but nix2aci cannot check is noted there: a missing blob,
    a nested index. Raises NotChecked for a JSON document too big to read.
    """
    found: list[SpecError] = []
    _read_json(os.path.join(root, "oci-layout"), "oci-layout", "layout", found)
    index = _read_json(os.path.join(root, "index.json"), "index.json", "index", found)
    if not os.path.isdir(os.path.join(root, "blobs")):
        found.append(SpecError("blobs", "must be a directory"))
    for i, entry in enumerate(index["manifests"] if index else []):
        where = f"index.json.manifests[{i}]"
        if entry["mediaType"] != MANIFEST:
            if warnings is None:
                found.append(SpecError(f"{where}.mediaType", f"must be {MANIFEST} (nix2aci reads no nested indexes)"))
            else:
                warnings.append(f"{where}: a {show(entry['mediaType'])}, not an image manifest; it was not checked")
            continue
        manifest = _blob(root, entry, where, "manifest", found, warnings)
        if manifest is None:
            continue
        config = _blob(root, manifest["config"], f"{where} config", "config", found, warnings)
        diff_ids = []
        for j, layer in enumerate(manifest["layers"]):
            layer_where = f"{where} layers[{j}]"
            _blob(root, layer, layer_where, None, found, warnings, hash_layers)
            algorithm, _, encoded = layer["digest"].partition(":")
            path = os.path.join(root, "blobs", algorithm, encoded)
            if hash_layers and algorithm == "sha256" and _regular_file(path):
                try:
                    diff_ids.append(f"sha256:{_uncompressed_digest(path)}")
                except SpecError as error:
                    found.append(SpecError(layer_where, f"must be a readable layer: it {error.rule}"))
                except OSError as error:
                    found.append(SpecError(layer_where, f"must be a readable layer: {error.strerror or error}"))
        if config is not None:
            recorded = config["rootfs"]["diff_ids"]
            if len(recorded) != len(manifest["layers"]):
                found.append(
                    SpecError(
                        f"{where} config.rootfs.diff_ids",
                        f"must have one entry per layer ({len(manifest['layers'])}), has {len(recorded)}",
                    )
                )
            elif hash_layers and len(diff_ids) == len(recorded) and recorded != diff_ids:
                found.append(
                    SpecError(f"{where} config.rootfs.diff_ids", f"must be the uncompressed layers' digests {diff_ids}")
                )
    return found

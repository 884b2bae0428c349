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
import tempfile
from typing import Any

import attrs

from .. import basics, tree
from ..archive import open_decompressed, write_archive
from ..errors import SpecError
from ..schema import Schema, load_json, prefixed
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
    entries = [entry for entry in tree.image_tree(spec) if entry.path]
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


def _read_json(path: str, where: str, kind: str, found: list[SpecError]) -> Any:
    """The JSON document at ``path`` checked as ``kind``; None (and a problem) when unreadable."""
    try:
        with open(path, "rb") as file:
            document = json.loads(file.read())
    except (OSError, ValueError, RecursionError) as error:
        found.append(SpecError(where, f"must be a readable JSON {kind}: {error}"))
        return None
    errors = SCHEMAS[kind].check(document).errors
    found.extend(prefixed(where, errors))
    return None if errors else document


def _blob(root: str, descriptor: dict[str, Any], where: str, kind: str | None, found: list[SpecError]) -> Any:
    """Check the blob a descriptor names (existence, size, digest); return its JSON as ``kind`` if asked."""
    algorithm, _, encoded = descriptor["digest"].partition(":")
    path = os.path.join(root, "blobs", algorithm, encoded)
    try:
        with open(path, "rb") as file:
            content = file.read() if kind else None
            size = len(content) if content is not None else os.fstat(file.fileno()).st_size
    except OSError:
        found.append(SpecError(where, f"names blob {descriptor['digest']}, which is not in blobs/"))
        return None
    if size != descriptor["size"]:
        found.append(SpecError(f"{where}.size", f"must be the blob's size {size}, got {descriptor['size']}"))
    if content is not None and algorithm in hashlib.algorithms_available:
        actual = hashlib.new(algorithm, content).hexdigest()
        if actual != encoded:
            found.append(SpecError(f"{where}.digest", f"must be the blob's digest {algorithm}:{actual}"))
    if kind is None:
        return None
    return _read_json(path, f"{where} ({kind} blob)", kind, found)


def _layer_digests(path: str) -> tuple[str, str]:
    """The sha256 of a layer blob as stored and of its uncompressed tar."""
    stored, uncompressed = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            stored.update(chunk)
    with open_decompressed(path) as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            uncompressed.update(chunk)
    return stored.hexdigest(), uncompressed.hexdigest()


def problems(root: str, *, hash_layers: bool = True) -> list[SpecError]:
    """Every problem of the image layout directory ``root``.

    Checks the oci-layout version, index.json, and for each manifest the index
    names: its blob, its config blob, each layer's size and (with
    ``hash_layers``) digest, and that the config's diff_ids are the layers'
    uncompressed digests, one per layer.
    """
    found: list[SpecError] = []
    _read_json(os.path.join(root, "oci-layout"), "oci-layout", "layout", found)
    index = _read_json(os.path.join(root, "index.json"), "index.json", "index", found)
    if not os.path.isdir(os.path.join(root, "blobs")):
        found.append(SpecError("blobs", "must be a directory"))
    for i, entry in enumerate(index["manifests"] if index else []):
        where = f"index.json.manifests[{i}]"
        if entry["mediaType"] != MANIFEST:
            found.append(SpecError(f"{where}.mediaType", f"must be {MANIFEST} (nix2aci reads no nested indexes)"))
            continue
        manifest = _blob(root, entry, where, "manifest", found)
        if manifest is None:
            continue
        config = _blob(root, manifest["config"], f"{where} config", "config", found)
        diff_ids = []
        for j, layer in enumerate(manifest["layers"]):
            layer_where = f"{where} layers[{j}]"
            _blob(root, layer, layer_where, None, found)
            algorithm, _, encoded = layer["digest"].partition(":")
            path = os.path.join(root, "blobs", algorithm, encoded)
            if hash_layers and algorithm == "sha256" and os.path.exists(path):
                try:
                    stored, uncompressed = _layer_digests(path)
                except (OSError, EOFError, ValueError) as error:
                    found.append(SpecError(layer_where, f"must be a readable layer: {error}"))
                    continue
                if stored != encoded:
                    found.append(SpecError(f"{layer_where}.digest", f"must be the blob's digest sha256:{stored}"))
                diff_ids.append(f"sha256:{uncompressed}")
        if config is not None:
            recorded = config["rootfs"]["diff_ids"]
            if len(recorded) != len(manifest["layers"]):
                found.append(
                    SpecError(
                        f"{where} config.rootfs.diff_ids",
                        f"must have one entry per layer ({len(manifest['layers'])}), has {len(recorded)}",
                    )
                )
            elif hash_layers and diff_ids and recorded != diff_ids:
                found.append(
                    SpecError(f"{where} config.rootfs.diff_ids", f"must be the uncompressed layers' digests {diff_ids}")
                )
    return found

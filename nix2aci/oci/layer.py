"""An OCI image's layer as the output of a build of its own: the compressed blob and what describes it.

Input: a :class:`~nix2aci.build.spec.StoreLayerSpec` (a group of store paths) or a
:class:`~nix2aci.build.spec.BuildSpec` of format ``oci-rootfs-layer`` (the image's
last layer). Output, in ``$out``:

- ``blob``: the layer, a deterministic tar compressed as the spec says;
- ``layer.json``: ``{"mediaType", "digest", "size", "diffId", "env"}``: its
  descriptor's fields, the digest of its uncompressed tar, and the environment its
  files imply (the CA bundle's variables, for the last layer) for the image config.

:mod:`nix2aci.oci.image` reads them (:func:`read`). The blob is hashed while it is
written; nothing reads it again.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .. import inputs
from ..archive.compression import MissingLibrary
from ..archive.write import write_archive
from ..build import basics, plan, tree
from ..build.spec import BuildSpec, StoreLayerSpec
from ..errors import Nix2AciError
from .layout import LAYER_COMPRESSIONS, Descriptor, layer_media_type

BLOB = "blob"
RECORD = "layer.json"
# The largest layer.json read back; real ones are a few hundred bytes.
_MAX_RECORD = 1 << 20


@attrs.frozen
class BuiltLayer:
    """A layer build's output: its blob's descriptor, the digest of its uncompressed tar, the environment its
    files imply, and the host path of its blob."""

    descriptor: Descriptor
    diff_id: str
    env: dict[str, str]
    blob: str


def write(entries: Iterable[plan.Entry], out: str, compression: str, env: dict[str, str]) -> BuiltLayer:
    """Write the layer of ``entries`` (in plan order, the image root first) into the directory ``out``."""
    chosen = LAYER_COMPRESSIONS.named(compression)
    try:  # before anything is written
        chosen.check_library()
    except MissingLibrary as error:
        raise Nix2AciError(f'layerCompression = "{chosen.name}": {error}') from None
    os.makedirs(out)
    blob = os.path.join(out, BLOB)
    # A layer holds the tree below its root; the root directory itself is implied.
    checked = (entry for entry in plan.contained(entries) if entry.path)
    with open(blob, "xb") as file:
        summary = write_archive(
            checked, file, compression=chosen, uncompressed_digest="sha256", compressed_digest="sha256"
        )
    built = BuiltLayer(
        Descriptor(layer_media_type(chosen), f"sha256:{summary.compressed_digest}", summary.compressed_size),
        f"sha256:{summary.uncompressed_digest}",
        env,
        blob,
    )
    record = {**built.descriptor.to_json(), "diffId": built.diff_id, "env": env}
    with open(os.path.join(out, RECORD), "x", encoding="utf-8") as file:
        json.dump(record, file, sort_keys=True, separators=(",", ":"))
    return built


def build_store_layer(spec: StoreLayerSpec) -> BuiltLayer:
    """The layer of ``spec.paths``: their copies and the directories of the store they lie in."""
    entries = tree.store_layer(tuple(sorted(spec.paths))).entries()
    return write(itertools.chain([plan.directory("")], entries), spec.out, spec.compression, {})


def build_rootfs_layer(spec: BuildSpec) -> BuiltLayer:
    """The image's last layer: the profile, the rootfs basics and the user's files, with the closure too when
    ``includeStore`` (the image's one layer). The profile's directories are directories, never one link to a
    package's: in every engine they merge with a lower layer's (fromImage's /bin, /etc), and a later image
    built on this one can add to them."""
    image_tree = tree.image_tree(spec, collapse=False)
    entries: Iterator[plan.Entry] = image_tree.merged() if spec.output.include_store else image_tree.final.entries()
    return write(entries, spec.out, spec.output.compression, basics.environment(spec.rootfs, {}))


def read(output: str) -> BuiltLayer:
    """The layer built into the store path ``output`` (layer.json and blob), as :func:`write` left it.

    Raises Nix2AciError when layer.json is missing or not what :func:`write` writes.
    """
    try:
        with inputs.open_beneath(output, RECORD, "layer record") as file:
            record: Any = json.loads(file.read(_MAX_RECORD))
        descriptor = Descriptor(record["mediaType"], record["digest"], record["size"])
        built = BuiltLayer(descriptor, record["diffId"], dict(record["env"]), os.path.join(output, BLOB))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise Nix2AciError(f"{output} is not a layer nix2aci built: {RECORD}: {error}") from None
    return built

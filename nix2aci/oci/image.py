"""An OCI image from its layers: the config, manifest and index, written as a layout or a docker-archive.

Input: an :class:`~nix2aci.build.spec.ImageSpec`: the image config's arguments, the
outputs of its own layer builds (:mod:`nix2aci.oci.layer`) and the base image
(:mod:`nix2aci.oci.base`). Output in ``$out``, as its ``format`` says:

- ``oci-layout``: ``oci-layout``, ``index.json`` and ``blobs/sha256/``, where the
  config and manifest are files and each layer is a symbolic link to its layer
  build's blob: the store holds a layer once however many images have it;
- ``docker-archive``: ``NAME-TAG.tar``, which ``docker load`` and ``podman load``
  take (:mod:`nix2aci.oci.docker_archive`);

and in either ``postprocess.sh`` (:mod:`nix2aci.build.postprocess_script`), which
links the image into the user's directory and pushes it. It is no part of the image:
the layout's documents and blobs, the archive's bytes and every layer are the same
whatever the script says.

The config has ``created`` as given (never the build's time), one ``history`` entry
per layer saying what it holds, and what the base image's config says where this
image's arguments do not (Env merged by name, Labels and ExposedPorts merged).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from typing import Any

import attrs

from ..build import basics, postprocess_script
from ..build.spec import ImageSpec
from ..build.spec.layout import LayoutImage
from . import base, docker_archive, layer
from .layout import CONFIG, INDEX, MANIFEST, REF_NAME, Descriptor, canonical, problems

# What made a layer, in its history entry.
CREATED_BY = "nix2aci buildOCIImage"


@attrs.frozen
class Blob:
    """A blob of the image: its descriptor, and its bytes (a document) or the host file holding them."""

    descriptor: Descriptor
    content: bytes | None = None
    path: str | None = None


@attrs.frozen
class Image:
    """An image ready to write: its blobs (config and manifest first, then the layers), the manifest's descriptor
    in the index (with platform and tag), the index and the oci-layout documents."""

    blobs: tuple[Blob, ...]
    config: Descriptor
    layers: tuple[Descriptor, ...]
    index: bytes
    layout: bytes


def document_blob(media_type: str, document: Any) -> Blob:
    """The blob of a JSON ``document``."""
    content = canonical(document)
    return Blob(Descriptor(media_type, f"sha256:{hashlib.sha256(content).hexdigest()}", len(content)), content)


def execution(image: LayoutImage, env: dict[str, str], inherited: dict[str, Any]) -> dict[str, Any]:
    """The config's ``config`` object: this image's arguments over the base's ``inherited`` one.

    Env is merged by name, Labels by key and ExposedPorts by port (this image's win);
    Entrypoint, Cmd, User and WorkingDir are replaced when given. As in a Dockerfile,
    an Entrypoint given without a Cmd drops the base's Cmd (it was the old entrypoint's).
    """
    base_env = dict(item.partition("=")[::2] for item in inherited.get("Env") or [])
    merged_env = {**base_env, **env}
    given = {
        "Entrypoint": image.entrypoint and list(image.entrypoint),
        "Cmd": image.cmd and list(image.cmd),
        "WorkingDir": image.working_dir,
        "User": image.user,
    }
    result = {name: value for name, value in inherited.items() if value not in (None, [], {}, "")}
    if image.entrypoint and not image.cmd:
        result.pop("Cmd", None)
    result.update({name: value for name, value in given.items() if value})
    result["Env"] = [f"{name}={merged_env[name]}" for name in sorted(merged_env)]
    result["Labels"] = {**(inherited.get("Labels") or {}), **image.labels}
    result["ExposedPorts"] = {**(inherited.get("ExposedPorts") or {}), **{port: {} for port in image.exposed_ports}}
    return {name: value for name, value in result.items() if value not in (None, [], {}, "")}


def image_config(
    image: LayoutImage, env: dict[str, str], base_image: base.BaseImage | None, own: list[tuple[str, str]]
) -> dict[str, Any]:
    """The image config: platform, ``created``, the execution parameters over the base's, the diff_ids and
    history of the base's layers and of ``own`` ((diff_id, history comment) per own layer)."""
    inherited = base_image.config if base_image else {}
    base_history = inherited.get("history") or [
        {"created": inherited.get("created", image.created), "comment": "a layer of the base image"}
        for _ in (base_image.layers if base_image else ())
    ]
    document = {
        "architecture": image.arch,
        "os": image.os,
        "created": image.created,
        "config": execution(image, env, inherited.get("config") or {}),
        "rootfs": {
            "type": "layers",
            "diff_ids": [layer.diff_id for layer in (base_image.layers if base_image else ())]
            + [diff_id for diff_id, _ in own],
        },
        "history": [
            *base_history,
            *({"created": image.created, "created_by": CREATED_BY, "comment": comment} for _, comment in own),
        ],
    }
    if image.variant:
        document["variant"] = image.variant
    return document


def assemble(spec: ImageSpec) -> Image:
    """The image of ``spec``: its layers read from their builds and the base image, its documents made."""
    image = spec.image
    base_image = base.read(spec.base_image) if spec.base_image else None
    built = [layer.read(given.layer) for given in spec.layers]
    implied: dict[str, str] = {}
    for own in built:
        implied.update(own.env)
    env = basics.environment_over(implied, image.env)
    layers = [
        Blob(inherited.descriptor, path=inherited.path) for inherited in (base_image.layers if base_image else ())
    ]
    layers += [Blob(own.descriptor, path=own.blob) for own in built]
    own_history = [(own.diff_id, given.comment) for own, given in zip(built, spec.layers, strict=True)]
    config = document_blob(CONFIG, image_config(image, env, base_image, own_history))
    manifest = document_blob(
        MANIFEST,
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config.descriptor.to_json(),
            "layers": [blob.descriptor.to_json() for blob in layers],
        },
    )
    platform = {"architecture": image.arch, "os": image.os, **({"variant": image.variant} if image.variant else {})}
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [manifest.descriptor.to_json(platform=platform, annotations={REF_NAME: image.tag})],
    }
    return Image(
        (config, manifest, *layers),
        config.descriptor,
        tuple(blob.descriptor for blob in layers),
        canonical(index),
        canonical({"imageLayoutVersion": "1.0.0"}),
    )


def write_layout(image: Image, out: str) -> None:
    """Write ``image`` as an OCI image layout into the new directory ``out``, each layer a link to its blob."""
    write_layout_files(image.blobs, image.index, image.layout, out)


def write_layout_files(blobs: tuple[Blob, ...], index: bytes, layout: bytes, out: str) -> None:
    """Write an OCI image layout into the new directory ``out``: ``blobs`` (a blob with a ``path`` is a link
    to it, one named twice is stored once), then ``index`` as index.json and ``layout`` as oci-layout; check it."""
    directory = os.path.join(out, "blobs", "sha256")
    os.makedirs(directory)
    for blob in blobs:
        path = os.path.join(directory, blob.descriptor.digest.removeprefix("sha256:"))
        if os.path.lexists(path):  # a blob named twice (two layers alike) is stored once
            continue
        if blob.content is None:
            os.symlink(blob.path, path)
        else:
            with open(path, "xb") as file:
                file.write(blob.content)
    for name, content in (("index.json", index), ("oci-layout", layout)):
        with open(os.path.join(out, name), "xb") as file:
            file.write(content)
    # The layers were hashed while their builds wrote them: check everything but re-reading them.
    found = problems(out, hash_layers=False)
    if found:
        raise found[0]


def build(spec: ImageSpec) -> Descriptor:
    """Write the image of ``spec`` into ``spec.out`` in its format, and its ``postprocess.sh``; return the
    config's descriptor.

    The script links the image into OUTDIR under the name the archive's file has
    (``NAME-TAG.tar``, NAME's last part), a layout as ``NAME-TAG``.
    """
    image = assemble(spec)
    if spec.format == "oci-layout":
        write_layout(image, spec.out)
        linked = f"{posixpath.basename(spec.image.name)}-{spec.image.tag}"
    else:
        linked = os.path.basename(docker_archive.write(image, spec.image.name, spec.image.tag, spec.out))
    postprocess_script.write_script(spec.out, spec.command, spec.sign, (spec.format, linked))
    return image.config

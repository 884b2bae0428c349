"""The build spec's part for format ``aci`` (nix/mk-aci.nix): the image's arguments and the archive's options.

``image`` holds mkACI's arguments but the packages, prefer, the rootfs basics and
those the spec carries elsewhere (static, thin: the mode; sign, compression,
compressionLevel: the keys beside it), with os and arch checked and name and
version defaulted. :mod:`nix2aci.aci.build` makes the manifest of it, which
:class:`nix2aci.appc.ImageManifest` validates. The keys, beside the common ones:

"""

from __future__ import annotations

from typing import Any

import attrs

from ...schema import load_json
from .sbom import PROVENANCE, Provenance
from .typed import (
    ANY,
    BOOLEAN,
    INTEGER,
    STRING,
    Record,
    contract,
    integer_from,
    key,
    list_of,
    nullable,
    object_of,
    one_of,
    record,
)

ARGV = nullable(list_of(STRING))
STRINGS = object_of(STRING)
# The compressions an ACI may have: the ACI format's own list, which nix/mk-aci.nix reads too.
COMPRESSIONS = tuple(load_json("nix2aci.aci", "compressions.json"))


@attrs.frozen
class Mount(Record):
    """A mount point of the app (``mounts.<name>``)."""

    path: str = attrs.field(metadata=key(STRING, "where it is mounted in the image"))
    read_only: bool = attrs.field(metadata=key(BOOLEAN, "whether the mount is read-only", "readOnly"))


@attrs.frozen
class Port(Record):
    """A port of the app (``ports.<name>``)."""

    port: int = attrs.field(metadata=key(INTEGER, "the port number"))
    protocol: str = attrs.field(metadata=key(STRING, "the protocol (tcp, udp)"))
    count: int = attrs.field(metadata=key(INTEGER, "how many ports, from port on"))
    socket_activated: bool = attrs.field(
        metadata=key(BOOLEAN, "whether the app is socket-activated on it", "socketActivated")
    )


@attrs.frozen
class Isolator(Record):
    """An isolator of the app."""

    name: str = attrs.field(metadata=key(STRING, "the isolator's name (resource/memory)"))
    value: Any = attrs.field(metadata=key(ANY, "its value, as the isolator's own schema says"))


@attrs.frozen
class EventHandlers(Record):
    """The commands run around the app."""

    pre_start: tuple[str, ...] | None = attrs.field(
        metadata=key(ARGV, "run before the app starts; null: nothing", "pre-start")
    )
    post_stop: tuple[str, ...] | None = attrs.field(
        metadata=key(ARGV, "run after the app stops; null: nothing", "post-stop")
    )


@attrs.frozen
class Dependency(Record):
    """An image this one depends on."""

    image_name: str = attrs.field(metadata=key(STRING, "the image's name", "imageName"))
    image_id: str | None = attrs.field(metadata=key(nullable(STRING), "the image's ID", "imageID"))
    labels: dict[str, str] = attrs.field(metadata=key(STRINGS, "the image's labels"))
    size: int | None = attrs.field(metadata=key(nullable(INTEGER), "the image's size in bytes"))


@attrs.frozen
class AciImage(Record):
    """The image's own arguments, from which the manifest is made."""

    name: str = attrs.field(metadata=key(STRING, "the image's AC Identifier"))
    version: str = attrs.field(metadata=key(STRING, "the version label, part of the file name"))
    os: str = attrs.field(metadata=key(STRING, "the os label (appc's names)"))
    arch: str = attrs.field(metadata=key(STRING, "the arch label (appc's names)"))
    exec: tuple[str, ...] | None = attrs.field(metadata=key(ARGV, "the app's command; null: no exec"))
    env: dict[str, str] = attrs.field(metadata=key(STRINGS, "the app's environment, by name"))
    user: str = attrs.field(metadata=key(STRING, "the app's user: a name, a numeric id or an absolute path"))
    group: str = attrs.field(metadata=key(STRING, "the app's group: a name, a numeric id or an absolute path"))
    supplementary_gids: tuple[int, ...] = attrs.field(
        metadata=key(list_of(INTEGER), "more group ids of the app", "supplementaryGIDs")
    )
    working_directory: str | None = attrs.field(
        metadata=key(nullable(STRING), "the app's working directory; null: /", "workingDirectory")
    )
    labels: dict[str, str] = attrs.field(metadata=key(STRINGS, "more labels (not version, os, arch)"))
    annotations: dict[str, str] = attrs.field(metadata=key(STRINGS, "the image's annotations"))
    user_labels: dict[str, str] = attrs.field(metadata=key(STRINGS, "the app's free-form labels", "userLabels"))
    user_annotations: dict[str, str] = attrs.field(
        metadata=key(STRINGS, "the app's free-form annotations", "userAnnotations")
    )
    mounts: dict[str, Mount] = attrs.field(metadata=key(object_of(record(Mount)), "the app's mount points, by name"))
    ports: dict[str, Port] = attrs.field(metadata=key(object_of(record(Port)), "the app's ports, by name"))
    isolators: tuple[Isolator, ...] = attrs.field(metadata=key(list_of(record(Isolator)), "the app's isolators"))
    event_handlers: EventHandlers = attrs.field(
        metadata=key(record(EventHandlers), "commands run around the app", "eventHandlers")
    )
    dependencies: tuple[Dependency, ...] = attrs.field(
        metadata=key(list_of(record(Dependency)), "images this one depends on")
    )
    path_whitelist: tuple[str, ...] = attrs.field(
        metadata=key(list_of(STRING), "the only paths the app may see", "pathWhitelist")
    )


@attrs.frozen
class AciOutput(Record):
    """What format ``aci`` adds to the common keys: the image's arguments and how its archive is made."""

    image: AciImage = attrs.field(metadata=key(record(AciImage), "the image's own arguments"))
    sign: bool = attrs.field(metadata=key(BOOLEAN, "whether postprocess.sh signs the image (false: it only links it)"))
    command: str = attrs.field(
        metadata=key(STRING, "the .drv file of nix2aci's command line, which postprocess.sh runs")
    )
    compression: str = attrs.field(metadata=key(one_of(*COMPRESSIONS), "the archive's compression"))
    compression_level: int | None = attrs.field(
        metadata=key(
            nullable(integer_from(0, 9)), "the compression level; null: the compressor's default", "compressionLevel"
        )
    )
    provenance: dict[str, Provenance] = attrs.field(
        metadata=key(PROVENANCE, "what Nix knew of some store paths, for the SBOM (nix2aci.build.spec.sbom)")
    )


__doc__ += "\n".join(contract(AciOutput, "    ")) + "\n"

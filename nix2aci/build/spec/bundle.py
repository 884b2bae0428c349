"""The build spec's part for format ``oci-bundle`` (nix/build-container.nix): the runtime config's arguments.

``image`` holds buildContainer's arguments but the packages, prefer, the rootfs
basics, name and thin (the mode), with os and arch checked.
:mod:`nix2aci.oci.bundle` makes ``config.json`` of it, which
:mod:`nix2aci.oci.runtime` validates. The keys, beside the common ones:

"""

from __future__ import annotations

import attrs

from .sbom import PROVENANCE, Provenance
from .typed import BOOLEAN, INTEGER, STRING, Record, contract, key, list_of, nullable, object_of, record


@attrs.frozen
class Mount(Record):
    """A mount of the container (``mounts.<destination>``)."""

    type: str = attrs.field(metadata=key(STRING, "the mount's type (bind, tmpfs, none, ...)"))
    source: str = attrs.field(metadata=key(STRING, "what is mounted"))
    options: tuple[str, ...] = attrs.field(metadata=key(list_of(STRING), "the mount's options (rbind, ro, ...)"))


@attrs.frozen
class User(Record):
    """The process's user."""

    uid: int = attrs.field(metadata=key(INTEGER, "the process's user id"))
    gid: int = attrs.field(metadata=key(INTEGER, "the process's group id"))
    additional_gids: tuple[int, ...] = attrs.field(metadata=key(list_of(INTEGER), "more group ids", "additionalGids"))


@attrs.frozen
class BundleImage(Record):
    """The container's own arguments, from which its runtime config is made."""

    os: str = attrs.field(metadata=key(STRING, "the os it is built for (Go's names), recorded in an annotation"))
    arch: str = attrs.field(
        metadata=key(STRING, "the architecture it is built for (Go's names), recorded in an annotation")
    )
    args: tuple[str, ...] = attrs.field(metadata=key(list_of(STRING), "the process's command"))
    env: dict[str, str] = attrs.field(metadata=key(object_of(STRING), "the process's environment, by name"))
    mounts: dict[str, Mount] = attrs.field(metadata=key(object_of(record(Mount)), "more mounts, by destination"))
    readonly: bool = attrs.field(metadata=key(BOOLEAN, "whether the root is read-only"))
    user: User = attrs.field(metadata=key(record(User), "the process's user and groups"))
    cwd: str = attrs.field(metadata=key(STRING, "the process's working directory"))
    terminal: bool = attrs.field(metadata=key(BOOLEAN, "whether the process gets a terminal"))
    hostname: str | None = attrs.field(metadata=key(nullable(STRING), "the container's hostname; null: none"))
    capabilities: tuple[str, ...] | None = attrs.field(
        metadata=key(nullable(list_of(STRING)), "the process's capabilities; null: rkt's and Docker's set")
    )


@attrs.frozen
class BundleOutput(Record):
    """What format ``oci-bundle`` adds to the common keys."""

    image: BundleImage = attrs.field(metadata=key(record(BundleImage), "the container's own arguments"))
    provenance: dict[str, Provenance] = attrs.field(
        metadata=key(PROVENANCE, "what Nix knew of some store paths, for the SBOM (nix2aci.build.spec.sbom)")
    )


__doc__ += "\n".join(contract(BundleOutput, "    ")) + "\n"

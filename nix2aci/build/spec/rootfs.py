"""The build spec's ``rootfs`` part: which basics the image's file tree gets, and the user's files.

nix/common.nix (``rootfsSpec``) writes it for every format from the rootfs arguments
(README "Rootfs basics"); :mod:`nix2aci.build.basics` makes the files. Its keys:

"""

from __future__ import annotations

import attrs

from .typed import BOOLEAN, INTEGER, STRING, Record, contract, key, nullable, object_of, record


@attrs.frozen
class Account(Record):
    """The image's user and group as the format's arguments give them."""

    user: str = attrs.field(metadata=key(STRING, "the image's user: a name, a numeric id or an absolute path"))
    group: str = attrs.field(metadata=key(STRING, "the image's group: a name, a numeric id or an absolute path"))


@attrs.frozen
class File(Record):
    """One of the user's files (``files.<path>``): exactly one of text, source, symlink or directory."""

    text: str | None = attrs.field(metadata=key(nullable(STRING), "the file's content"))
    source: str | None = attrs.field(metadata=key(nullable(STRING), "the host file (a store path) to copy"))
    symlink: str | None = attrs.field(metadata=key(nullable(STRING), "a symlink's target"))
    directory: bool = attrs.field(metadata=key(BOOLEAN, "true: a directory"))
    mode: str | None = attrs.field(
        metadata=key(nullable(STRING), 'the mode, an octal string such as "0640"; null: its kind\'s default')
    )
    uid: int = attrs.field(metadata=key(INTEGER, "the owner's id"))
    gid: int = attrs.field(metadata=key(INTEGER, "the group's id"))


@attrs.frozen
class Rootfs(Record):
    """The rootfs basics the image gets (see :mod:`nix2aci.build.basics`)."""

    users: bool = attrs.field(
        metadata=key(BOOLEAN, "/etc/passwd and /etc/group with root, nobody and the image's named user and group")
    )
    hosts: bool = attrs.field(metadata=key(BOOLEAN, "/etc/hosts for localhost"))
    tmp: bool = attrs.field(metadata=key(BOOLEAN, "/tmp, mode 1777"))
    shell_links: bool = attrs.field(
        metadata=key(BOOLEAN, "/bin/sh and /usr/bin/env when the image has a shell and env", "shellLinks")
    )
    resolv_conf: bool = attrs.field(
        metadata=key(BOOLEAN, "an empty /etc/resolv.conf, where the host's is mounted", "resolvConf")
    )
    cacert: str | None = attrs.field(
        metadata=key(nullable(STRING), "the CA bundle file (in the store) linked at the usual paths")
    )
    uid: int = attrs.field(metadata=key(INTEGER, "the id of a named user"))
    gid: int = attrs.field(metadata=key(INTEGER, "the id of a named group"))
    files: dict[str, File] = attrs.field(
        metadata=key(object_of(record(File)), "the user's files, by absolute path in the image")
    )
    account: Account = attrs.field(
        metadata=key(record(Account), "the image's user and group, for /etc/passwd and /etc/group")
    )


__doc__ += "\n".join(contract(Rootfs, "    ")) + "\n"

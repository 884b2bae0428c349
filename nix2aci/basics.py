"""Rootfs basics: the files users expect in any image, and their own files as data.

Input: the build spec's ``rootfs`` part (written by nix/common.nix) and the
entries already planned. Output: entries for what is missing of /etc/passwd and
/etc/group (root, nobody, the image's named user and group), /etc/hosts, /tmp
(mode 1777), the CA bundle at the usual three paths, /bin/sh and /usr/bin/env,
an empty /etc/resolv.conf to mount the host's on, and the user's ``files`` with
their modes and owners, which go into the tar headers: no root, fakeroot or VM
is needed to build them.

What packages provide wins over the basics; a user's file that clashes with a
package's is an error (see :func:`nix2aci.plan.merged`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

import attrs

from . import plan
from .errors import SpecError

CA_PATHS = ("etc/ssl/certs/ca-certificates.crt", "etc/ssl/certs/ca-bundle.crt", "etc/pki/tls/certs/ca-bundle.crt")
CA_VARIABLES = ("SSL_CERT_FILE", "NIX_SSL_CERT_FILE")
SHELLS = ("bin/bash", "bin/dash", "bin/ash", "bin/busybox")
HOSTS = b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
NOBODY = 65534


def named(value: str | None) -> str | None:
    """The name in a user or group value: None for ids and paths."""
    return None if not value or value.isdigit() or value.startswith("/") else value


def _accounts(rootfs: dict[str, Any]) -> tuple[bytes, bytes]:
    """/etc/passwd and /etc/group with root, nobody and the image's named user and group."""
    user, group = named(rootfs["account"]["user"]), named(rootfs["account"]["group"])
    group_value = rootfs["account"]["group"]
    gid = rootfs["gid"] if group else int(group_value) if group_value.isdigit() else 0
    passwd = ["root:x:0:0:root:/root:/bin/sh", f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/sbin/nologin"]
    groups = ["root:x:0:", f"nobody:x:{NOBODY}:"]
    if user and user not in ("root", "nobody"):
        passwd.append(f"{user}:x:{rootfs['uid']}:{gid}:{user}:/:/bin/sh")
    if group and group not in ("root", "nobody"):
        groups.append(f"{group}:x:{rootfs['gid']}:{user or ''}")
    return "".join(f"{line}\n" for line in passwd).encode(), "".join(f"{line}\n" for line in groups).encode()


def _file(path: str, description: dict[str, Any]) -> plan.Entry:
    """The entry of one of the user's ``files``."""
    relative = path.lstrip("/")
    mode = None if description["mode"] is None else int(description["mode"], 8)
    if description["directory"]:
        entry = plan.directory(relative, 0o755 if mode is None else mode)
    elif description["symlink"] is not None:
        entry = plan.symlink(relative, description["symlink"])
    elif description["text"] is not None:
        entry = plan.file_with_content(relative, description["text"].encode(), 0o644 if mode is None else mode)
    else:
        source = description["source"]
        if not posixpath.isfile(source):
            raise SpecError(f"files.{path}.source", f"must be a file, got {source}")
        entry = plan.Entry(
            relative, plan.Kind.FILE, 0o644 if mode is None else mode, source=source, size=posixpath.getsize(source)
        )
    return attrs.evolve(entry, uid=description["uid"], gid=description["gid"])


def entries(rootfs: dict[str, Any], planned: plan.Planned) -> Iterator[plan.Entry]:
    """The basics missing from ``planned``, the user's files, and the directories they need."""
    wanted: list[plan.Entry] = []
    if rootfs["users"]:
        passwd, group = _accounts(rootfs)
        wanted += [plan.file_with_content("etc/passwd", passwd), plan.file_with_content("etc/group", group)]
    if rootfs["hosts"]:
        wanted.append(plan.file_with_content("etc/hosts", HOSTS))
    if rootfs["tmp"]:
        wanted.append(plan.directory("tmp", 0o1777))
    if rootfs["cacert"]:
        wanted += [plan.symlink(path, rootfs["cacert"]) for path in CA_PATHS]
    if rootfs["resolvConf"]:
        wanted.append(plan.file_with_content("etc/resolv.conf", b""))
    if rootfs["shellLinks"]:
        shell = next((path for path in SHELLS if path in planned), None)
        if shell:
            wanted.append(plan.symlink("bin/sh", f"/{shell}"))
        if "bin/env" in planned:
            wanted.append(plan.symlink("usr/bin/env", "/bin/env"))
    added = {entry.path for entry in wanted if entry.path not in planned}
    user_files = [_file(path, rootfs["files"][path]) for path in sorted(rootfs["files"])]
    for entry in [*(entry for entry in wanted if entry.path in added), *user_files]:
        yield from planned.make_directories(posixpath.dirname(entry.path))
        planned[entry.path] = entry
        yield entry


def environment(rootfs: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """The user's ``env`` over the variables the basics imply (the CA bundle's)."""
    implied = {name: f"/{CA_PATHS[0]}" for name in CA_VARIABLES} if rootfs["cacert"] else {}
    return {**implied, **env}

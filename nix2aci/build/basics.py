"""Rootfs basics: the files users expect in any image, and their own files as data.

Input: the build spec's ``rootfs`` part (:class:`~nix2aci.build.spec.rootfs.Rootfs`,
written by nix/common.nix) and the entries already planned. Output: entries for what is missing of /etc/passwd and
/etc/group (root, nobody, the image's named user and group), /etc/hosts, /tmp
(mode 1777), the CA bundle at the usual three paths, /bin/sh and /usr/bin/env,
an empty /etc/resolv.conf to mount the host's on, and the user's ``files`` with
their modes and owners, which go into the tar headers: no root, fakeroot or VM
is needed to build them.

What packages provide wins over the basics, and the user's files win over the
basics; a user's file where a package (or another of the user's files) already
has something is an error, and so is one below a file or a symlink of the image,
or in the Nix store. The names and ids that become file names or lines of
/etc/passwd and /etc/group are checked here again against the rules Nix checked
at evaluation (``arguments.schema.json``), for a build spec that did not come
from the Nix functions.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import compile_pattern, load_schema, show
from . import plan
from .spec.rootfs import File, Rootfs

CA_PATHS = ("etc/ssl/certs/ca-certificates.crt", "etc/ssl/certs/ca-bundle.crt", "etc/pki/tls/certs/ca-bundle.crt")
CA_VARIABLES = ("SSL_CERT_FILE", "NIX_SSL_CERT_FILE")
SHELLS = ("bin/bash", "bin/dash", "bin/ash", "bin/busybox")
HOSTS = b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
NOBODY = 65534
# The image's store directory, which the user's files stay out of (nix/common.nix says why).
STORE = "nix/store"
ARGUMENTS = load_schema("nix2aci", "arguments.schema.json")
# Keys written without quotes in a field's path, as Nix writes them (nix/types.nix).
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")


def field(prefix: str, key: str) -> str:
    """The path of the argument ``prefix.key`` as Nix writes it: ``env.PATH``, ``files."/etc/motd"``."""
    return f"{prefix}.{key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)}"


def matches(definition: str, value: Any) -> bool:
    """Whether ``value`` is a string without NUL matching the pattern of ``definition`` in the argument schema."""
    pattern = ARGUMENTS.definition(definition)["pattern"]
    return isinstance(value, str) and "\0" not in value and compile_pattern(pattern).search(value) is not None


def check(argument: str, definition: str, value: Any) -> None:
    """Raise SpecError naming ``argument`` unless ``value`` matches ``definition`` (see :func:`matches`)."""
    if not matches(definition, value):
        raise SpecError(argument, f"must be {ARGUMENTS.definition(definition)['description']}; got {show(value)}")


def check_id(argument: str, value: Any) -> int:
    """``value``, an integer user or group id; SpecError naming ``argument`` for anything else."""
    rule = ARGUMENTS.definition("id")
    if not (type(value) is int and rule["minimum"] <= value <= rule["maximum"]):
        raise SpecError(argument, f"must be {rule['description']}; got {show(value)}")
    return value


def named(argument: str, value: Any) -> str | None:
    """The name in the user or group ``value`` given as ``argument``; None for a numeric id or a path.

    Anything else is an error: a name becomes a line of /etc/passwd or /etc/group.
    """
    if matches("numericId", value):
        check_id(argument, int(value))
        return None
    if matches("imagePath", value):
        return None
    if matches("accountName", value):
        return value
    allowed = ", ".join(ARGUMENTS.definition(name)["description"] for name in ("accountName", "numericId"))
    raise SpecError(
        argument, f"must be {allowed}, or {ARGUMENTS.definition('imagePath')['description']}; got {show(value)}"
    )


def _accounts(rootfs: Rootfs) -> tuple[bytes, bytes]:
    """/etc/passwd and /etc/group with root, nobody and the image's named user and group."""
    user_value, group_value = rootfs.account.user, rootfs.account.group
    user, group = named("user", user_value), named("group", group_value)
    uid, named_gid = check_id("uid", rootfs.uid), check_id("gid", rootfs.gid)
    gid = named_gid if group else int(group_value) if matches("numericId", group_value) else 0
    passwd = ["root:x:0:0:root:/root:/bin/sh", f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/sbin/nologin"]
    groups = ["root:x:0:", f"nobody:x:{NOBODY}:"]
    if user and user not in ("root", "nobody"):
        passwd.append(f"{user}:x:{uid}:{gid}:{user}:/:/bin/sh")
    if group and group not in ("root", "nobody"):
        groups.append(f"{group}:x:{named_gid}:{user or ''}")
    return "".join(f"{line}\n" for line in passwd).encode(), "".join(f"{line}\n" for line in groups).encode()


def _file(argument: str, path: str, description: File) -> plan.Entry:
    """The entry of the user's file at the absolute ``path``, given as ``argument``."""
    check(argument, "imagePath", path)
    relative = path.lstrip("/")
    if relative == STORE or relative.startswith(f"{STORE}/"):
        raise SpecError(
            argument, f"must lie outside the Nix store (/{STORE}): the image's store paths are copied unchanged"
        )
    mode = None
    if description.mode is not None:
        check(f"{argument}.mode", "fileMode", description.mode)
        mode = int(description.mode, 8)
    if description.directory:
        entry = plan.directory(relative, 0o755 if mode is None else mode)
    elif description.symlink is not None:
        target = description.symlink
        if not target or "\0" in target:
            raise SpecError(f"{argument}.symlink", f"must be a non-empty string without NUL; got {show(target)}")
        entry = plan.symlink(relative, target)
    elif description.text is not None:
        entry = plan.file_with_content(relative, description.text.encode(), 0o644 if mode is None else mode)
    else:
        entry = _source(f"{argument}.source", description.source, relative, 0o644 if mode is None else mode)
    return attrs.evolve(
        entry, uid=check_id(f"{argument}.uid", description.uid), gid=check_id(f"{argument}.gid", description.gid)
    )


def _source(argument: str, source: Any, path: str, mode: int) -> plan.Entry:
    """The entry at ``path`` of the host file ``source``, which must be a regular file (a symlink is not followed)."""
    try:
        info = os.lstat(source)
    except (OSError, TypeError, ValueError):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise SpecError(argument, f"must be a regular file (not a directory or a symlink), got {show(source)}")
    return plan.Entry(path, plan.Kind.FILE, mode, source=source, size=info.st_size)


def _basics(rootfs: Rootfs, planned: plan.Planned) -> Iterator[tuple[str, plan.Entry]]:
    """The basics ``rootfs`` switches on, each with the argument that asks for it."""
    if rootfs.users:
        passwd, group = _accounts(rootfs)
        yield from [
            ("users", plan.file_with_content("etc/passwd", passwd)),
            ("users", plan.file_with_content("etc/group", group)),
        ]
    if rootfs.hosts:
        yield "hosts", plan.file_with_content("etc/hosts", HOSTS)
    if rootfs.tmp:
        yield "tmp", plan.directory("tmp", 0o1777)
    if rootfs.cacert:
        yield from (("cacert", plan.symlink(path, rootfs.cacert)) for path in CA_PATHS)
    if rootfs.resolv_conf:
        yield "resolvConf", plan.file_with_content("etc/resolv.conf", b"")
    if rootfs.shell_links:
        shell = next((path for path in SHELLS if path in planned), None)
        if shell:
            yield "shellLinks", plan.symlink("bin/sh", f"/{shell}")
        if "bin/env" in planned:
            yield "shellLinks", plan.symlink("usr/bin/env", "/bin/env")


def entries(rootfs: Rootfs, planned: plan.Planned) -> Iterator[plan.Entry]:
    """The basics missing from ``planned`` and from the user's files, the user's files, and the directories they need.

    Raises SpecError naming the argument whose file cannot go where it should.
    """
    arguments = {path: field("files", path) for path in sorted(rootfs.files)}
    user_files = [(argument, _file(argument, path, rootfs.files[path])) for path, argument in arguments.items()]
    taken = {entry.path for _, entry in user_files}
    basics = [(argument, entry) for argument, entry in _basics(rootfs, planned) if entry.path not in taken]
    # Decided before any of them is planned: what the packages have wins over the basics.
    basics = [(argument, entry) for argument, entry in basics if entry.path not in planned]
    for argument, entry in [*basics, *user_files]:
        existing = planned.kind(entry.path)
        if existing is not None and (existing, entry.kind) != (plan.Kind.DIRECTORY, plan.Kind.DIRECTORY):
            raise SpecError(argument, f"/{entry.path} is already in the image, as a {existing.value}")
        try:
            yield from planned.make_parents(entry.path)
        except plan.NotADirectory as error:
            raise SpecError(argument, error.below(f"/{entry.path}")) from None
        planned[entry.path] = entry
        yield entry


def environment(rootfs: Rootfs, env: dict[str, str]) -> dict[str, str]:
    """The user's ``env`` over the variables the basics imply (the CA bundle's); see :func:`environment_over`."""
    implied = {name: f"/{CA_PATHS[0]}" for name in CA_VARIABLES} if rootfs.cacert else {}
    return environment_over(implied, env)


def environment_over(implied: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """The user's ``env`` over the ``implied`` variables.

    Raises SpecError naming ``env.NAME`` for a name that is not an environment variable name and a value with NUL.
    """
    for name, value in env.items():
        check(field("env", name), "environmentName", name)
        if "\0" in value:
            raise SpecError(field("env", name), f"must be a string without NUL; got {show(value)}")
    return {**implied, **env}

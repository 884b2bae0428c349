"""OCI runtime configs (``config.json``, runtime-spec v1.0.2 for Linux): made and checked.

:func:`config` makes the config nix2aci's bundles and ``nix2aci run`` use;
:func:`problems` checks any config against the project's schema
(``runtime-config.schema.json``) and the rules a schema cannot state.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from ..errors import SpecError
from ..schema import load_schema, prefixed

OCI_VERSION = "1.0.2"
SCHEMA = load_schema(__package__, "runtime-config.schema.json")
# rkt's default capabilities (Docker's too): what an app may expect.
DEFAULT_CAPABILITIES = (
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)
DEFAULT_NAMESPACES = ("mount", "pid", "ipc", "uts")
# Kept from the host's view of /proc and /sys: what runc's own `runc spec` masks.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def system_mounts() -> list[dict[str, Any]]:
    """/proc (runc needs it), /dev, /dev/pts, /dev/shm and a read-only /sys."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755"]},
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def config(
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    additional_gids: Sequence[int] = (),
    terminal: bool = False,
    hostname: str | None = None,
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    readonly: bool = False,
    mounts: Sequence[dict[str, Any]] = (),
    process: dict[str, Any] | None = None,
    linux: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A runtime config for a bundle whose root filesystem is ``rootfs``.

    The process runs ``args`` with ``env`` (``NAME=VALUE`` strings) in ``cwd`` as
    ``uid``:``gid`` in private mount, pid, ipc and uts namespaces (and the host's
    network), with :func:`system_mounts` before ``mounts``. ``process`` and
    ``linux`` add keys to those objects (isolator settings); a ``hostname`` needs
    the uts namespace, which is always there.
    """
    document: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "root": {"path": "rootfs", "readonly": readonly},
        "process": {
            "terminal": terminal,
            "user": {"uid": uid, "gid": gid, **({"additionalGids": list(additional_gids)} if additional_gids else {})},
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
            "capabilities": {kind: list(capabilities) for kind in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
            **(process or {}),
        },
        "mounts": [*system_mounts(), *mounts],
        "linux": {
            "namespaces": [{"type": kind} for kind in DEFAULT_NAMESPACES],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            **(linux or {}),
        },
    }
    if hostname is not None:
        document["hostname"] = hostname
    if annotations:
        document["annotations"] = dict(annotations)
    return document


def problems(document: Any) -> list[SpecError]:
    """Every problem of a runtime config (any JSON value): the schema's, then the rules beyond it.

    Beyond the schema: namespace types are unique; ``hostname`` needs a uts
    namespace; a user namespace needs uid and gid mappings; rlimit types are unique.
    """
    errors = list(SCHEMA.check(document).errors)
    if errors or not isinstance(document, dict):
        return errors
    linux = document.get("linux", {})
    namespaces = [namespace["type"] for namespace in linux.get("namespaces", [])]
    for kind, count in collections.Counter(namespaces).items():
        if count > 1:
            errors.append(SpecError("linux.namespaces", f"must name each type once, {kind!r} is there {count} times"))
    if "hostname" in document and "uts" not in namespaces:
        errors.append(SpecError("hostname", "needs a uts namespace in linux.namespaces"))
    if "user" in namespaces:
        errors += [
            SpecError(f"linux.{key}", "must map ids when there is a user namespace")
            for key in ("uidMappings", "gidMappings")
            if not linux.get(key)
        ]
    rlimits = [rlimit["type"] for rlimit in document["process"].get("rlimits", [])]
    errors += [
        SpecError("process.rlimits", f"must set each type once, {kind} is there {count} times")
        for kind, count in collections.Counter(rlimits).items()
        if count > 1
    ]
    return errors


def check(document: dict[str, Any], where: str) -> None:
    """Raise the first problem of a config nix2aci made, its field prefixed with ``where``."""
    for problem in prefixed(where, problems(document)):
        raise problem

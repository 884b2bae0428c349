"""OCI runtime configs (``config.json``, runtime-spec v1.0.2 for Linux): made and checked.

:func:`config` makes the config nix2aci's bundles and ``nix2aci run`` use;
:func:`problems` checks any config against the project's schema
(``runtime-config.schema.json``) and the rules a schema cannot state.
"""

from __future__ import annotations

import collections
import errno
import platform
from collections.abc import Iterable, Sequence
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
# Syscalls the default seccomp filter refuses (EPERM), each group with the capabilities any one of which lets the
# app make them (none: always refused). References: Docker's default profile (moby profiles/seccomp/default.json:
# the calls it allows only with a capability, or never) and rkt's @rkt/default-blacklist (rkt
# Documentation/seccomp-guide.md). Where they differ: clock tuning (adjtimex, clock_adjtime) needs CAP_SYS_TIME as
# in rkt; ptrace and process_vm_readv/writev stay allowed as in Docker (kernels since 4.8 check seccomp again after
# a tracer changes a call); personality stays allowed (Docker filters its argument, which needs a rule per value).
# Names the kernel does not have on an architecture (stime on x86_64) are skipped by runc.
BLOCKED_SYSCALLS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        (),
        (
            "add_key", "afs_syscall", "create_module", "get_kernel_syms", "getpmsg", "kexec_file_load", "kexec_load",
            "keyctl", "move_pages", "nfsservctl", "pivot_root", "putpmsg", "query_module", "request_key", "security",
            "swapoff", "swapon", "_sysctl", "sysfs", "tuxcall", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
            "vserver",
        ),
    ),
    (
        ("CAP_SYS_ADMIN",),
        (
            "bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
            "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
            "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ),
    ),
    (("CAP_BPF",), ("bpf",)),
    (("CAP_PERFMON",), ("perf_event_open",)),
    (("CAP_SYSLOG",), ("syslog",)),
    (("CAP_DAC_READ_SEARCH",), ("open_by_handle_at",)),
    (("CAP_SYS_BOOT",), ("reboot",)),
    (("CAP_SYS_MODULE",), ("delete_module", "finit_module", "init_module")),
    (("CAP_SYS_PACCT",), ("acct",)),
    (("CAP_SYS_PTRACE",), ("kcmp", "pidfd_getfd", "process_madvise")),
    (("CAP_SYS_RAWIO",), ("ioperm", "iopl")),
    (
        ("CAP_SYS_TIME",),
        ("adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"),
    ),
    (("CAP_SYS_TTY_CONFIG",), ("vhangup",)),
    (("CAP_SYS_NICE",), ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")),
)  # fmt: skip
# clone(2) flags that make namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): refused
# without CAP_SYS_ADMIN, as unshare is. clone3 passes its flags in memory a filter cannot read, so it gets ENOSYS
# and the C library falls back to clone (Docker does the same).
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# The seccomp architectures of a machine: its own and those its kernel also runs (32-bit calls on x86_64 go
# through other syscall numbers, which a filter for x86_64 alone would let through).
SECCOMP_ARCHITECTURES = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}
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


def default_blocked_syscalls(capabilities: Iterable[str]) -> frozenset[str]:
    """The syscalls of :data:`BLOCKED_SYSCALLS` that an app holding ``capabilities`` may not make."""
    held = set(capabilities)
    every = {name for _, names in BLOCKED_SYSCALLS for name in names}
    unlocked = {name for unlocking, names in BLOCKED_SYSCALLS if held.intersection(unlocking) for name in names}
    return frozenset(every - unlocked)


def seccomp_action(action: str, errno_number: int | None = None) -> dict[str, Any]:
    """A rule's action: ``SCMP_ACT_ERRNO`` with ``errno_number``, or another action (``SCMP_ACT_ALLOW``, ...)."""
    return {"action": action, **({"errnoRet": errno_number} if errno_number is not None else {})}


EPERM = seccomp_action("SCMP_ACT_ERRNO", errno.EPERM)


def namespace_clone_rules(allowlist: bool) -> list[dict[str, Any]]:
    """Rules that keep clone from making namespaces and send clone3 to the C library's clone fallback (ENOSYS).

    ``allowlist``: the filter refuses what no rule allows, so clone is allowed
    without namespace flags; otherwise clone with any of them is refused (EPERM).
    """
    clone3 = {"names": ["clone3"], **seccomp_action("SCMP_ACT_ERRNO", errno.ENOSYS)}
    if allowlist:
        mask = sum(CLONE_NAMESPACE_FLAGS)
        condition = {"index": 0, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
        return [{"names": ["clone"], **seccomp_action("SCMP_ACT_ALLOW"), "args": [condition]}, clone3]
    refusals = [
        {
            "names": ["clone"],
            **EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }
        for flag in CLONE_NAMESPACE_FLAGS
    ]
    return [*refusals, clone3]


def seccomp(default: dict[str, Any], rules: Sequence[dict[str, Any]], machine: str | None = None) -> dict[str, Any]:
    """``linux.seccomp``: ``default`` (a :func:`seccomp_action`) for every call no rule names, then ``rules``.

    The filter covers the architectures of ``machine`` (default: this one's, see
    :data:`SECCOMP_ARCHITECTURES`); on another machine it names none, which
    filters the native one.
    """
    action = default["action"]
    return {
        "defaultAction": action,
        **({"defaultErrnoRet": default["errnoRet"]} if "errnoRet" in default else {}),
        "architectures": list(SECCOMP_ARCHITECTURES.get(machine or platform.machine(), ())),
        "syscalls": [dict(rule) for rule in rules],
    }


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
    namespaces: Sequence[str] = DEFAULT_NAMESPACES,
    mounts: Sequence[dict[str, Any]] = (),
    process: dict[str, Any] | None = None,
    linux: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A runtime config for a bundle whose root filesystem is ``rootfs``.

    The process runs ``args`` with ``env`` (``NAME=VALUE`` strings) in ``cwd`` as
    ``uid``:``gid`` in private ``namespaces`` (default: mount, pid, ipc and uts,
    with the host's network), with :func:`system_mounts` before ``mounts``. ``process`` and
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
            "namespaces": [{"type": kind} for kind in namespaces],
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

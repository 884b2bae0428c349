"""Running an ACI without rkt: unpack it into a private bundle and hand it to runc.

Input: a :class:`RunRequest` (the image and what the user asks of the run, with
rkt's meaning: arguments after ``--`` are appended to the image's exec,
``--exec`` replaces the executable and drops the image's arguments, each
mountPoint is bound to the ``--volume`` of the same name).
Output: the app's exit status. The temporary bundle is removed afterwards, also
on Ctrl-C, SIGTERM, SIGHUP or a failure to start; nothing else on the host changes.

The manifest becomes an OCI runtime config (:func:`runtime_config`). What maps:
exec, environment, user and group (numeric, names from the image's own
/etc/passwd and /etc/group, or the owner of an absolute path), supplementary
GIDs, workingDirectory, mountPoints and readOnly, and the isolators
``os/linux/capabilities-retain-set`` and ``-remove-set`` (which may only narrow
the default set unless the user allows more, :func:`capabilities`),
``os/linux/seccomp-retain-set`` and ``-remove-set`` (on top of a default filter,
:func:`seccomp_settings`), ``os/linux/no-new-privileges``,
``os/linux/oom-score-adj``, ``os/unix/sysctl`` and the limits of
``resource/memory`` and ``resource/cpu``. Other isolators, ports and event
handlers are not applied: a warning names each. The app gets a network
namespace of its own with only a loopback interface unless the user asks for the
host's (:data:`NETWORKS`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from . import host_platform, inputs
from .aci import unpack
from .appc import ImageManifest, isolators
from .errors import Nix2AciError
from .oci import runtime
from .signing import atomic, openpgp, trust

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_SYMLINKS = 40
# A CPU limit is a CFS quota per period of 1 s (the longest the kernel takes), so that 1m is 1 ms, its shortest quota.
CPU_PERIOD = 1_000_000
STOP_TIMEOUT = 10
# Signals that stop the app as Ctrl-C does: forwarded to it, then KILL after STOP_TIMEOUT seconds.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# User and group ids: ASCII digits only ("²".isdigit() is true), at most 2^32 - 1.
ASCII_DIGITS = re.compile(r"[0-9]+")
MAX_ID = 2**32 - 1
# A .mounts file holds one flag per store path of a closure: 1 MiB is far more than any needs.
MAX_MOUNTS_FILE = 1 << 20
# The image's /etc/passwd or /etc/group, read to find a user or group: 16 MiB holds some 100,000 lines of either.
MAX_ID_DATABASE = 1 << 24
# --insecure-options values (rkt's names) and what each allows; "all" is every one.
INSECURE_OPTIONS = {
    "image": "run an image without checking its signature",
    "capabilities": "let the image's os/linux/capabilities-retain-set go beyond the default set",
    "seccomp": "run without the default seccomp filter (the image's own seccomp isolators still apply)",
}
# --net values: "none" (the default) gives the app a network namespace with only a loopback interface, "host"
# shares the host's. Without CNI there is nothing between the two, and an image should not reach the host's
# network (or listen on its addresses) unless the user says so.
NETWORKS = ("none", "host")
# Syscalls a seccomp-retain-set always allows (spec/ace.md: "the minimum set of syscalls required for app
# life-cycle"): what runc's init makes between installing the filter and executing the app (runc 1.1.5, watched
# with SCMP_ACT_LOG: without no-new-privileges it installs the filter before it changes user and capabilities),
# and what the Go runtime may make meanwhile (memory, signals, scheduling). None is on the default blocklist.
LIFECYCLE_SYSCALLS = (
    "capget", "capset", "chdir", "close", "epoll_ctl", "epoll_pwait", "execve", "exit", "exit_group", "faccessat",
    "faccessat2", "fcntl", "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getpid", "getppid", "gettid",
    "madvise", "mmap", "munmap", "nanosleep", "newfstatat", "openat", "prctl", "read", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "sched_yield", "setgid", "setgroups", "setresgid", "setresuid", "setuid",
    "sigaltstack", "tgkill", "write",
)  # fmt: skip
# Errno names as the isolators' errno field has them (ENOTSUP and other aliases included).
ERRNO_NUMBERS = {name: getattr(errno, name) for name in dir(errno) if re.fullmatch(r"E[A-Z0-9]+", name)}
WILDCARDS = ("@appc.io/all", "@appc.io/empty")


@attrs.frozen
class Volume:
    """A host directory offered to the image's mountPoint of the same name."""

    name: str
    source: str
    read_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Volume:
        """Read rkt's ``NAME,kind=host,source=PATH[,readOnly=true]``."""
        name, *options = text.split(",")
        fields = dict(option.partition("=")[::2] for option in options)
        unknown = set(fields) - {"kind", "source", "readOnly"}
        if not name or fields.get("kind") != "host" or "source" not in fields or unknown:
            raise Nix2AciError(f"--volume {text!r}: write NAME,kind=host,source=PATH[,readOnly=true]")
        if fields.get("readOnly", "false") not in ("true", "false"):
            raise Nix2AciError(f"--volume {text!r}: readOnly must be true or false")
        if not fields["source"] or "\0" in fields["source"]:
            raise Nix2AciError(f"--volume {text!r}: source must be a path (not empty, no NUL)")
        return cls(name, fields["source"], fields.get("readOnly") == "true")


def read_mounts_file(path: str) -> list[Volume]:
    """The volumes of a ``.mounts`` file: ``--volume=...`` flags separated by white space.

    The file must be a regular UTF-8 file of at most ``MAX_MOUNTS_FILE`` bytes, opened
    as every file argument is (:func:`nix2aci.inputs.open_input`: a FIFO is refused at once). It comes beside the
    image but is not signed: each volume must be one a build writes there, read-only
    and a store path or /etc/resolv.conf (:func:`_built_mount_source`), never a host
    directory an image could write or read.
    """
    with inputs.open_input(path, "--mounts-file") as file:
        data = file.read(MAX_MOUNTS_FILE + 1)
    if len(data) > MAX_MOUNTS_FILE:
        raise Nix2AciError(f"--mounts-file {path}: larger than {MAX_MOUNTS_FILE} bytes, not a .mounts file")
    try:
        words = data.decode("utf-8").split()
    except UnicodeDecodeError:
        raise Nix2AciError(f"--mounts-file {path}: not UTF-8 text") from None
    for word in words:
        if not word.startswith("--volume="):
            raise Nix2AciError(f"{path}: {word!r} is not a --volume=... flag")
    volumes = [Volume.parse(word.removeprefix("--volume=")) for word in words]
    for volume in volumes:
        if not volume.read_only or not _built_mount_source(volume.source):
            raise Nix2AciError(
                f"--mounts-file {path}: volume {volume.name!r} is not a read-only store path or /etc/resolv.conf,"
                " as a build writes them (it travels unsigned beside the image): give other volumes with --volume"
            )
    return volumes


def _built_mount_source(source: str) -> bool:
    """Whether ``source`` is what a build's .mounts file names: a store path (links followed), or /etc/resolv.conf."""
    return source == "/etc/resolv.conf" or atomic.in_nix_store(source)


@attrs.frozen
class RunRequest:
    """What to run and what the user allows.

    ``image``, ``args`` to append, an ``exec`` override, extra ``env``,
    ``volumes``; ``insecure``: the :data:`INSECURE_OPTIONS` the user gave;
    ``caps_retain``: the user's exact capability set (None: the image's, narrowed
    from the default); ``caps_remove``: capabilities taken away from either;
    ``network``: one of :data:`NETWORKS`.
    """

    image: str
    args: tuple[str, ...] = ()
    exec: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Volume, ...] = ()
    allow_setuid: bool = False
    insecure: frozenset[str] = frozenset()
    caps_retain: tuple[str, ...] | None = None
    caps_remove: tuple[str, ...] = ()
    network: str = "none"


@attrs.frozen
class Container:
    """The file system an app sees: the unpacked rootfs plus host directories bound into it."""

    rootfs: str
    binds: dict[str, str]  # container path -> host path

    def host_path(self, path: str) -> str:
        """Where the container path ``path`` (no symlinks followed) is on the host."""
        for destination in sorted(self.binds, key=len, reverse=True):
            if path == destination or path.startswith(destination.rstrip("/") + "/"):
                return self.binds[destination] + path[len(destination.rstrip("/")) :]
        return self.rootfs + path

    def resolve(self, path: str) -> str:
        """The host path of container path ``path``, its symlinks followed as the app would see them."""
        resolved, pending, hops = "/", [part for part in path.split("/") if part], 0
        while pending:
            part = pending.pop(0)
            candidate = posixpath.normpath(posixpath.join(resolved, part))
            host = self.host_path(candidate)
            if os.path.islink(host):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise Nix2AciError(f"too many symlinks resolving {path} in the image")
                target = os.readlink(host)
                pending = [p for p in target.split("/") if p] + pending
                resolved = "/" if target.startswith("/") else resolved
            else:
                resolved = candidate
        return self.host_path(resolved)

    def lookup_id(self, value: str, database: str) -> int:
        """A user or group as a number: numeric, a name in ``database`` (/etc/passwd, /etc/group), or a path's owner."""
        if ASCII_DIGITS.fullmatch(value):
            return _checked_id(value, f"app user/group {value!r}")
        if value.startswith("/"):
            try:
                info = os.stat(self.resolve(value))
            except OSError:
                raise Nix2AciError(f"app user/group {value!r}: no such file in the image") from None
            return info.st_uid if database == "/etc/passwd" else info.st_gid
        for line in self._lines(database):
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == value:
                if not ASCII_DIGITS.fullmatch(fields[2]):
                    raise Nix2AciError(
                        f"app user/group {value!r}: the image's {database} gives it the id {fields[2]!r}"
                    )
                return _checked_id(fields[2], f"app user/group {value!r} (id {fields[2]} in the image's {database})")
        raise Nix2AciError(f"app user/group {value!r} is not in the image's {database}")

    def _lines(self, database: str) -> Iterator[str]:
        """The lines of ``database`` as the app sees it (none when it does not exist).

        A symlink may lead it into a volume: it is opened without blocking, and must
        be a regular file of at most ``MAX_ID_DATABASE`` bytes (a FIFO there would block the run forever).
        """
        try:
            with inputs.open_input(self.resolve(database), f"the image's {database}") as file:
                data = file.read(MAX_ID_DATABASE + 1)
        except inputs.InputError as error:
            if error.missing:
                return
            raise Nix2AciError(f"the image's {database} {error.reason}") from None
        if len(data) > MAX_ID_DATABASE:
            raise Nix2AciError(f"the image's {database} is larger than {MAX_ID_DATABASE} bytes")
        yield from data.decode("utf-8", "replace").splitlines()


def _checked_id(digits: str, what: str) -> int:
    """The id written in ASCII ``digits``; one from 0 to 2^32 - 1, else an error naming ``what``."""
    if len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
        raise Nix2AciError(f"{what}: an id must be from 0 to {MAX_ID}")
    return int(digits)


def capabilities(manifest: ImageManifest, request: RunRequest) -> list[str]:
    """The app's capabilities: the user's ``--caps-retain`` set, or the default set as the image's isolators
    narrow it; then without ``--caps-remove``.

    An image's retain set may name capabilities outside the default set
    (:data:`nix2aci.oci.runtime.DEFAULT_CAPABILITIES`) only with
    ``--insecure-options=capabilities``; otherwise the run is refused, naming them.
    """
    if request.caps_retain is not None:
        chosen = list(request.caps_retain)
    else:
        chosen = list(runtime.DEFAULT_CAPABILITIES)
        for isolator in manifest.app.isolators:
            if isolator.name == "os/linux/capabilities-retain-set":
                chosen = list(isolator.value["set"])
            elif isolator.name == "os/linux/capabilities-remove-set":
                chosen = [capability for capability in chosen if capability not in isolator.value["set"]]
        wider = sorted(set(chosen) - set(runtime.DEFAULT_CAPABILITIES))
        if wider and "capabilities" not in request.insecure:
            raise Nix2AciError(
                f"{manifest.name} asks for capabilities outside the default set ({', '.join(wider)}) in its"
                " os/linux/capabilities-retain-set: allow them with --insecure-options=capabilities,"
                " or give the exact set with --caps-retain=CAP,..."
            )
    return [capability for capability in dict.fromkeys(chosen) if capability not in request.caps_remove]


def _isolator_action(isolator: isolators.Isolator) -> dict[str, Any]:
    """What a seccomp isolator's errno asks for a call it blocks: that errno, or (none, empty) kill with SIGSYS."""
    name = isolator.value.get("errno") or ""
    if not name:
        return runtime.seccomp_action("SCMP_ACT_KILL_PROCESS")
    if name not in ERRNO_NUMBERS:
        raise Nix2AciError(f"{isolator.name}: errno {name!r} is not an errno name this system knows")
    return runtime.seccomp_action("SCMP_ACT_ERRNO", ERRNO_NUMBERS[name])


def _isolator_syscalls(isolator: isolators.Isolator) -> set[str]:
    """The names of a seccomp isolator's set; an @-wildcard other than appc's own is an error."""
    names = set(isolator.value["set"])
    unknown = sorted(name for name in names if name.startswith("@") and name not in WILDCARDS)
    if unknown:
        raise Nix2AciError(
            f"{isolator.name}: unknown wildcard {unknown[0]!r} (nix2aci knows {' and '.join(WILDCARDS)})"
        )
    return names


def seccomp_settings(manifest: ImageManifest, request: RunRequest, held: Sequence[str]) -> dict[str, Any] | None:
    """``linux.seccomp`` for the app whose capabilities are ``held`` (None: no filter at all).

    The default filter refuses :func:`nix2aci.oci.runtime.default_blocked_syscalls`
    with EPERM (``--insecure-options=seccomp`` drops it). An image's
    ``seccomp-remove-set`` blocks more, its way (errno or SIGSYS); its
    ``seccomp-retain-set`` allows only its calls (plus :data:`LIFECYCLE_SYSCALLS`)
    and may not allow one the default filter refuses unless the user drops the
    default filter: the run is refused, naming the calls.
    """
    guarded = "seccomp" not in request.insecure
    blocked = runtime.default_blocked_syscalls(held) if guarded else frozenset()
    guard_clone = guarded and "CAP_SYS_ADMIN" not in held
    isolator = next((i for i in manifest.app.isolators if i.name in isolators.SECCOMP_SETS), None)
    if isolator is not None and isolator.name == "os/linux/seccomp-retain-set":
        return _allowlist(manifest, isolator, blocked, guard_clone)
    removed = _isolator_syscalls(isolator) if isolator is not None else set()
    if "@appc.io/empty" in removed:
        removed = set()
    default = runtime.seccomp_action("SCMP_ACT_ALLOW")
    if "@appc.io/all" in removed:
        default, removed = _isolator_action(isolator), set()
    rules = [{"names": sorted(blocked - removed), **runtime.EPERM}] if blocked - removed else []
    if guard_clone:
        rules += [rule for rule in runtime.namespace_clone_rules(allowlist=False) if rule["names"][0] not in removed]
    if removed:
        rules.append({"names": sorted(removed), **_isolator_action(isolator)})
    return runtime.seccomp(default, rules) if rules or default["action"] != "SCMP_ACT_ALLOW" else None


def _allowlist(
    manifest: ImageManifest, isolator: isolators.Isolator, blocked: frozenset[str], guard_clone: bool
) -> dict[str, Any] | None:
    """The filter of a seccomp-retain-set: its calls allowed, others refused its way (see :func:`seccomp_settings`)."""
    allowed = _isolator_syscalls(isolator) - {"@appc.io/empty"}
    widened = sorted(blocked & allowed) + (["@appc.io/all"] if blocked and "@appc.io/all" in allowed else [])
    if widened:
        raise Nix2AciError(
            f"{manifest.name}'s os/linux/seccomp-retain-set allows {', '.join(widened)}, which the default seccomp"
            " filter refuses: run it with --insecure-options=seccomp to drop the default filter"
        )
    if "@appc.io/all" in allowed:
        return None
    allowed |= set(LIFECYCLE_SYSCALLS)
    clone = runtime.namespace_clone_rules(allowlist=True) if guard_clone else []
    # clone3 returns ENOSYS when not allowed as such, so that the C library falls back to clone.
    clone = [rule for rule in clone if rule["names"][0] in allowed or rule["names"][0] == "clone3"]
    if not clone and "clone3" not in allowed:
        clone = [rule for rule in runtime.namespace_clone_rules(allowlist=True) if rule["names"][0] == "clone3"]
    plain = sorted(allowed - {rule["names"][0] for rule in clone})
    rules = [{"names": plain, **runtime.seccomp_action("SCMP_ACT_ALLOW")}, *clone]
    return runtime.seccomp(_isolator_action(isolator), rules)


def _resource_value(read: Any, isolator: isolators.Isolator) -> int:
    """The limit of a resource isolator as ``read`` gives it (bytes, millicores); an error names the isolator."""
    try:
        return read(isolator.value["limit"])
    except isolators.QuantityError as error:
        raise Nix2AciError(f"{isolator.name}: limit {error}") from None


def _isolator_settings(manifest: ImageManifest) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The process and linux config parts the app's isolators ask for, and what could not be applied.

    Capabilities and seccomp are decided apart (:func:`capabilities`, :func:`seccomp_settings`).
    """
    process: dict[str, Any] = {"noNewPrivileges": False}
    linux: dict[str, Any] = {}
    unapplied = []
    for isolator in manifest.app.isolators:
        name, value = isolator.name, isolator.value
        if name in isolators.CAPABILITY_SETS or name in isolators.SECCOMP_SETS:
            continue
        if name == "os/linux/no-new-privileges":
            process["noNewPrivileges"] = bool(value)
        elif name == "os/linux/oom-score-adj":
            process["oomScoreAdj"] = value
        elif name == "os/unix/sysctl":
            linux["sysctl"] = dict(value)
        elif name == "resource/memory" and "limit" in value:
            limit = _resource_value(isolators.memory_bytes, isolator)
            linux.setdefault("resources", {})["memory"] = {"limit": limit}
        elif name == "resource/cpu" and "limit" in value:
            quota = _resource_value(isolators.cpu_millicores, isolator) * CPU_PERIOD // 1000
            linux.setdefault("resources", {})["cpu"] = {"quota": quota, "period": CPU_PERIOD}
        else:
            unapplied.append(f"isolator {name}")
    return process, linux, unapplied


def network_namespaces(network: str) -> tuple[str, ...]:
    """The namespaces of a run with ``network`` (see :data:`NETWORKS`).

    "none" adds a network namespace; runc brings up its loopback interface, the
    only one there is.
    """
    return runtime.DEFAULT_NAMESPACES if network == "host" else (*runtime.DEFAULT_NAMESPACES, "network")


def runtime_config(
    manifest: ImageManifest, request: RunRequest, volume_mounts: list[dict[str, Any]], rootfs: str
) -> dict[str, Any]:
    """The OCI runtime config that runs ``manifest``'s app as ``request`` asks.

    ``volume_mounts`` come from :func:`volume_mounts`; ``rootfs`` is the unpacked
    image, where user and group names are looked up. The app runs in private
    mount, pid, ipc and uts namespaces, and network unless ``request.network`` is
    "host", as its user and group, in its working directory, with
    :func:`capabilities` and :func:`seccomp_settings`.
    """
    container = Container(rootfs, {mount["destination"]: mount["source"] for mount in volume_mounts})
    app = manifest.app
    command = [request.exec, *request.args] if request.exec else [*app.exec, *request.args]
    if not command:
        raise Nix2AciError(f"{manifest.name} has no app exec: name the program with --exec")
    environment = {
        "PATH": DEFAULT_PATH,
        "AC_APP_NAME": manifest.name.rsplit("/", 1)[-1],
        **{variable.name: variable.value for variable in app.environment},
        **dict(request.env),
    }
    process, linux, unapplied = _isolator_settings(manifest)
    for name in unapplied + [f"port {port.name}" for port in app.ports]:
        print(f"nix2aci run: warning: {name} is not applied", file=sys.stderr)
    held = capabilities(manifest, request)
    seccomp = seccomp_settings(manifest, request, held)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    document = runtime.config(
        args=command,
        env=[f"{name}={value}" for name, value in environment.items()],
        cwd=app.working_directory or "/",
        uid=container.lookup_id(app.user, "/etc/passwd"),
        gid=container.lookup_id(app.group, "/etc/group"),
        additional_gids=app.supplementary_gids,
        terminal=sys.stdin.isatty() and sys.stdout.isatty(),
        hostname=manifest.name.rsplit("/", 1)[-1].replace(".", "-")[:63],
        capabilities=held,
        namespaces=network_namespaces(request.network),
        mounts=volume_mounts,
        process=process,
        linux=linux,
    )
    runtime.check(document, "the runtime config made for the image")
    return document


def volume_mounts(manifest: ImageManifest, request: RunRequest) -> list[dict[str, Any]]:
    """A bind mount for each mountPoint, from the volume of its name (read-only if either says so).

    A relative source is taken from the caller's working directory.
    """
    volumes = {volume.name: volume for volume in request.volumes}
    mounts = []
    for point in manifest.app.mount_points:
        volume = volumes.get(point.name)
        if volume is None:
            raise Nix2AciError(
                f"mountPoint {point.name!r} ({point.path}) has no volume: pass "
                f"--volume {point.name},kind=host,source=PATH (a thin image's .mounts file has them all: --mounts-file)"
            )
        # runc would read a relative source against the bundle: make it the caller's.
        source = os.path.abspath(volume.source)
        if not os.path.exists(source):
            raise Nix2AciError(f"volume {volume.name!r}: {source} does not exist on this host")
        options = ["rbind", "ro"] if point.read_only or volume.read_only else ["rbind"]
        mounts.append({"destination": point.path, "type": "bind", "source": source, "options": options})
    for name in sorted(set(volumes) - {point.name for point in manifest.app.mount_points}):
        print(f"nix2aci run: warning: volume {name!r} matches no mountPoint of the image", file=sys.stderr)
    return mounts


class StopSignal(KeyboardInterrupt):
    """A signal of :data:`STOP_SIGNALS` arrived: stop the app and clean up as on Ctrl-C; ``signal`` is its number."""

    def __init__(self, number: int) -> None:
        super().__init__(signal.Signals(number).name)
        self.signal = number


def _stopping_on_signals(function: Callable[..., int]) -> Callable[..., int]:
    """``function`` with each of :data:`STOP_SIGNALS` raising :class:`StopSignal` in it, the first one only.

    Later ones are ignored, so that they cannot cut the clean-up short (an app
    that ignores the first gets KILL after ``STOP_TIMEOUT`` anyway). The previous
    handlers come back when ``function`` returns.
    """

    @functools.wraps(function)
    def with_handlers(*args: Any, **kwargs: Any) -> int:
        arrived: list[int] = []

        def stop(number: int, _frame: Any) -> None:
            if not arrived:
                arrived.append(number)
                raise StopSignal(number)

        previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
        try:
            return function(*args, **kwargs)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    return with_handlers


def _check_trusted(trusted: trust.TrustedSignature, unpacked: unpack.Unpacked, image: str) -> None:
    """Refuse an image whose unpacked bytes are not the ones the signature check read, or whose name the signer
    is not trusted for (rkt's prefixes: the name is known only once the manifest has been read)."""
    if trusted.digest != unpacked.digest:
        raise Nix2AciError(
            f"{image} changed while it was read: the bytes unpacked are not the bytes whose signature was checked"
        )
    name = unpacked.manifest.name
    if not trusted.covers(name):
        prefixes = ", ".join(trusted.prefixes)
        raise Nix2AciError(
            f"{image} is named {name!r}, and its signer {trusted.signer.fingerprint} is trusted only for {prefixes}:"
            f" nix2aci trust --prefix {name} PUBKEYS trusts it for this name, or skip the check with"
            " --insecure-options=image"
        )


@contextlib.contextmanager
def _private_bundle() -> Iterator[str]:
    """A new private directory (mode 0700) for the bundle; removed on leaving, however deep the tree in it.

    An image's names reach 2,047 levels and the app may make any depth: shutil.rmtree
    recurses and holds a descriptor per level (RecursionError, EMFILE: a traceback
    and the bundle left behind), GNU rm walks any depth, never following a link or
    crossing into another file system. A bundle rm cannot remove is named in a warning.
    """
    bundle = tempfile.mkdtemp(prefix="nix2aci-run-")
    try:
        yield bundle
    finally:
        removal = subprocess.run(["rm", "-rf", "--one-file-system", "--", bundle], capture_output=True, check=False)
        if removal.returncode != 0:
            why = removal.stderr.decode("utf-8", "replace").strip().splitlines() or [f"rm exited {removal.returncode}"]
            print(f"nix2aci run: warning: the bundle {bundle} is not removed: {why[0]}", file=sys.stderr)


@_stopping_on_signals
def run(request: RunRequest) -> int:
    """Run the app of ``request.image``; return its exit status."""
    if shutil.which("runc") is None:
        raise Nix2AciError("runc is not installed (./scripts/setup installs it)")
    # The one opening of the image, closed by the with below; a FIFO or directory is refused at once.
    image = inputs.open_input(request.image, "image")
    with image, _private_bundle() as bundle:
        trusted = None
        if "image" not in request.insecure:
            # Before anything is unpacked: only a trusted signer's bytes reach the extractor.
            trusted = trust.verify_trusted(image, openpgp.signature_path(request.image))
            image.seek(0)
        # Each member is judged as it is unpacked: what was checked is what runs.
        unpacked = unpack.unpack_image(image, request.image, bundle, allow_setuid=request.allow_setuid)
        manifest = unpacked.manifest
        if trusted is not None:
            _check_trusted(trusted, unpacked, request.image)
        refused = host_platform.refusal(request.image, manifest.label("os"), manifest.label("arch"))
        if refused:
            raise Nix2AciError(refused)
        if manifest.app is None:
            raise Nix2AciError(f"{request.image} has no app to run")
        mounts = volume_mounts(manifest, request)
        config = runtime_config(manifest, request, mounts, os.path.join(bundle, "rootfs"))
        with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)
        container = f"nix2aci-{uuid.uuid4().hex[:12]}"
        # Ctrl-C or a stop signal that comes while runc starts waits for _wait, so the container is always
        # deleted; runc itself starts with none held.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
        try:
            process = subprocess.Popen(["runc", "run", "--bundle", bundle, container], preexec_fn=_release_signals)
        except BaseException:
            _release_signals()
            raise
        try:
            return _wait(process, container)
        finally:
            subprocess.run(["runc", "delete", "--force", container], capture_output=True, check=False)


# Ctrl-C and the stop signals: held while runc starts, so none comes between its start and the clean-up.
_HELD_SIGNALS = {signal.SIGINT, *STOP_SIGNALS}


def _release_signals() -> None:
    """Let Ctrl-C and the stop signals through again (a held one is handled at once)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD_SIGNALS)


def _wait(process: subprocess.Popen, container: str) -> int:
    """Wait for runc, which exits with the app's status; on Ctrl-C, SIGTERM or SIGHUP, stop the app.

    The app first gets the signal (runc passes it on); one that ignores it, as a
    pid 1 without a handler does, is killed after ``STOP_TIMEOUT`` seconds.
    """
    try:
        _release_signals()  # one that came while runc started is handled here, like any later one
        return process.wait()
    except KeyboardInterrupt as interrupt:
        process.send_signal(interrupt.signal if isinstance(interrupt, StopSignal) else signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        subprocess.run(["runc", "kill", container, "KILL"], capture_output=True, check=False)
        return process.wait()

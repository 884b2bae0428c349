"""Running an ACI without rkt: unpack it into a private bundle and hand it to runc.

Input: a :class:`RunRequest` (the image and what the user asks of the run, with
rkt's meaning: arguments after ``--`` are appended to the image's exec,
``--exec`` replaces the executable and drops the image's arguments, each
mountPoint is bound to the ``--volume`` of the same name).
Output: the app's exit status. The temporary bundle is removed afterwards, also
on Ctrl-C or a failure to start; nothing else on the host changes.

The manifest becomes an OCI runtime config (:func:`runtime_config`). What maps:
exec, environment, user and group (numeric, names from the image's own
/etc/passwd and /etc/group, or the owner of an absolute path), supplementary
GIDs, workingDirectory, mountPoints and readOnly, and the isolators
``os/linux/capabilities-retain-set``, ``os/linux/capabilities-remove-set``,
``os/linux/no-new-privileges``, ``os/linux/oom-score-adj``, ``os/unix/sysctl``
and the limits of ``resource/memory`` and ``resource/cpu``. Other isolators,
ports and event handlers are not applied: a warning names each.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import attrs

from . import unpack
from .appc import ImageManifest
from .errors import Nix2AciError
from .oci import runtime

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_SYMLINKS = 40
# Kubernetes-style quantities, as appc's resource isolators use them.
QUANTITY_SUFFIXES = {
    "": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
CPU_PERIOD = 100_000
STOP_TIMEOUT = 10


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
        return cls(name, fields["source"], fields.get("readOnly") == "true")


def read_mounts_file(path: str) -> list[Volume]:
    """The volumes of a ``.mounts`` file: ``--volume=...`` flags separated by white space."""
    try:
        with open(path, encoding="utf-8") as file:
            words = file.read().split()
    except OSError as error:
        raise Nix2AciError(f"--mounts-file: {error}") from None
    for word in words:
        if not word.startswith("--volume="):
            raise Nix2AciError(f"{path}: {word!r} is not a --volume=... flag")
    return [Volume.parse(word.removeprefix("--volume=")) for word in words]


@attrs.frozen
class RunRequest:
    """What to run: ``image``, ``args`` to append, an ``exec`` override, extra ``env``, ``volumes``."""

    image: str
    args: tuple[str, ...] = ()
    exec: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Volume, ...] = ()
    allow_setuid: bool = False


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
        if value.isdigit():
            return int(value)
        if value.startswith("/"):
            try:
                info = os.stat(self.resolve(value))
            except OSError:
                raise Nix2AciError(f"app user/group {value!r}: no such file in the image") from None
            return info.st_uid if database == "/etc/passwd" else info.st_gid
        for line in self._lines(database):
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == value and fields[2].isdigit():
                return int(fields[2])
        raise Nix2AciError(f"app user/group {value!r} is not in the image's {database}")

    def _lines(self, database: str) -> Iterator[str]:
        try:
            with open(self.resolve(database), encoding="utf-8", errors="replace") as file:
                yield from file.read().splitlines()
        except OSError:
            return


def _quantity(value: Any, what: str) -> float:
    """A resource quantity (``512Mi``, ``1G``, ``500m``) as a number."""
    text = str(value)
    number = text.rstrip("kMGTPEim")
    suffix = text[len(number) :]
    try:
        return float(number) * QUANTITY_SUFFIXES[suffix]
    except (KeyError, ValueError):
        raise Nix2AciError(f"{what}: cannot read the quantity {text!r}") from None


def _isolator_settings(manifest: ImageManifest) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The process and linux config parts the app's isolators ask for, and what could not be applied."""
    process: dict[str, Any] = {"capabilities": list(runtime.DEFAULT_CAPABILITIES), "noNewPrivileges": False}
    linux: dict[str, Any] = {}
    unapplied = []
    for isolator in manifest.app.isolators:
        name, value = isolator.name, isolator.value
        if name == "os/linux/capabilities-retain-set":
            process["capabilities"] = list(value["set"])
        elif name == "os/linux/capabilities-remove-set":
            process["capabilities"] = [cap for cap in process["capabilities"] if cap not in value["set"]]
        elif name == "os/linux/no-new-privileges":
            process["noNewPrivileges"] = bool(value)
        elif name == "os/linux/oom-score-adj":
            process["oomScoreAdj"] = value
        elif name == "os/unix/sysctl":
            linux["sysctl"] = dict(value)
        elif name == "resource/memory" and "limit" in value:
            limit = int(_quantity(value["limit"], name))
            linux.setdefault("resources", {})["memory"] = {"limit": limit}
        elif name == "resource/cpu" and "limit" in value:
            quota = int(_quantity(value["limit"], name) * CPU_PERIOD)
            linux.setdefault("resources", {})["cpu"] = {"quota": quota, "period": CPU_PERIOD}
        else:
            unapplied.append(f"isolator {name}")
    return process, linux, unapplied


def runtime_config(
    manifest: ImageManifest, request: RunRequest, volume_mounts: list[dict[str, Any]], rootfs: str
) -> dict[str, Any]:
    """The OCI runtime config that runs ``manifest``'s app as ``request`` asks.

    ``volume_mounts`` come from :func:`volume_mounts`; ``rootfs`` is the unpacked
    image, where user and group names are looked up. The app runs in private
    mount, pid, ipc and uts namespaces with the host's network, as its user and
    group, in its working directory.
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
    capabilities = process.pop("capabilities")
    document = runtime.config(
        args=command,
        env=[f"{name}={value}" for name, value in environment.items()],
        cwd=app.working_directory or "/",
        uid=container.lookup_id(app.user, "/etc/passwd"),
        gid=container.lookup_id(app.group, "/etc/group"),
        additional_gids=app.supplementary_gids,
        terminal=sys.stdin.isatty() and sys.stdout.isatty(),
        hostname=manifest.name.rsplit("/", 1)[-1].replace(".", "-")[:63],
        capabilities=capabilities,
        mounts=volume_mounts,
        process=process,
        linux=linux,
    )
    runtime.check(document, "the runtime config made for the image")
    return document


def volume_mounts(manifest: ImageManifest, request: RunRequest) -> list[dict[str, Any]]:
    """A bind mount for each mountPoint, from the volume of its name (read-only if either says so)."""
    volumes = {volume.name: volume for volume in request.volumes}
    mounts = []
    for point in manifest.app.mount_points:
        volume = volumes.get(point.name)
        if volume is None:
            raise Nix2AciError(
                f"mountPoint {point.name!r} ({point.path}) has no volume: pass "
                f"--volume {point.name},kind=host,source=PATH (a thin image's .mounts file has them all: --mounts-file)"
            )
        if not os.path.exists(volume.source):
            raise Nix2AciError(f"volume {volume.name!r}: {volume.source} does not exist on this host")
        options = ["rbind", "ro"] if point.read_only or volume.read_only else ["rbind"]
        mounts.append({"destination": point.path, "type": "bind", "source": volume.source, "options": options})
    for name in sorted(set(volumes) - {point.name for point in manifest.app.mount_points}):
        print(f"nix2aci run: warning: volume {name!r} matches no mountPoint of the image", file=sys.stderr)
    return mounts


def run(request: RunRequest) -> int:
    """Run the app of ``request.image``; return its exit status."""
    if shutil.which("runc") is None:
        raise Nix2AciError("runc is not installed (./scripts/setup installs it)")
    try:  # the one opening of the image, closed by the with below
        image = open(request.image, "rb")  # noqa: SIM115
    except OSError as error:
        raise Nix2AciError(f"{request.image}: {error.strerror}") from None
    with image, tempfile.TemporaryDirectory(prefix="nix2aci-run-") as bundle:
        # Each member is judged as it is unpacked: the image is read once, so what was checked is what runs.
        manifest = unpack.unpack_image(image, request.image, bundle, allow_setuid=request.allow_setuid).manifest
        if manifest.app is None:
            raise Nix2AciError(f"{request.image} has no app to run")
        mounts = volume_mounts(manifest, request)
        config = runtime_config(manifest, request, mounts, os.path.join(bundle, "rootfs"))
        with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)
        container = f"nix2aci-{uuid.uuid4().hex[:12]}"
        process = subprocess.Popen(["runc", "run", "--bundle", bundle, container])
        try:
            return _wait(process, container)
        finally:
            subprocess.run(["runc", "delete", "--force", container], capture_output=True, check=False)


def _wait(process: subprocess.Popen, container: str) -> int:
    """Wait for runc, which exits with the app's status; on Ctrl-C, stop the app.

    The app first gets SIGINT (runc passes it on); one that ignores it, as a
    pid 1 without a handler does, is killed after ``STOP_TIMEOUT`` seconds.
    """
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        subprocess.run(["runc", "kill", container, "KILL"], capture_output=True, check=False)
        return process.wait()

"""Running an ACI without rkt: unpack it into a private bundle and hand it to runc.

Input: an ACI file and what the user asks of the run (arguments, environment).
Output: the app's exit status; the temporary bundle is removed afterwards.
The manifest's app becomes an OCI runtime config (see :func:`runtime_config`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import uuid
from typing import Any

from . import aci
from .appc import ImageManifest
from .errors import Nix2AciError

# rkt's default capabilities (the same set as Docker's): what an app may expect.
DEFAULT_CAPABILITIES = [
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
]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unpack(image: str, bundle: str) -> ImageManifest:
    """Check ``image`` and extract its rootfs to ``bundle/rootfs``; return its manifest.

    Refused before anything is written: an invalid ACI, and members that are not
    directories, regular files or symlinks, or that are set-uid or set-gid.
    Member names are checked by :func:`nix2aci.aci.validate_archive`, so nothing
    lands outside the bundle.
    """
    manifest, problems = aci.validate_archive(image)
    if problems:
        raise Nix2AciError(f"{image} is not a valid ACI: {problems[0]}")
    with tarfile.open(image, "r:*") as tar:
        members = [member for member in tar if aci.member_name(member).split("/", 1)[0] == "rootfs"]
        for member in members:
            if not (member.isdir() or member.isreg() or member.issym()):
                raise Nix2AciError(
                    f"{image}: {member.name} is a {_kind(member)}; nix2aci run only unpacks "
                    "directories, regular files and symlinks"
                )
            if member.mode & 0o6000:
                raise Nix2AciError(f"{image}: {member.name} is set-uid or set-gid; nix2aci run refuses such files")
        tar.extractall(bundle, members=members, numeric_owner=True, **_trusted_filter())
    return manifest


def _kind(member: tarfile.TarInfo) -> str:
    return {
        tarfile.LNKTYPE: "hard link",
        tarfile.CHRTYPE: "character device",
        tarfile.BLKTYPE: "block device",
        tarfile.FIFOTYPE: "FIFO",
    }.get(member.type, "special file")


def _trusted_filter() -> dict[str, Any]:
    """Python >= 3.12 warns unless told the members were vetted, which ``unpack`` did."""
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def runtime_config(manifest: ImageManifest, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The OCI runtime config that runs ``manifest``'s app with ``args`` and extra ``env``.

    The app runs as its numeric user and group, in its working directory, in
    private mount, pid, ipc and uts namespaces, with the host's network.
    """
    app = manifest.to_json().get("app") or {}
    if not args:
        raise Nix2AciError(f"{manifest.name} has no app exec; give the command after --")
    environment = {"PATH": DEFAULT_PATH, **{e["name"]: e["value"] for e in app.get("environment", [])}, **env}
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": False},
        "process": {
            "terminal": False,
            "user": {
                "uid": _numeric(app, "user"),
                "gid": _numeric(app, "group"),
                "additionalGids": app.get("supplementaryGIDs", []),
            },
            "args": args,
            "env": [f"{name}={value}" for name, value in environment.items()],
            "cwd": app.get("workingDirectory", "/"),
            "capabilities": {kind: DEFAULT_CAPABILITIES for kind in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "hostname": manifest.name.rsplit("/", 1)[-1][:63],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": kind} for kind in ("mount", "pid", "ipc", "uts")]},
    }


def _numeric(app: dict[str, Any], key: str) -> int:
    """The app's user or group as a number (names need the image's /etc/passwd: not yet supported)."""
    value = app.get(key, "0")
    if not value.isdigit():
        raise Nix2AciError(f"app.{key} is {value!r}; nix2aci run supports numeric users and groups only")
    return int(value)


def run(image: str, extra_args: list[str], env: dict[str, str]) -> int:
    """Run the app of ``image`` with ``extra_args`` appended to its exec; return its exit status."""
    if shutil.which("runc") is None:
        raise Nix2AciError("runc is not installed (./scripts/setup installs it)")
    with tempfile.TemporaryDirectory(prefix="nix2aci-run-") as bundle:
        manifest = unpack(image, bundle)
        app = manifest.to_json().get("app") or {}
        config = runtime_config(manifest, [*app.get("exec", []), *extra_args], env)
        with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)
        container = f"nix2aci-{uuid.uuid4().hex[:12]}"
        process = subprocess.Popen(["runc", "run", "--bundle", bundle, container])
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.wait()
            raise
        finally:
            subprocess.run(["runc", "delete", "--force", container], capture_output=True, check=False)

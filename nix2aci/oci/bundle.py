"""The OCI runtime bundle format: ``config.json`` and ``rootfs/``, written into ``$out``.

Input: a :class:`~nix2aci.build.spec.BuildSpec` of format ``oci-bundle`` (from
``lib.buildContainer``). Output: ``$out/config.json``, validated by
:func:`nix2aci.oci.runtime.problems`, and ``$out/rootfs``: the closure under
/nix/store (thin: an empty mount point for each store path, bound read-only from
the host by the config), the merged profile, and every mount destination and
the working directory made in advance, because a bundle in the store must never
be changed by running it; and ``$out/sbom.spdx.json``, the SBOM of the closure
(:mod:`nix2aci.build.sbom`), which the config's annotations ``org.nix2aci.sbom`` (the
file name) and ``org.nix2aci.sbom.digest`` (``sha256:HEX``) name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from typing import Any

from ..build import basics, plan, sbom, tree
from ..build.spec import BuildSpec, BundleOutput
from ..errors import Nix2AciError
from ..schema import show
from . import runtime

# The bundle's SBOM, beside config.json (a bundle has no name or tag of its own to name it after).
SBOM_FILE = "sbom.spdx.json"
SBOM_ANNOTATION = "org.nix2aci.sbom"
SBOM_DIGEST_ANNOTATION = "org.nix2aci.sbom.digest"
# A bundle has no creation time: the SBOM's is the one OCI images default to.
CREATED = "1970-01-01T00:00:01Z"


def _mounts(spec: BuildSpec) -> list[tuple[str, dict[str, Any]]]:
    """The user's mounts, after the read-only binds of the store paths (thin) and the host's resolv.conf,
    each with the argument that asks for it."""
    binds = []
    if spec.mode == "thin":
        binds = [
            ("thin", {"destination": path, "type": "none", "source": path, "options": ["rbind", "ro"]})
            for path in spec.closure.paths_needed_by(spec.roots)
        ]
    if spec.rootfs.resolv_conf:
        binds.append(
            (
                "resolvConf",
                {
                    "destination": "/etc/resolv.conf",
                    "type": "none",
                    "source": "/etc/resolv.conf",
                    "options": ["rbind", "ro"],
                },
            )
        )
    # A user's mount keeps the key order nix/build-container.nix's toJSON gave it (config.json is not sorted).
    user = [
        (
            basics.field("mounts", destination),
            {"destination": destination, "options": list(mount.options), "source": mount.source, "type": mount.type},
        )
        for destination, mount in sorted(spec.output.image.mounts.items())
    ]
    return binds + user


def sbom_bytes(spec: BuildSpec) -> bytes:
    """The SBOM of the bundle's closure, named after its program."""
    name = f"oci-bundle-{os.path.basename(spec.output.image.args[0])}"
    return sbom.sbom_bytes(spec.closure, spec.roots, spec.output.provenance, name, CREATED)


def config_document(spec: BuildSpec, sbom_digest: str) -> dict[str, Any]:
    """The runtime config of a buildContainer spec whose SBOM has the digest ``sbom_digest``."""
    output: BundleOutput = spec.output
    image = output.image
    return runtime.config(
        args=image.args,
        env=[f"{name}={value}" for name, value in sorted(basics.environment(spec.rootfs, image.env).items())],
        cwd=image.cwd,
        uid=image.user.uid,
        gid=image.user.gid,
        additional_gids=image.user.additional_gids,
        terminal=image.terminal,
        hostname=image.hostname,
        capabilities=runtime.DEFAULT_CAPABILITIES if image.capabilities is None else image.capabilities,
        readonly=image.readonly,
        mounts=[mount for _, mount in _mounts(spec)],
        # runtime-spec 1.0 has no platform field: record the one the bundle was built for.
        annotations={
            "org.nix2aci.os": image.os,
            "org.nix2aci.architecture": image.arch,
            SBOM_ANNOTATION: SBOM_FILE,
            SBOM_DIGEST_ANNOTATION: sbom_digest,
        },
    )


def write_tree(entries: Iterable[plan.Entry], root: str) -> None:
    """Make the planned files at the host directory ``root``, which must not exist yet; modes are set last.

    Nothing is written outside ``root``, whatever the plan: the entries pass
    :func:`plan.contained` (each lies in a directory made here before it), and each
    is created where nothing is, never replacing anything nor following a link.
    Directories are made writable first and get their planned mode at the end, so a
    read-only store directory can still be filled. Raises Nix2AciError naming the
    entry that cannot be written.
    """
    directories = []
    for entry in plan.contained(entries):
        target = os.path.join(root, entry.path) if entry.path else root
        try:
            if entry.kind is plan.Kind.DIRECTORY:
                os.mkdir(target, 0o700)
                directories.append((target, entry.mode))
            elif entry.kind is plan.Kind.SYMLINK:
                os.symlink(entry.target, target)
            else:
                _write_file(entry, target)
        except OSError as error:
            raise Nix2AciError(f"cannot write {show('/' + entry.path)} of the image: {error.strerror}") from None
    for target, mode in reversed(directories):
        os.chmod(target, mode)


def _write_file(entry: plan.Entry, target: str) -> None:
    """Create the regular file ``target`` (where nothing is) with the bytes and mode of ``entry``."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(descriptor, "wb") as file:
        if entry.source is not None:
            with open(entry.source, "rb") as source:
                shutil.copyfileobj(source, file)
        else:
            file.write(entry.content or b"")
        os.fchmod(file.fileno(), entry.mode)


def build(spec: BuildSpec) -> dict[str, Any]:
    """Write the bundle of ``spec`` into ``spec.out``; return its config."""
    sbom_content = sbom_bytes(spec)
    document = config_document(spec, sbom.sha256_digest(sbom_content))
    runtime.check(document, "config.json")
    # Every mount destination and the working directory are made in advance.
    arguments = {mount["destination"]: argument for argument, mount in _mounts(spec)}
    directories = {
        mount["destination"]: arguments.get(mount["destination"], f"the default mount {mount['destination']}")
        for mount in document["mounts"]
    }
    directories[document["process"]["cwd"]] = "cwd"
    entries = tree.image_tree(spec, directories).merged()
    os.makedirs(spec.out)
    write_tree(entries, os.path.join(spec.out, "rootfs"))
    with open(os.path.join(spec.out, "config.json"), "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
    sbom.write(spec.out, SBOM_FILE, sbom_content)
    return document

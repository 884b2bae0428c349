"""Unpacking an ACI's rootfs into a private bundle, for ``nix2aci run``.

Input: the path of an ACI. :func:`check_image` refuses what could write outside
the bundle before anything is written; :func:`unpack` extracts the rootfs.
"""

from __future__ import annotations

import posixpath
import tarfile

from . import aci
from .appc import ImageManifest
from .errors import Nix2AciError


def check_image(image: str, allow_setuid: bool = False) -> ImageManifest:
    """The manifest of a valid, safe image; raises before anything is written.

    Refused: invalid ACIs (unsafe names included, see :class:`nix2aci.aci.Layout`);
    devices and FIFOs; hard links to anything but an earlier regular file of the
    rootfs; members under a symlink of the archive (they would be written
    wherever it points); set-uid and set-gid files unless ``allow_setuid``.
    """
    manifest, problems = aci.validate_archive(image)
    if problems:
        raise Nix2AciError(f"{image} is not a valid ACI: {problems[0]}")
    files: set[str] = set()
    symlinks: set[str] = set()
    with tarfile.open(image, "r:*") as tar:
        for member in tar:
            name = aci.clean_name(member.name)
            where = f"{image}: {member.name}"
            parents = [posixpath.dirname(name)]
            while parents[-1]:
                parents.append(posixpath.dirname(parents[-1]))
            if symlinks.intersection(parents):
                raise Nix2AciError(
                    f"{where} lies under a symlink of the archive; it could be written outside the image"
                )
            if member.islnk() and aci.clean_name(member.linkname) not in files:
                raise Nix2AciError(f"{where} is a hard link to {member.linkname!r}, not to a file of the image")
            if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
                raise Nix2AciError(
                    f"{where} is a device or FIFO; nix2aci run unpacks only files, directories and links"
                )
            if member.mode & 0o6000 and not allow_setuid:
                raise Nix2AciError(f"{where} is set-uid or set-gid; pass --allow-setuid to run such an image")
            if member.issym():
                symlinks.add(name)
            elif member.isreg():
                files.add(name)
    return manifest


def unpack(image: str, bundle: str) -> None:
    """Extract the rootfs of a checked ``image`` into ``bundle/rootfs``, owners and modes kept."""
    with tarfile.open(image, "r:*") as tar:
        members = [member for member in tar if aci.clean_name(member.name).split("/", 1)[0] == "rootfs"]
        # The members were vetted by check_image; Python >= 3.12 wants that said.
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tar.extractall(bundle, members=members, numeric_owner=True, **trusted)

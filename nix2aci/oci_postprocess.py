"""``postprocess.sh`` of an OCI image (``buildOCIImage``): link it into OUTDIR as a GC root, push it on request.

The builder writes the script beside the image
(:func:`nix2aci.build.postprocess_script.write_script`); it runs
``nix2aci postprocess --build-output OUT --oci-layout NAME`` (or
``--docker-archive FILE``) with the user's options, which comes here:

1. links ``OUTDIR/NAME`` to the layout (the build output itself) or
   ``OUTDIR/FILE`` to the archive in it, in one rename, never replacing what is
   the user's (:mod:`nix2aci.signing.atomic`'s rules, ``--force`` as for ACIs),
   and registers the link as an indirect GC root: the image references its
   layers, so the root keeps them too;
2. prints the link and how to push it;
3. with ``--push DEST`` (and push's ``--registries.d``, ``--authfile``,
   ``--tls-verify``, checked before step 1 by :mod:`nix2aci.commands.postprocess`),
   does what ``nix2aci push --sign [OPTIONS] LINK DEST`` does, in this process
   (without ``--sign`` when the image was built with ``sign = false``, or
   ``--no-sign`` is given: there is no way to sign through the script of an image
   built not to be signed; ``nix2aci push --sign`` does that).

Nothing is signed here: an OCI image's signature is of its manifest as a
registry holds it (the containers' "simple signing"), which ``push --sign`` writes.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass

from .distribution.reference import Destination
from .distribution.skopeo import Options
from .errors import Nix2AciError, UsageError
from .signing import atomic
from .signing.postprocess import register_gc_root, shown

DEFAULT_OUTDIR = "images"
# The files that make a build output an OCI image layout (the layout is the output directory itself).
LAYOUT_FILES = ("oci-layout", "index.json")


@dataclass(frozen=True)
class OciImage:
    """An OCI image of a build output: its format, its name in OUTDIR, and the path its link points at."""

    format: str
    name: str
    target: str


@dataclass(frozen=True)
class PushRequest:
    """``--push DEST`` with push's registry options, both checked."""

    destination: Destination
    registry: Options


def _plain_name(option: str, name: str) -> str:
    """``name`` when it is one file name (no ``/``, not ``.`` or ``..``, not empty); else a UsageError."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise UsageError(f"{option}: {shown(name)!r} is not a file name: give the image's name in OUTDIR, no '/'")
    return name


def _regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file, symlinks not followed."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def image_of(store_output: str, image_format: str, name: str) -> OciImage:
    """The OCI image of the build output ``store_output`` (a directory, resolved) in ``image_format``.

    ``oci-layout``: the output is the layout (it holds ``oci-layout`` and
    ``index.json``), linked as ``name``; ``docker-archive``: the output holds the
    archive ``name``. Raises Nix2AciError when the output does not hold that.
    """
    if image_format == "oci-layout":
        name = _plain_name("--oci-layout", name)
        missing = [file for file in LAYOUT_FILES if not _regular_file(os.path.join(store_output, file))]
        if missing:
            raise Nix2AciError(f"{store_output} is no OCI image layout: it has no {' or '.join(missing)} file")
        return OciImage(image_format, name, store_output)
    name = _plain_name("--docker-archive", name)
    target = os.path.join(store_output, name)
    if not _regular_file(target):
        raise Nix2AciError(f"{store_output} holds no docker-archive {name}")
    return OciImage(image_format, name, target)


def link_image(image: OciImage, outdir: str, force: bool = False) -> str:
    """Link ``image`` into ``outdir`` under its name and root the link (when its target is in the Nix store).

    Nothing is replaced unless the name holds nothing or a link nix2aci made
    (:func:`atomic.made_by_nix2aci`); ``force`` replaces the user's file or link,
    never a directory. Returns the link.
    """
    if atomic.in_nix_store(outdir):
        raise Nix2AciError(f"OUTDIR {outdir} is in the Nix store; give a directory outside it")
    link = os.path.join(outdir, image.name)
    try:
        os.makedirs(outdir, exist_ok=True)
        atomic.refuse_foreign([link], force, shown)
        atomic.replace_symlink(link, image.target)
    except OSError as error:
        raise Nix2AciError(f"cannot link into {outdir}: {error.filename or ''} {error.strerror or error}") from None
    if atomic.in_nix_store(image.target):
        register_gc_root(link)
    return link


def summary(image: OciImage, link: str, sign: bool) -> str:
    """The lines postprocess prints: the link, what it is, and how to push it."""
    what = "an OCI image layout" if image.format == "oci-layout" else "a docker-archive"
    words = ["nix2aci", "push", *(["--sign"] if sign else []), shown(link), "DEST"]
    return "\n".join(
        [
            f"{shown(link)} -> {image.target}",
            f"  image:     {what}, a GC root while the link exists",
            f"  push:      {' '.join(map(shlex.quote, words))}   (or postprocess.sh --push DEST)",
        ]
    )


def main(
    store_output: str,
    image_format: str,
    name: str,
    outdir: str | None = None,
    sign: bool = True,
    force: bool = False,
    push: PushRequest | None = None,
) -> int:
    """The ``postprocess`` command for an OCI image: link, root, print; then push as ``push`` says when given.

    Input: a build output (``./result`` and the like are followed to the store
    path, which the link must name), the image's format and name as
    ``postprocess.sh`` gives them, OUTDIR (default ./images), whether the push
    signs. Output: the exit status (push's, when pushing).
    """
    image = image_of(os.path.realpath(store_output), image_format, name)
    link = link_image(image, os.path.abspath(outdir or DEFAULT_OUTDIR), force)
    print(summary(image, link, sign), flush=True)
    if push is None:
        return 0
    from .commands.push import push_image

    # The link itself is pushed: shown() is how it is printed, not a path to open.
    return push_image(link, push.destination, push.registry, sign, named=shown(link))

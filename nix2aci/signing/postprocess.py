"""``postprocess.sh``: from a build output to linked, GC-rooted, signed images.

The builder writes ``postprocess.sh`` into every output
(:func:`nix2aci.build.postprocess_script.write_script`).
Run by the user outside Nix, it calls :func:`postprocess`, which for each
image of the output:

1. links ``OUTDIR/<file>.aci`` (and a thin image's ``.mounts``) to the file in
   the store, atomically, and registers the link as an indirect GC root;
2. signs it with the dedicated key (``OUTDIR/<file>.aci.asc``, atomically),
   unless the build said ``sign = false``;
3. verifies the new signature at once with only the public key;
4. prints a summary.

Signing happens only here, never in a build, so the key never enters one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import sys
from dataclasses import dataclass

from ..errors import Nix2AciError
from . import atomic, openpgp

DEFAULT_OUTDIR = "ACIs"


@dataclass(frozen=True)
class Processed:
    """What postprocess did for one image."""

    link: str
    target: str
    image_id: str
    signer: openpgp.Signer | None


# --- GC roots --------------------------------------------------------------------

_NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"


def nix_base32(digest: bytes) -> str:
    """Nix's base-32 encoding of a hash (the alphabet and bit order of store path hashes)."""
    length = (len(digest) * 8 - 1) // 5 + 1
    characters = []
    for n in range(length - 1, -1, -1):
        bit = n * 5
        i, j = divmod(bit, 8)
        value = digest[i] >> j
        if i + 1 < len(digest):
            value |= digest[i + 1] << (8 - j)
        characters.append(_NIX_BASE32[value & 0x1F])
    return "".join(characters)


def gc_roots_dirs() -> list[str]:
    """Where indirect roots may go, in order: Nix's own ``auto`` directory, then the per-user one.

    ``auto`` is what ``nix-build``'s result links use, and Nix removes stale
    entries there itself; in a multi-user install only root may write it.
    """
    state = os.environ.get("NIX_STATE_DIR") or "/nix/var/nix"
    user = os.environ.get("USER") or str(os.getuid())
    return [os.path.join(state, "gcroots", "auto"), os.path.join(state, "gcroots", "per-user", user)]


def register_gc_root(link: str) -> str:
    """Register the symlink ``link`` as an indirect GC root, as Nix's ``addIndirectRoot`` does.

    Writes ``gcroots/auto/<nix-base32 sha1 of the link's path> -> link``.
    ``nix-store --add-root`` cannot do this: it only takes store paths, and
    ``link`` points at a file *inside* one. Nix's ``findRoots`` follows the
    root to ``link``, reads ``link``'s target and roots the store path holding
    it (checked with Nix 2.8: ``nix-store --gc --print-roots`` lists
    ``link -> store path`` and ``nix-collect-garbage`` keeps it). Returns the
    root's path.
    """
    link = os.path.abspath(link)
    name = nix_base32(hashlib.sha1(link.encode()).digest())
    errors = []
    for directory in gc_roots_dirs():
        root = os.path.join(directory, name)
        try:
            if os.path.islink(root) and os.readlink(root) == link:
                return root
            os.makedirs(directory, exist_ok=True)
            atomic.replace_symlink(root, link)
            return root
        except OSError as error:
            errors.append(f"{directory}: {error.strerror or error}")
    raise Nix2AciError(f"cannot register {link} as a GC root ({'; '.join(errors)})")


# --- Linking ---------------------------------------------------------------------


def outputs(store_output: str) -> list[str]:
    """The files of a build output that go into OUTDIR, sorted: every ``.aci`` and ``.mounts``."""
    try:
        names = sorted(os.listdir(store_output))
    except OSError as error:
        raise Nix2AciError(f"cannot read the build output: {error}") from None
    files = [name for name in names if name.endswith(atomic.LINKED_SUFFIXES)]
    if not any(name.endswith(".aci") for name in files):
        raise Nix2AciError(f"{store_output} holds no .aci image")
    return files


def link_outputs(store_output: str, outdir: str, force: bool = False) -> list[str]:
    """Link every image (and ``.mounts``) of ``store_output`` into ``outdir``; root the links.

    Nothing is replaced unless every name holds nothing or a link nix2aci made
    (:func:`atomic.made_by_nix2aci`); ``force`` replaces the user's files and
    links too. A link of ours whose target changes loses its old signature at
    once: it signed another image; any other ``.asc`` is left for signing to
    replace. GC roots are registered only when ``store_output`` is in the Nix
    store (anything else needs none). Returns the links.
    """
    if atomic.in_nix_store(outdir):
        raise Nix2AciError(f"OUTDIR {outdir} is in the Nix store; give a directory outside it")
    os.makedirs(outdir, exist_ok=True)
    in_store = atomic.in_nix_store(store_output)
    names = outputs(store_output)
    atomic.refuse_foreign([os.path.join(outdir, name) for name in names], force, shown)
    links = []
    for name in names:
        link, target = os.path.join(outdir, name), os.path.join(store_output, name)
        stale_signature = atomic.made_by_nix2aci(link) and os.readlink(link) != target
        atomic.replace_symlink(link, target)
        if name.endswith(".aci") and stale_signature:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(openpgp.signature_path(link))
        if in_store:
            register_gc_root(link)
        links.append(link)
    return links


def _image_id(target: str) -> str:
    try:
        with open(target + ".id", encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return "(unknown: no .aci.id)"


def shown(path: str) -> str:
    """``path`` as the user would type it from the current directory."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def postprocess(
    store_output: str, outdir: str | None = None, sign: bool = True, force: bool = False
) -> list[Processed]:
    """Link, root, sign and verify the images of ``store_output`` into ``outdir`` (default ./ACIs).

    Input: a build output directory; OUTDIR (relative to the current directory);
    whether to sign; whether to replace the user's files (see :func:`link_outputs`).
    Output: what was done per image. Without a usable key it raises
    :class:`Nix2AciError` after linking (the links stay valid).
    """
    outdir = os.path.abspath(outdir or DEFAULT_OUTDIR)
    # Through ./result and the like to the store path itself: the links must
    # point into the store, not at another link.
    store_output = os.path.realpath(store_output)
    try:
        links = link_outputs(store_output, outdir, force)
    except OSError as error:
        raise Nix2AciError(f"cannot link into {outdir}: {error.filename or ''} {error.strerror or error}") from None
    images = [link for link in links if link.endswith(".aci")]
    signers: dict[str, openpgp.Signer] = {}
    if sign:
        gpg, key = openpgp.find_key()
        for image in images:
            signers[image] = openpgp.sign_and_verify(gpg, key, image)
    targets = {image: os.readlink(image) for image in images}
    return [Processed(image, targets[image], _image_id(targets[image]), signers.get(image)) for image in images]


def summary(processed: list[Processed]) -> str:
    """The lines postprocess prints: per image its file, ID, signature and how to run it."""
    run = "nix2aci run" if os.geteuid() == 0 else "sudo nix2aci run"
    lines = []
    for item in processed:
        lines.append(f"{shown(item.link)} -> {item.target}")
        lines.append(f"  image ID:  {item.image_id}")
        if item.signer:
            lines.append(f"  signature: {shown(openpgp.signature_path(item.link))} (verified, {item.signer.digest})")
            lines.append(f"  key:       {item.signer.fingerprint} ({item.signer.name})")
        else:
            lines.append("  signature: none (built with sign = false)")
        lines.append(f"  run:       {run} {shlex.quote(shown(item.link))}")
    return "\n".join(lines)


def main(store_output: str, outdir: str | None, sign: bool, force: bool = False) -> int:
    """The ``postprocess`` command: run, print the summary; 0 on success."""
    # A plain SIGTERM would skip the cleanup of temporaries; as SystemExit it runs.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(143))
    print(summary(postprocess(store_output, outdir, sign, force)))
    return 0

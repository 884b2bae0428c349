"""End to end: an OCI image travels through Nix's own distribution (issue 16).

The image (default.nix's busyboxImage) is copied to file:// binary caches, one
left unsigned, one signed with ``nix store sign`` and a key made by
``nix-store --generate-binary-cache-key``, and realised into a separate store
(``--store DIR``, a chroot store under a temp dir) that requires signatures and
trusts only that key. Every Nix call reads no nix.conf of the machine
(``NIX_CONF_DIR`` and ``NIX_USER_CONF_FILES`` point into the test's directory)
and keeps its caches there: nothing of the machine's configuration is read or
changed, and the machine's store gains no signature (the caches are signed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import nix2aci_command, nix2aci_environment, nix_build, require, run, run_guarded

pytestmark = pytest.mark.slow

NIX_COMMAND = ["--extra-experimental-features", "nix-command"]  # nix copy and nix store sign, on Nix 2.8


@pytest.fixture(scope="module")
def image() -> Path:
    return nix_build("busyboxImage")


@pytest.fixture
def nix_env(tmp_path) -> dict[str, str]:
    """The environment of every Nix call here: no nix.conf of the machine or the user, caches in the test's."""
    config = tmp_path / "nix-config"
    config.mkdir()
    return {
        **os.environ,
        "NIX_CONF_DIR": str(config),
        "NIX_USER_CONF_FILES": str(config / "absent.conf"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    }


def key_pair(directory: Path, name: str, env: dict[str, str]) -> tuple[Path, str]:
    """A binary cache key ``name`` made by Nix in ``directory``: (the secret key file, the public key)."""
    secret, public = directory / f"{name}.secret", directory / f"{name}.public"
    run([require("nix-store"), "--generate-binary-cache-key", name, str(secret), str(public)], env=env)
    return secret, public.read_text().strip()


def cache_of(image: Path, cache: Path, env: dict[str, str], secret: Path | None = None) -> str:
    """``image`` and its closure copied to the binary cache ``cache``, signed there with ``secret`` when given;
    returns the cache's URL."""
    url = f"file://{cache}"
    run([require("nix"), *NIX_COMMAND, "copy", "--to", url, str(image)], env=env)
    if secret is not None:
        run(["nix", *NIX_COMMAND, "store", "sign", "--store", url, "--key-file", str(secret), "--recursive",
             str(image)], env=env)  # fmt: skip
    return url


def realise(image: Path, store: Path, cache_url: str, trusted_key: str, env: dict[str, str], check: bool = True):
    """``nix-store --realise`` of ``image`` into the chroot store ``store`` from ``cache_url`` alone, signatures
    required, ``trusted_key`` the only key trusted."""
    return run(
        [
            "nix-store", "--store", str(store), "--realise", str(image),
            "--option", "substituters", cache_url,
            "--option", "require-sigs", "true",
            "--option", "trusted-public-keys", trusted_key,
        ],
        env=env, check=check,
    )  # fmt: skip


def tree(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` (itself as ""): a file's sha256 and whether it is executable, a link's
    target as written, a directory; links are never followed."""
    entries = {}
    for path in [root, *sorted(root.rglob("*"))]:
        relative = str(path.relative_to(root)) if path != root else ""
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            entries[relative] = ("link", os.readlink(path))
        elif stat.S_ISDIR(mode):
            entries[relative] = ("directory",)
        else:
            with open(path, "rb") as file:
                entries[relative] = ("file", hashlib.file_digest(file, "sha256").hexdigest(), bool(mode & 0o111))
    return entries


def in_store(store: Path, path: str) -> Path:
    """Where the store path (or a path inside one) ``path``, an absolute /nix/store path, lies in the chroot
    store ``store``."""
    return store / "nix" / "store" / Path(path).relative_to("/nix/store")


def validate_in(store_dir: Path, image: Path) -> subprocess.CompletedProcess:
    """``nix2aci validate IMAGE`` run where ``store_dir`` is /nix/store: a private mount namespace (root only)
    with it bound over /nix/store, so the image's links into the store resolve in that store alone."""
    bind = 'mount --bind "$0" /nix/store && exec "$@"'
    command = [require("unshare"), "--mount", "--propagation", "private", "sh", "-c", bind, str(store_dir),
               *nix2aci_command("validate", image)]  # fmt: skip
    return run_guarded(command, env=nix2aci_environment(), check=False)


def test_an_image_through_a_signed_cache_is_the_same_bytes_in_another_store_and_valid_there(
    image, tmp_path, nix_env, is_root
):
    secret, public = key_pair(tmp_path, "nix2aci-test-cache-1", nix_env)
    url = cache_of(image, tmp_path / "signed-cache", nix_env, secret)
    closure = run(["nix-store", "--query", "--requisites", str(image)]).stdout.split()
    # The image and its layers, nothing else (no builder, no command line): copying the image copies the
    # layers its blobs link to.
    assert len(closure) > 1 and all(path == str(image) or "-oci-layer-" in path for path in closure), closure
    narinfos = sorted((tmp_path / "signed-cache").glob("*.narinfo"))
    assert len(narinfos) == len(closure)
    assert all("Sig: nix2aci-test-cache-1:" in narinfo.read_text() for narinfo in narinfos)

    other = tmp_path / "other-store"
    realise(image, other, url, public, nix_env)

    # Byte for byte the same, every store path of the closure: documents, blobs, link targets, modes.
    for path in closure:
        assert tree(in_store(other, path)) == tree(Path(path)), path
    # Each blob of the layout, read from the other store (its layers' links followed there): its digest.
    blobs = sorted((in_store(other, str(image)) / "blobs" / "sha256").iterdir())
    assert len(blobs) >= 3  # config, manifest, layers
    for blob in blobs:
        target = in_store(other, os.readlink(blob)) if blob.is_symlink() else blob
        with open(target, "rb") as file:
            assert hashlib.file_digest(file, "sha256").hexdigest() == blob.name

    # nix2aci validate, with the other store as /nix/store: every document, and every layer hashed.
    validated = validate_in(other / "nix" / "store", image)
    assert (validated.returncode, validated.stdout) == (0, f"{image}: valid oci-layout\n"), validated.stderr
    # The check reads that store and no other: without one of the layers, validate names the missing blob.
    layer = next(path for path in closure if "-oci-layer-" in path)
    partial = tmp_path / "partial-store"
    shutil.copytree(other / "nix" / "store", partial, symlinks=True)
    shutil.rmtree(partial / Path(layer).name)
    missing = validate_in(partial, image)
    assert missing.returncode == 1
    assert f"which is a symbolic link to {layer}/blob, which does not exist" in missing.stdout + missing.stderr


@pytest.mark.parametrize("signer", ["nobody", "another key"])
def test_a_cache_unsigned_or_signed_by_another_key_is_refused(image, tmp_path, nix_env, signer):
    _, trusted = key_pair(tmp_path, "nix2aci-test-trusted", nix_env)
    other_secret = key_pair(tmp_path, "nix2aci-test-other", nix_env)[0] if signer == "another key" else None
    url = cache_of(image, tmp_path / "cache", nix_env, other_secret)
    signatures = [line for path in (tmp_path / "cache").glob("*.narinfo") for line in path.read_text().splitlines()
                  if line.startswith("Sig: ")]  # fmt: skip
    assert bool(signatures) == (signer == "another key")

    other = tmp_path / "other-store"
    refused = realise(image, other, url, trusted, nix_env, check=False)
    assert refused.returncode != 0
    assert (
        f"warning: the substitute for '{image}' from '{url}' is not signed by any of the keys in "
        "'trusted-public-keys'" in refused.stderr
    )
    assert not in_store(other, str(image)).exists()

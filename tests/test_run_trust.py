"""`nix2aci run` runs only images signed by a trusted key: real keys, real signatures, real runc.

The image writes a canary into a host directory bound to its mountPoint ``out``:
a refused run must leave no canary (nothing ran) and no bundle. Keys, signatures
and the trust store live in temporary directories named by NIX2ACI_GNUPGHOME and
NIX2ACI_TRUSTED_KEYS: the user's own configuration is never read or written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import built_aci, nix2aci, nix_build, only_aci, require

from nix2aci import run as run_module
from nix2aci.errors import Nix2AciError
from nix2aci.signing import trust

pytestmark = pytest.mark.slow

IMAGE_NAME = "example.com/canary"
# An image whose app leaves a file in the host directory bound to /out.
CANARY_IMAGE = f"""n.lib.mkACI {{
  packages = [ n.pkgs.busybox ];
  name = "{IMAGE_NAME}";
  exec = [ "/bin/sh" "-c" "echo ran > /out/ran" ];
  mounts.out.path = "/out";
}}"""
HOW_TO_TRUST = "nix2aci trust --prefix NAME PUBKEYS"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two dedicated signing keys made by `nix2aci prepare-signing-key`: their GnuPG homes."""
    require("gpg")
    homes = {}
    for name in ("alice", "mallory"):
        home = tmp_path_factory.mktemp("keys") / name
        result = nix2aci("prepare-signing-key", "--home", str(home), "--no-protection", "--name", name)
        assert result.returncode == 0, result.stderr
        homes[name] = home
    yield homes
    for home in homes.values():
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def built() -> Path:
    return built_aci(CANARY_IMAGE)


@pytest.fixture
def case(tmp_path, built) -> dict[str, Path]:
    """A copy of the image (signatures go next to it), an empty trust store, the canary's directory, TMPDIR."""
    paths = {name: tmp_path / name for name in ("store", "out", "tmp")}
    paths["out"].mkdir()
    paths["tmp"].mkdir()
    paths["image"] = tmp_path / "canary.aci"
    shutil.copyfile(built, paths["image"])
    return paths


def sign(image: Path, home: Path) -> None:
    result = nix2aci("sign", str(image), env={"NIX2ACI_GNUPGHOME": str(home)})
    assert result.returncode == 0, result.stderr


def trust_key(store: Path, home: Path, *how: str) -> None:
    result = nix2aci("trust", *how, str(home / "pubkeys.gpg"), env={"NIX2ACI_TRUSTED_KEYS": str(store)})
    assert result.returncode == 0, result.stderr


def run_canary(paths: dict[str, Path], *flags: str) -> subprocess.CompletedProcess:
    require("runc")
    volume = f"out,kind=host,source={paths['out']}"
    environment = {"NIX2ACI_TRUSTED_KEYS": str(paths["store"]), "TMPDIR": str(paths["tmp"])}
    return nix2aci("run", *flags, "--volume", volume, str(paths["image"]), env=environment, check=False)


def assert_refused(result: subprocess.CompletedProcess, paths: dict[str, Path], *message: str) -> None:
    """One error line holding each of ``message``; the app never ran and no bundle is left."""
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("nix2aci: error: ") and result.stderr.count("\n") == 1, result.stderr
    for part in message:
        assert part in result.stderr
    assert list(paths["out"].iterdir()) == [], "the app ran"
    assert list(paths["tmp"].iterdir()) == [], "a bundle was left"


@pytest.mark.parametrize("how", [("--prefix", IMAGE_NAME), ("--prefix", "example.com"), ("--root",)])
def test_an_image_signed_by_a_trusted_key_runs(keys, case, how):
    sign(case["image"], keys["alice"])
    trust_key(case["store"], keys["alice"], *how)
    result = run_canary(case)
    assert result.returncode == 0, result.stderr
    assert (case["out"] / "ran").read_text() == "ran\n"


def test_an_unsigned_image_is_refused_saying_how_to_trust_or_skip(keys, case):
    trust_key(case["store"], keys["alice"], "--root")
    assert_refused(run_canary(case), case, "is not signed", HOW_TO_TRUST, "--insecure-options=image")


def test_insecure_options_image_runs_an_unsigned_image(case):
    result = run_canary(case, "--insecure-options=image")
    assert result.returncode == 0, result.stderr
    assert (case["out"] / "ran").read_text() == "ran\n"


def test_no_trusted_keys_refuses(keys, case):
    sign(case["image"], keys["alice"])
    assert_refused(run_canary(case), case, "no trusted keys", HOW_TO_TRUST)


def test_a_signer_nobody_trusts_is_refused(keys, case):
    sign(case["image"], keys["mallory"])
    trust_key(case["store"], keys["alice"], "--root")
    assert_refused(run_canary(case), case, "which is not trusted", HOW_TO_TRUST)


def test_a_key_trusted_for_another_name_is_refused_naming_the_image(keys, case):
    sign(case["image"], keys["alice"])
    # A plain string prefix of the name, not a parent of it: rkt let this through.
    trust_key(case["store"], keys["alice"], "--prefix", "example.com/can")
    assert_refused(
        run_canary(case), case, f"is named '{IMAGE_NAME}'", "trusted only for example.com/can", "--prefix " + IMAGE_NAME
    )


def test_a_signature_of_other_bytes_is_refused(keys, case):
    sign(case["image"], keys["alice"])
    trust_key(case["store"], keys["alice"], "--root")
    with case["image"].open("ab") as image:  # gzip ignores nothing after its end: valid bytes, other signature
        image.write(b"\0" * 512)
    assert_refused(run_canary(case), case, "is refused", "BAD signature")


def test_a_compression_bomb_as_the_signature_is_refused_before_gpg_inflates_it(keys, case, tmp_path):
    trust_key(case["store"], keys["alice"], "--root")
    zeros = tmp_path / "zeros"
    with zeros.open("wb") as file:
        file.truncate(64 << 20)  # sparse: 64 MiB of zeros that take no disk
    signature = Path(f"{case['image']}.asc")
    gpg = ["gpg", "--homedir", str(keys["alice"]), "--batch", "--compress-algo", "zlib", "-z", "9", "--armor"]
    subprocess.run([*gpg, "--output", str(signature), "--sign", str(zeros)], check=True, capture_output=True)
    signature.write_text(signature.read_text().replace("PGP MESSAGE", "PGP SIGNATURE"))
    assert_refused(run_canary(case), case, "is refused: it is not a detached signature: it holds a compressed data")


def signed_and_trusted_in_this_process(keys, case, monkeypatch) -> None:
    """For run() called in this process: the image signed by alice, alice trusted for every image, bundles in tmp."""
    require("runc")
    sign(case["image"], keys["alice"])
    trust_key(case["store"], keys["alice"], "--root")
    monkeypatch.setenv("NIX2ACI_TRUSTED_KEYS", str(case["store"]))
    monkeypatch.setattr(tempfile, "tempdir", str(case["tmp"]))


def test_an_image_changed_in_place_after_its_check_is_refused(keys, case, monkeypatch):
    """The check and the unpacking read the same open file; bytes written into it between the two are caught."""
    signed_and_trusted_in_this_process(keys, case, monkeypatch)
    checked = trust.verify_trusted
    other_image = only_aci(nix_build("busybox")).read_bytes()  # valid too: only the digests tell them apart

    def check_then_change(data, signature):
        verdict = checked(data, signature)
        with open(case["image"], "r+b") as same_file:  # the same inode: what a rename would not do
            same_file.write(other_image)
            same_file.truncate()
        return verdict

    monkeypatch.setattr(trust, "verify_trusted", check_then_change)
    volume = run_module.Volume("out", str(case["out"]))
    request = run_module.RunRequest(image=str(case["image"]), volumes=(volume,))
    with pytest.raises(Nix2AciError, match="changed while it was read"):
        run_module.run(request)
    assert list(case["out"].iterdir()) == [] and list(case["tmp"].iterdir()) == []


def test_a_trusted_run_opens_the_image_once(keys, case, monkeypatch):
    """The signature check and the unpacking read one open file: the image's path is opened once."""
    signed_and_trusted_in_this_process(keys, case, monkeypatch)
    opened = []
    real_os_open, real_open = os.open, open

    def counting(real):
        def opening(path, *args, **kwargs):
            if path == str(case["image"]):  # run() names the image as given; fds and other paths pass
                opened.append(path)
            return real(path, *args, **kwargs)

        return opening

    monkeypatch.setattr(os, "open", counting(real_os_open))
    monkeypatch.setattr("builtins.open", counting(real_open))
    volume = run_module.Volume("out", str(case["out"]))
    assert run_module.run(run_module.RunRequest(image=str(case["image"]), volumes=(volume,))) == 0
    assert (case["out"] / "ran").read_text() == "ran\n"
    assert len(opened) == 1

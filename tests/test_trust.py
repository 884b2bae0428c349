"""The trust store (`nix2aci trust`, rkt's layout) and trust.verify_trusted, with real gpg.

Every store is a temporary directory named by NIX2ACI_TRUSTED_KEYS or XDG_CONFIG_HOME
(and trust.SYSTEM_STORE pointed at one where both stores are read): the tests never
read or write the real /etc/nix2aci or the user's configuration.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from conftest import nix2aci, require, run

from nix2aci.errors import Nix2AciError
from nix2aci.signing import trust

HOW = "nix2aci trust --prefix NAME PUBKEYS"
SKIP = "--insecure-options=image"


def gpg(home: Path, *args: str) -> subprocess.CompletedProcess:
    require("gpg")
    return run(["gpg", "--homedir", str(home), "--batch", *args])


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative name: bytes); {} when it does not exist."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path | str]:
    """Keys alice, mallory and expired (2020, one day): each one's public key file, fingerprint and signature
    of ``image.aci``."""
    home = tmp_path_factory.mktemp("t") / "h"
    home.mkdir(mode=0o700)
    files = home.parent
    image = files / "image.aci"
    image.write_bytes(os.urandom(300_000))
    found: dict[str, Path | str] = {"image": image}
    try:
        for name, extra in (("alice", []), ("mallory", []), ("expired", ["--faked-system-time", "20200101T000000"])):
            uid = f"{name} <{name}@example.invalid>"
            expiry = "1d" if name == "expired" else "never"
            gpg(home, "--passphrase", "", "--pinentry-mode", "loopback", *extra, "--quick-generate-key", uid,
                "rsa3072", "sign", expiry)  # fmt: skip
            listing = gpg(home, "--with-colons", "--fingerprint", f"{name}@example.invalid").stdout
            found[f"{name}-fpr"] = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
            found[name] = files / f"{name}.pub"
            gpg(home, "--armor", "--output", str(found[name]), "--export", f"{name}@example.invalid")
            signature = files / f"{name}.asc"
            when = ["--faked-system-time", "20200101T000100"] if name == "expired" else []
            gpg(home, *when, "--local-user", f"{name}@example.invalid", "--armor", "--detach-sign", "--output",
                str(signature), str(image))  # fmt: skip
            found[f"{name}-sig"] = signature
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)
    return found


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """One trust store for this test, in both the environment of commands and this process."""
    store = tmp_path / "trustedkeys"
    monkeypatch.setenv("NIX2ACI_TRUSTED_KEYS", str(store))
    return store


def verify(keys, signer: str, image_bytes: bytes | None = None) -> trust.TrustedSignature:
    image = keys["image"]
    with open(image, "rb") as data:
        return trust.verify_trusted(data, str(keys[f"{signer}-sig"]))


# --- nix2aci trust -----------------------------------------------------------------


def test_trust_stores_a_prefix_key_in_rkts_layout_and_says_what_it_trusted(keys, store, tmp_path):
    result = nix2aci("trust", "--prefix", "example.com/app", str(keys["alice"]))
    fingerprint = keys["alice-fpr"]
    path = store / "prefix.d" / "example.com" / "app" / fingerprint.lower()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"trusted {fingerprint} (alice <alice@example.invalid>) for images named example.com/app or "
        f"example.com/app/...: {path}\n"
    )
    assert list(snapshot(store)) == [f"prefix.d/example.com/app/{fingerprint.lower()}"]
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o644, 0o755)
    # The stored file is that public key alone, armored: a fresh keyring imports exactly it.
    assert path.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    consumer = tmp_path / "consumer"
    consumer.mkdir(mode=0o700)
    gpg(consumer, "--import", str(path))
    listed = gpg(consumer, "--with-colons", "--list-keys").stdout
    assert [line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")][:1] == [fingerprint]
    assert listed.count("\npub:") + listed.startswith("pub:") == 1
    # Trusting again changes nothing.
    again = nix2aci("trust", "--prefix", "example.com/app", str(keys["alice"]))
    assert again.returncode == 0 and list(snapshot(store)) == [f"prefix.d/example.com/app/{fingerprint.lower()}"]


def test_trust_root_and_several_files(keys, store):
    result = nix2aci("trust", "--root", str(keys["alice"]), str(keys["mallory"]))
    assert result.returncode == 0, result.stderr
    assert sorted(snapshot(store)) == sorted(f"root.d/{keys[f'{n}-fpr'].lower()}" for n in ("alice", "mallory"))
    assert f"trusted {keys['mallory-fpr']} (mallory <mallory@example.invalid>) for every image: " in result.stdout


def test_trust_writes_the_users_store_under_xdg_config_home(keys, tmp_path, monkeypatch):
    monkeypatch.delenv("NIX2ACI_TRUSTED_KEYS", raising=False)
    config = tmp_path / "config"
    result = nix2aci(
        "trust", "--user", "--prefix", "example.com", str(keys["alice"]), env={"XDG_CONFIG_HOME": str(config)}
    )
    assert result.returncode == 0, result.stderr
    assert list(snapshot(config)) == [f"nix2aci/trustedkeys/prefix.d/example.com/{keys['alice-fpr'].lower()}"]


def test_the_stores_read_and_written(tmp_path, monkeypatch):
    monkeypatch.delenv("NIX2ACI_TRUSTED_KEYS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    user = str(tmp_path / "nix2aci" / "trustedkeys")
    assert trust.stores() == ["/etc/nix2aci/trustedkeys", user]
    assert trust.store_to_write(None) == ("/etc/nix2aci/trustedkeys" if os.geteuid() == 0 else user)
    assert (trust.store_to_write(True), trust.store_to_write(False)) == ("/etc/nix2aci/trustedkeys", user)
    monkeypatch.setenv("NIX2ACI_TRUSTED_KEYS", "relative/store")
    assert trust.stores() == [os.path.abspath("relative/store")]
    assert trust.store_to_write(True) == os.path.abspath("relative/store")


@pytest.mark.parametrize(
    "prefix", ["Example.com/app", "example.com/../etc", "/example.com", "example.com//app", "example.com/", "a b"]
)
def test_a_prefix_must_be_an_ac_identifier(keys, store, prefix):
    result = nix2aci("trust", "--prefix", prefix, str(keys["alice"]), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nix2aci: error: --prefix {prefix!r} is not an AC identifier (an image name:")
    assert len(result.stderr.splitlines()) == 1
    assert not store.exists()


@pytest.mark.parametrize("kind", ["text", "signature", "image", "fifo", "missing", "directory"])
def test_trust_refuses_what_is_not_a_public_key_with_one_line(keys, store, tmp_path, kind):
    pubkeys = tmp_path / f"not-a-key-{kind}"
    if kind == "text":
        pubkeys.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot really\n")
    elif kind == "signature":
        pubkeys.write_bytes(keys["alice-sig"].read_bytes())
    elif kind == "image":
        pubkeys.write_bytes(keys["image"].read_bytes())
    elif kind == "fifo":
        os.mkfifo(pubkeys)
    elif kind == "directory":
        pubkeys.mkdir()
    result = nix2aci("trust", "--prefix", "example.com/app", str(pubkeys), check=False)
    # A file argument that is no regular file is a usage error (2); one that holds no key is invalid input (1).
    unusable = {
        "fifo": "is a FIFO, not a regular file",
        "directory": "is a directory, not a regular file",
        "missing": "does not exist",
    }
    assert result.returncode == (2 if kind in unusable else 1)
    expected = unusable.get(kind, "holds no OpenPGP public key (export one with gpg --armor --export)")
    assert expected in result.stderr and str(pubkeys) in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not store.exists()


# --- trust.verify_trusted ----------------------------------------------------------


def test_a_signature_by_a_prefix_key_covers_that_name_and_the_names_under_it(keys, store):
    nix2aci("trust", "--prefix", "example.com/app", str(keys["alice"]))
    before = snapshot(store)
    checked = verify(keys, "alice")
    assert checked.signer.fingerprint == keys["alice-fpr"]
    assert checked.signer.name == "alice <alice@example.invalid>"
    assert checked.digest == hashlib.sha512(keys["image"].read_bytes()).hexdigest()
    assert checked.prefixes == ("example.com/app",)
    assert checked.covers("example.com/app") and checked.covers("example.com/app/db")
    for other in ("example.com/application", "example.com", "example.org/app", "app"):
        assert not checked.covers(other), other
    assert snapshot(store) == before  # verification writes nothing


def test_a_root_key_covers_every_name_and_a_key_may_hold_several_prefixes(keys, store):
    nix2aci("trust", "--prefix", "example.com/app", str(keys["alice"]))
    nix2aci("trust", "--prefix", "example.org", str(keys["alice"]))
    assert verify(keys, "alice").prefixes == ("example.com/app", "example.org")
    nix2aci("trust", "--root", str(keys["mallory"]))
    checked = verify(keys, "mallory")
    assert checked.prefixes == ("",) and checked.covers("anything.example/at/all")


def test_both_stores_are_read(keys, tmp_path, monkeypatch):
    monkeypatch.delenv("NIX2ACI_TRUSTED_KEYS", raising=False)
    monkeypatch.setattr(trust, "SYSTEM_STORE", str(tmp_path / "etc-nix2aci-trustedkeys"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    nix2aci("trust", "--prefix", "example.com", str(keys["alice"]), env={"NIX2ACI_TRUSTED_KEYS": trust.SYSTEM_STORE})
    nix2aci(
        "trust",
        "--user",
        "--prefix",
        "example.net",
        str(keys["alice"]),
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert verify(keys, "alice").prefixes == ("example.com", "example.net")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unsigned", "the image is not signed: {sig} does not exist; sign it, trust the signer's public key with"),
        ("untrusted", "{sig}: signed by key {mallory}, which is not trusted: trust the signer's public key with"),
        ("no keys", "no trusted keys in {store} to check {sig}: trust the signer's public key with"),
        ("bad", "{sig} is refused: BAD signature: the data is not what "),
        ("expired", "{sig} is refused: made by an expired key, "),
        ("impostor", "signed by {mallory_fpr}, which is not trusted"),
    ],
)
def test_what_is_not_trusted_is_refused_saying_how_to_trust_or_skip(keys, store, tmp_path, case, message):
    image, signature = tmp_path / "image.aci", tmp_path / "image.aci.asc"
    image.write_bytes(keys["image"].read_bytes())
    signer = {"untrusted": "mallory", "expired": "expired", "impostor": "mallory"}.get(case, "alice")
    if case != "unsigned":
        signature.write_bytes(keys[f"{signer}-sig"].read_bytes())
    if case == "bad":
        image.write_bytes(image.read_bytes() + b"\0")
    if case != "no keys":
        nix2aci("trust", "--prefix", "example.com", str(keys["alice"]), str(keys["expired"]))
    if case == "impostor":  # mallory's key in a file named after alice's: the name gives mallory nothing
        (store / "prefix.d" / "example.com" / keys["alice-fpr"].lower()).write_bytes(keys["mallory"].read_bytes())
    before = (image.read_bytes(), signature.read_bytes() if signature.exists() else None, snapshot(store))
    with open(image, "rb") as data, pytest.raises(Nix2AciError) as error:
        trust.verify_trusted(data, str(signature))
    text = str(error.value)
    expected = message.format(
        sig=signature, store=store, mallory=keys["mallory-fpr"][-16:], mallory_fpr=keys["mallory-fpr"]
    )
    assert expected in text
    assert HOW in text and SKIP in text and "\n" not in text
    after = (image.read_bytes(), signature.read_bytes() if signature.exists() else None, snapshot(store))
    assert after == before

"""Choosing the signing key (no gpg needed)."""

from __future__ import annotations

import os

import pytest

from nix2aci.errors import Nix2AciError
from nix2aci.signing import atomic, openpgp

RSA_FPR = "A" * 32 + "0123ABCD"
OTHER_FPR = "B" * 40


def listed(fingerprint=RSA_FPR, uid="Alice <alice@example.invalid>", algo="1", cap="scSC", trust="u", subkeys=None):
    """A python-gnupg ``list_keys(True)`` entry, as both 0.4.9 and 0.5 shape it."""
    subkey_info = {keyid: info for keyid, _fpr, info in subkeys or []}
    return {
        "fingerprint": fingerprint,
        "uids": [uid],
        "algo": algo,
        "cap": cap,
        "trust": trust,
        "subkeys": [[keyid, info["cap"], fpr, None] for keyid, fpr, info in subkeys or []],
        "subkey_info": subkey_info or None,
    }


def test_default_home_follows_nix2aci_gnupghome_then_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.delenv("NIX2ACI_GNUPGHOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert openpgp.default_home() == str(tmp_path / "home" / ".config" / "nix2aci" / "gnupg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert openpgp.default_home() == str(tmp_path / "xdg" / "nix2aci" / "gnupg")
    monkeypatch.setenv("NIX2ACI_GNUPGHOME", "relative/keys")
    assert openpgp.default_home() == os.path.abspath("relative/keys")


def test_the_one_rsa_key_is_chosen():
    assert openpgp.choose_key([listed()], "/h", None) == openpgp.Key(RSA_FPR, "Alice <alice@example.invalid>")


def test_no_key_names_the_script_that_makes_one():
    with pytest.raises(Nix2AciError, match=r"no signing key: /h holds no secret key; create a signing key with "
                                           r"scripts/prepare-signing-key"):  # fmt: skip
        openpgp.choose_key([], "/h", None)


def test_a_missing_home_is_reported_and_never_created(tmp_path):
    home = tmp_path / "absent"
    with pytest.raises(Nix2AciError, match=r"does not exist; create a signing key with scripts/prepare-signing-key"):
        openpgp.find_key(str(home))
    assert not home.exists()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (listed(algo="22"), "is an Ed25519 (EdDSA) key, which rkt cannot verify; use an RSA key"),
        (listed(trust="e"), "is expired, revoked or disabled"),
        (listed(trust="r"), "is expired, revoked or disabled"),
        (listed(cap="cC"), "cannot sign"),
        # An RSA primary that only certifies, with an Ed25519 signing subkey: gpg would sign with the subkey.
        (
            listed(cap="cSC", subkeys=[("1122334455667788", "C" * 40, {"cap": "s", "algo": "22", "trust": "u"})]),
            "Ed25519",
        ),
    ],
)
def test_keys_rkt_cannot_use_are_refused_with_the_reason(key, reason):
    assert reason in openpgp.key_problem(key)
    with pytest.raises(Nix2AciError, match="no usable signing key") as error:
        openpgp.choose_key([key], "/h", None)
    assert reason in str(error.value)


def test_an_rsa_signing_subkey_is_fine():
    key = listed(cap="cSC", subkeys=[("1122334455667788", "C" * 40, {"cap": "s", "algo": "1", "trust": "u"})])
    assert openpgp.key_problem(key) is None


def test_several_keys_need_nix2aci_signing_key():
    keys = [listed(), listed(OTHER_FPR, "Bob <bob@example.invalid>")]
    with pytest.raises(Nix2AciError, match=r"holds several signing keys .*: choose one with NIX2ACI_SIGNING_KEY"):
        openpgp.choose_key(keys, "/h", None)
    # By fingerprint (spaces, case, 0x and key-id suffixes allowed), or by part of the user id.
    for wanted in (RSA_FPR, RSA_FPR.lower(), "0x0123ABCD", "AAAA AAAA 0123 ABCD", "alice@example"):
        assert openpgp.choose_key(keys, "/h", wanted).fingerprint == RSA_FPR
    assert openpgp.choose_key(keys, "/h", "Bob").fingerprint == OTHER_FPR
    with pytest.raises(Nix2AciError, match=r"NIX2ACI_SIGNING_KEY='carol' matches no secret key in /h"):
        openpgp.choose_key(keys, "/h", "carol")


def test_nothing_is_ever_signed_into_the_nix_store(tmp_path, monkeypatch):
    # Root may write into store paths, which would corrupt them: refused before gpg runs.
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp_path / "store"))
    image = tmp_path / "store" / ("0" * 32 + "-aci-x") / "x.aci"
    with pytest.raises(Nix2AciError, match=r"is in the Nix store, where nothing may be added: run the build's"):
        openpgp.sign_file(None, openpgp.Key(RSA_FPR, "Alice"), str(image))
    assert atomic.in_nix_store(str(image)) and not atomic.in_nix_store(str(tmp_path / "storefront" / "x.aci"))

"""Signing pushed images the containers way, checked by the real consumers: ``nix2aci push --sign`` writes a
simple signature with nix2aci's dedicated key where registries.d says; ``nix2aci policy`` writes the consumer's
policy.json and registries.d file; with those, ``skopeo copy --policy`` and ``podman pull --signature-policy``
accept the signed image and refuse an unsigned one, the same digest under another tag, and a signature by
another key, and ``nix2aci verify docker://...`` says the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build, run
from engines import Podman
from test_push import GREETING, INSECURE, index_entry, one_line_error
from test_signing import gpg, make_key, stop_agent

from nix2aci.errors import Nix2AciError
from nix2aci.signing import openpgp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layout() -> Path:
    """The busybox image's OCI layout."""
    return nix_build("busyboxImage")


@pytest.fixture(scope="module")
def key_home(tmp_path_factory) -> Path:
    """nix2aci's dedicated key, made by scripts/prepare-signing-key (found through NIX2ACI_GNUPGHOME)."""
    home = tmp_path_factory.mktemp("k") / "gnupg"
    make_key(home)
    yield home
    stop_agent(home)


@pytest.fixture(scope="module")
def other_home(tmp_path_factory) -> Path:
    """Another key, which the consumer does not trust."""
    home = tmp_path_factory.mktemp("o") / "gnupg"
    make_key(home, "someone else")
    yield home
    stop_agent(home)


def fingerprint(home: Path) -> str:
    """The fingerprint of the one key of ``home``."""
    listing = gpg(home, "--with-colons", "--list-secret-keys").stdout
    (found,) = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    return found


class Site:
    """A registry with its lookaside in ``directory``: the publisher's registries.d (``publish``), the consumer
    files ``nix2aci policy`` wrote from the trusted key (``policy``, ``registries_d``)."""

    def __init__(self, registry, directory: Path, key_home: Path) -> None:
        self.registry = registry
        self.signatures = directory / "signatures"
        self.publish = directory / "publish.d"
        self.publish.mkdir()
        (self.publish / "site.yaml").write_text(
            f"docker:\n  {registry.host}:\n    lookaside: file://{self.signatures}\n"
        )
        consumer = directory / "consumer"
        lookaside = f"file://{self.signatures}"
        key = key_home / "pubkeys.gpg"
        nix2aci("policy", "--key", key, "--registry", registry.host, "--lookaside", lookaside, "--output", consumer)
        self.policy = consumer / "policy.json"
        self.registries_d = consumer / "registries.d"
        self.key = key

    def push(self, layout: Path, name: str, home: Path | None = None) -> None:
        """Push ``layout`` to ``HOST/NAME``, signed with the key of ``home`` when given."""
        sign = ["--sign", "--registries.d", self.publish] if home else []
        nix2aci("push", INSECURE, *sign, layout, f"docker://{self.registry.host}/{name}",
                env={"NIX2ACI_GNUPGHOME": str(home)} if home else None)  # fmt: skip

    def skopeo_copy(self, name: str, destination: Path):
        """``skopeo copy`` of ``HOST/NAME`` under the consumer's policy and registries.d."""
        return run(["skopeo", "--policy", str(self.policy), "--registries.d", str(self.registries_d), "copy",
                    INSECURE.replace("--", "--src-"), f"docker://{self.registry.host}/{name}", f"dir:{destination}"],
                   check=False)  # fmt: skip

    def verify(self, name: str):
        """``nix2aci verify`` of ``HOST/NAME`` with the trusted key and the consumer's registries.d."""
        return nix2aci("verify", INSECURE, "--keyring", self.key, "--registries.d", self.registries_d,
                       f"docker://{self.registry.host}/{name}", check=False)  # fmt: skip


@pytest.fixture
def site(registry, tmp_path, key_home) -> Site:
    return Site(registry, tmp_path, key_home)


def registry_digest(reference: str) -> str:
    """The digest of the manifest a registry serves for ``reference``."""
    raw = run(["skopeo", "inspect", INSECURE, "--raw", reference]).stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def podman_with(site: Site, podman: Podman) -> Podman:
    """``podman`` reading the consumer's registries.d (podman 4.3 reads ~/.config/containers/registries.d)."""
    shutil.copytree(site.registries_d, podman.home / ".config/containers/registries.d")
    return podman


def test_a_signed_push_is_accepted_by_skopeo_podman_and_nix2aci_verify(layout, site, key_home, podman_engine, tmp_path):
    site.push(layout, "signed:t", key_home)
    # The signature: where registries.d says, an attached OpenPGP message by the key, naming the digest and the tag.
    digest = index_entry(layout)["digest"]
    (signature,) = (site.signatures / f"signed@{digest.replace(':', '=')}").iterdir()
    assert signature.name == "signature-1"
    payload = run(["gpg", "--batch", "--homedir", str(key_home), "--decrypt", str(signature)]).stdout
    critical = json.loads(payload)["critical"]
    assert critical == {
        "type": "atomic container signature",
        "image": {"docker-manifest-digest": digest},
        "identity": {"docker-reference": f"{site.registry.host}/signed:t"},
    }
    accepted = site.skopeo_copy("signed:t", tmp_path / "copy")
    assert accepted.returncode == 0, accepted.stderr
    podman = podman_with(site, podman_engine)
    image = podman.pull(f"{site.registry.host}/signed:t", INSECURE, policy=site.policy)
    assert podman.run(image) == GREETING
    verified = site.verify("signed:t")
    assert verified.returncode == 0, verified.stderr
    expected = f"docker://{site.registry.host}/signed:t: {digest} good signature by {fingerprint(key_home)}\n"
    assert verified.stdout == expected


def test_an_unchanged_signed_push_copies_nothing_when_signed_and_signs_when_not(layout, site, key_home):
    """A signed image pushed again is there and signed: nothing is copied, no signature added, verify accepts it.
    An image there but unsigned is copied again with --sign (skopeo uploads nothing) and so signed."""
    digest = index_entry(layout)["digest"]
    signer = fingerprint(key_home)
    environment = {"NIX2ACI_GNUPGHOME": str(key_home)}
    for name in ("twice:t", "unsigned-first:t"):
        destination = f"docker://{site.registry.host}/{name}"
        sign = ["--sign", "--registries.d", site.publish] if name == "twice:t" else []
        nix2aci("push", INSECURE, *sign, layout, destination, env=environment)
        again = nix2aci(
            "push", INSECURE, "--sign", "--registries.d", site.publish, layout, destination, env=environment
        )
        unchanged = ", already there (nothing copied)" if name == "twice:t" else ""
        assert (
            again.stdout.splitlines()[0] == f"{layout}: pushed to {destination} {digest}, signed by {signer}{unchanged}"
        )
        signatures = site.signatures / f"{name.split(':')[0]}@{digest.replace(':', '=')}"
        assert [path.name for path in signatures.iterdir()] == ["signature-1"]
        verified = site.verify(name)
        assert verified.stdout == f"{destination}: {digest} good signature by {signer}\n", verified.stderr


@pytest.mark.parametrize(
    "case, refusal, verify_refusal",
    [
        ("unsigned", "A signature was required, but no signature exists", "has no signature"),
        ("another tag", "Signature for identity {host}/signed:t is not accepted", "not {host}/signed:other"),
        ("another key", "Invalid GPG signature", "which is not in the keyring"),
        ("another digest", "does not match", "it signs the manifest {signed}, not {pushed}"),
    ],
)  # fmt: skip
def test_consumers_refuse(case, refusal, verify_refusal, layout, site, key_home, other_home, podman_engine, tmp_path):
    name = {"unsigned": "plain:t", "another tag": "signed:other", "another key": "theirs:t"}.get(case, "signed:t")
    signed = pushed = index_entry(layout)["digest"]
    if case == "unsigned":
        site.push(layout, name)
    elif case == "another tag":  # the signed digest, pushed again under a tag the signature does not name
        site.push(layout, "signed:t", key_home)
        site.push(layout, name)
    elif case == "another key":
        site.push(layout, name, other_home)
    else:  # another image under the signed tag, the signature moved to its digest in the lookaside
        site.push(layout, name, key_home)
        (archive,) = nix_build("busyboxArchive").glob("*.tar")
        site.push(archive, name)
        pushed = registry_digest(f"docker://{site.registry.host}/{name}")
        directory = site.signatures / "signed@{}"
        (directory.parent / directory.name.format(signed.replace(":", "="))).rename(
            directory.parent / directory.name.format(pushed.replace(":", "="))
        )
    refusal, verify_refusal = (text.format(host=site.registry.host, signed=signed, pushed=pushed)
                               for text in (refusal, verify_refusal))  # fmt: skip
    host = site.registry.host
    refused = site.skopeo_copy(name, tmp_path / "copy")
    assert refused.returncode != 0
    assert refusal.lower() in refused.stderr.lower(), refused.stderr
    podman = podman_with(site, podman_engine)
    pulled = run(["podman", "--root", str(podman.root), "--runroot", str(podman.runroot), "--storage-driver", "vfs",
                  "pull", "--signature-policy", str(site.policy), INSECURE, f"{host}/{name}"],
                 check=False, env=podman.environment)  # fmt: skip
    assert pulled.returncode != 0
    assert refusal.lower() in pulled.stderr.lower(), pulled.stderr
    assert verify_refusal in one_line_error(site.verify(name))


def test_policy_writes_the_consumer_files_and_never_overwrites_them(key_home, tmp_path):
    key = key_home / "pubkeys.gpg"
    output = tmp_path / "consumer"
    arguments = ("policy", "--key", key, "--registry", "registry.example.com/team", "--output", output)
    written = nix2aci(*arguments, "--lookaside", "https://sigs.example.com/")
    policy, registries = output / "policy.json", output / "registries.d/nix2aci-registry.example.com_team.yaml"
    assert written.stdout.split() == [str(policy), str(registries)]
    assert json.loads(policy.read_text()) == {
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {
            "docker": {"registry.example.com/team": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key)}]}
        },
    }
    assert registries.read_text() == "docker:\n  registry.example.com/team:\n    lookaside: https://sigs.example.com/\n"
    # A second run refuses to replace them, and changes nothing; --force replaces them.
    policy.write_text("the user's own\n")
    error = one_line_error(nix2aci(*arguments, "--lookaside", "https://other.example.com/", check=False))
    assert error == f"nix2aci: error: {policy} exists: pass --force to replace it, or choose another --output"
    assert policy.read_text() == "the user's own\n"
    assert "https://sigs.example.com/" in registries.read_text()
    nix2aci(*arguments, "--lookaside", "https://other.example.com/", "--force")
    assert "https://other.example.com/" in registries.read_text()
    assert json.loads(policy.read_text())["transports"]["docker"]


@pytest.mark.parametrize(
    "change, error",
    [
        (("--registry", "Registry/x"), "--registry 'Registry/x': give HOST[:PORT][/REPO]"),
        (("--lookaside", "ftp://x/"), "--lookaside 'ftp://x/': give a file://, http:// or https:// URL"),
        (("--key", "SECRET"), "holds a SECRET key: give consumers the public key"),
        (("--key", "EMPTY"), "holds no OpenPGP public key"),
        (("--key", "/dev/null"), "--key /dev/null is a character device, not a regular file"),
    ],
)
def test_policy_refuses_bad_arguments_in_one_line(change, error, key_home, tmp_path):
    secret = tmp_path / "secret.asc"
    secret.write_text(gpg(key_home, "--armor", "--export-secret-keys").stdout)
    options = {"--key": str(key_home / "pubkeys.gpg"), "--registry": "registry.example.com", "--lookaside": "file:///s"}
    (tmp_path / "empty").write_text("")
    made = {"SECRET": str(secret), "EMPTY": str(tmp_path / "empty")}
    options[change[0]] = made.get(change[1], change[1])
    arguments = [item for pair in options.items() for item in pair]
    line = one_line_error(nix2aci("policy", *arguments, "--output", tmp_path / "out", check=False))
    assert error in line, line
    assert not (tmp_path / "out").exists()


def test_sign_without_a_lookaside_and_verify_of_a_missing_tag_are_one_line(layout, site, key_home, tmp_path):
    empty = tmp_path / "empty.d"
    empty.mkdir()
    destination = f"docker://{site.registry.host}/signed:t"
    pushed = nix2aci("push", INSECURE, "--sign", "--registries.d", empty, layout, destination, check=False,
                     env={"NIX2ACI_GNUPGHOME": str(key_home)})  # fmt: skip
    assert f"--sign: {empty} configures no lookaside for {site.registry.host}/signed" in one_line_error(pushed)
    assert not site.signatures.exists()
    assert "no such image or tag" in one_line_error(site.verify("signed:nosuchtag"))


def test_a_detached_signature_is_not_a_simple_signature(key_home):
    detached = subprocess.run(["gpg", "--homedir", str(key_home), "--batch", "--detach-sign"], input=b"{}",
                              capture_output=True, check=True).stdout  # fmt: skip
    with openpgp.public_keyring((key_home / "pubkeys.gpg").read_bytes()) as home, pytest.raises(Nix2AciError) as caught:
        openpgp.verify_attached(home, detached)
    assert str(caught.value) == "it is not a signed message holding its data (gpg --sign)"


def test_a_signature_whose_data_expands_past_the_limit_is_stopped_there(key_home, tmp_path):
    # 64 MiB of zeros compress to a few kilobytes: the data a signature may hold is bounded by what gpg
    # makes of it, not by the signature's size (a 4 MiB one could expand to terabytes).
    expanded = 64 << 20
    bomb = subprocess.run(["gpg", "--homedir", str(key_home), "--batch", "--compress-algo", "bzip2", "--sign"],
                          input=bytes(expanded), capture_output=True, check=True).stdout  # fmt: skip
    assert len(bomb) < openpgp.SIGNATURE_LIMIT < expanded
    with openpgp.public_keyring((key_home / "pubkeys.gpg").read_bytes()) as home, pytest.raises(Nix2AciError) as caught:
        openpgp.verify_attached(home, bomb)
    assert str(caught.value) == f"its data is over {openpgp.SIGNATURE_LIMIT} bytes: not the claim of a simple signature"
    small = subprocess.run(["gpg", "--homedir", str(key_home), "--batch", "--sign"], input=b'{"critical": {}}',
                           capture_output=True, check=True).stdout  # fmt: skip
    with openpgp.public_keyring((key_home / "pubkeys.gpg").read_bytes()) as home:
        signer, data = openpgp.verify_attached(home, small)
    assert (signer.fingerprint, data) == (fingerprint(key_home), b'{"critical": {}}')

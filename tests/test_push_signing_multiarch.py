"""Signing a multi-platform image (busyboxMultiArch: index.json names an image index) the containers way, checked by
the real consumer: `nix2aci push --sign` has skopeo (`--all --sign-by`) sign the index and each platform's image;
skopeo pulling one platform (`--override-arch`) checks that image's own signature, not the index's, so an index
whose platform image is unsigned is refused for that platform, `nix2aci verify` says so in one line, and a push
--sign again signs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build, run
from test_push import INSECURE, one_line_error
from test_push_signing import Site, fingerprint
from test_signing import make_key, stop_agent

pytestmark = pytest.mark.slow

NAME = "multi:t"


@pytest.fixture(scope="module")
def layout() -> Path:
    return nix_build("busyboxMultiArch")


@pytest.fixture(scope="module")
def signing_home(tmp_path_factory) -> Path:
    """nix2aci's dedicated key."""
    home = tmp_path_factory.mktemp("k") / "gnupg"
    make_key(home)
    yield home
    stop_agent(home)


def index_and_platforms(layout: Path) -> tuple[str, dict[str, str]]:
    """The digest of the image index ``layout``'s index.json names, and its images' digests by architecture."""
    (entry,) = [entry for entry in json.loads((layout / "index.json").read_text())["manifests"]
                if entry["mediaType"].endswith("image.index.v1+json")]  # fmt: skip
    index = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_text())
    return entry["digest"], {image["platform"]["architecture"]: image["digest"] for image in index["manifests"]}


def signature_directory(site: Site, digest: str) -> Path:
    return site.signatures / f"multi@{digest.replace(':', '=')}"


def pull(site: Site, destination: Path, *options: str):
    """``skopeo copy`` of HOST/multi:t to ``destination`` (dir:) under the consumer's policy, with ``options``."""
    return run(["skopeo", "--policy", str(site.policy), "--registries.d", str(site.registries_d), *options, "copy",
                "--src-tls-verify=false", f"docker://{site.registry.host}/{NAME}", f"dir:{destination}"],
               check=False)  # fmt: skip


def push(site: Site, layout: Path, home: Path) -> str:
    """``nix2aci push --sign`` of ``layout`` to HOST/multi:t with the key of ``home``; its output."""
    return nix2aci("push", INSECURE, "--sign", "--registries.d", site.publish, layout,
                   f"docker://{site.registry.host}/{NAME}", env={"NIX2ACI_GNUPGHOME": str(home)}).stdout  # fmt: skip


def test_a_signed_index_signs_each_platform_and_a_one_platform_pull_checks_its_own(
    layout, registry, tmp_path, signing_home
):
    site = Site(registry, tmp_path, signing_home)
    index, platforms = index_and_platforms(layout)
    assert set(platforms) == {"amd64", "arm64"}
    push(site, layout, signing_home)
    # One signature for the index and one for each platform's image, each naming its digest and the tag pushed.
    for digest in (index, *platforms.values()):
        signature = signature_directory(site, digest) / "signature-1"
        payload = run(["gpg", "--batch", "--homedir", str(signing_home), "--decrypt", str(signature)]).stdout
        assert json.loads(payload)["critical"]["image"] == {"docker-manifest-digest": digest}
        assert json.loads(payload)["critical"]["identity"] == {"docker-reference": f"{registry.host}/{NAME}"}
    signer = fingerprint(signing_home)
    reference = f"docker://{registry.host}/{NAME}"
    verified = site.verify(NAME)
    assert verified.stdout.splitlines() == [
        f"{reference}: {index} good signature by {signer}",
        f"{reference} linux/amd64: {platforms['amd64']} good signature by {signer}",
        f"{reference} linux/arm64: {platforms['arm64']} good signature by {signer}",
    ], verified.stderr
    for architecture, digest in platforms.items():
        copied = pull(site, tmp_path / architecture, "--override-arch", architecture)
        assert copied.returncode == 0, copied.stderr
        assert run(["sha256sum", str(tmp_path / architecture / "manifest.json")]).stdout.split()[0] == digest[7:]

    # The arm64 image's signature gone, the index's still there: the arm64 consumer refuses, the amd64 one accepts.
    shutil.rmtree(signature_directory(site, platforms["arm64"]))
    refused = pull(site, tmp_path / "refused", "--override-arch", "arm64")
    assert refused.returncode != 0
    assert "A signature was required, but no signature exists" in refused.stderr, refused.stderr
    assert pull(site, tmp_path / "amd64-again", "--override-arch", "amd64").returncode == 0
    assert one_line_error(site.verify(NAME)) == (
        f"nix2aci: error: the linux/arm64 image of the index: {registry.host}/{NAME} ({platforms['arm64']}) has no"
        " signature (a consumer pulling that platform checks its own signature)"
    )
    # Pushed again with --sign, the index is not "already there and signed": it is signed again, arm64 included.
    assert "already there" not in push(site, layout, signing_home)
    assert (signature_directory(site, platforms["arm64"]) / "signature-1").is_file()
    accepted = pull(site, tmp_path / "accepted", "--override-arch", "arm64")
    assert accepted.returncode == 0, accepted.stderr
    assert site.verify(NAME).returncode == 0

"""End to end: ``postprocess.sh --push DEST`` of an OCI image to a real registry (tests/engines.py), with push's
own options passed through (``--tls-verify``, ``--registries.d``, ``--authfile``), signed with the dedicated key
as ``nix2aci push --sign`` signs (the key and lookaside of tests/test_push_signing.py), unsigned when the image
was built with ``sign = false``.

postprocess.sh runs as a user runs it (tests/test_signing.postprocess: another directory, a bare environment),
so the nix2aci it runs is the command line the image was built with.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from conftest import nix_build
from engines import docker_registry
from test_oci_postprocess import IMAGE, built, gc_roots, image_label
from test_push import HTPASSWD, INSECURE, PASSWORD, USER, index_entry, one_line_error
from test_push_signing import Site, fingerprint, key_home, registry_digest  # noqa: F401 (key_home: a fixture)
from test_signing import postprocess, remove_test_gc_roots  # noqa: F401 (a fixture, used by name)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layout() -> Path:
    return nix_build("busyboxImage")


@pytest.fixture
def site(registry, tmp_path, key_home) -> Site:  # noqa: F811 (key_home: the fixture imported above)
    """The registry, the publisher's registries.d (``site.publish``: a file:// lookaside) and the consumer's."""
    return Site(registry, tmp_path, key_home)


def repositories(site: Site) -> list[str]:
    """The repositories the registry's own storage holds (none until something is pushed)."""
    root = site.registry.storage / "docker/registry/v2/repositories"
    return sorted(path.name for path in root.iterdir()) if root.exists() else []


def signatures(site: Site) -> list[Path]:
    """Every signature file in the lookaside."""
    return sorted(site.signatures.rglob("signature-*")) if site.signatures.exists() else []


def push_options(site: Site, name: str) -> list[str]:
    """``--push docker://HOST/NAME`` with the options the fixture's registry and lookaside need."""
    return ["--push", f"docker://{site.registry.host}/{name}", INSECURE, "--registries.d", str(site.publish)]


def pushed_line(result) -> str:
    """The line push printed of the image pushed (a line for each referrer, its SBOM, follows)."""
    (line,) = [line for line in result.stdout.splitlines() if ": pushed to " in line]
    return line


def test_push_links_as_a_gc_root_pushes_the_built_manifest_and_signs_it(layout, site, key_home, tmp_path):  # noqa: F811
    work = tmp_path / "work"
    mine = work / "images" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my notes\n")
    label = image_label("busyboxImage")
    digest = index_entry(layout)["digest"]

    result = postprocess(layout, work, key_home, *push_options(site, "pp:t"))

    link = work / "images" / label
    assert os.readlink(link) == str(layout)
    assert f"{link} -> {layout}" in gc_roots().splitlines()
    assert mine.read_bytes() == b"my notes\n"
    host = site.registry.host
    signer = fingerprint(key_home)
    assert pushed_line(result) == f"images/{label}: pushed to docker://{host}/pp:t {digest}, signed by {signer}"
    assert registry_digest(f"docker://{host}/pp:t") == digest
    assert repositories(site) == ["pp"]  # what the refusals below check is empty
    assert signatures(site) == [site.signatures / f"pp@{digest.replace(':', '=')}" / "signature-1"]
    verified = site.verify("pp:t")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == f"docker://{host}/pp:t: {digest} good signature by {signer}\n"


def test_an_image_built_with_sign_false_pushes_unsigned_and_takes_no_sign(site, key_home, tmp_path):  # noqa: F811
    """``sign = false`` is the build's word: the script pushes without signing, and has no ``--sign`` to
    override it (``nix2aci push --sign`` does that)."""
    image = built(IMAGE % "sign = false;")
    work = tmp_path / "work"
    refused = postprocess(image, work, key_home, *push_options(site, "unsigned:t"), "--sign", check=False)
    assert one_line_error(refused) == "nix2aci: error: unrecognized arguments: --sign (see nix2aci --help)"
    assert repositories(site) == [] and not (work / "images").exists()

    result = postprocess(image, work, key_home, *push_options(site, "unsigned:t"))
    digest = index_entry(image)["digest"]
    host = site.registry.host
    assert pushed_line(result).endswith(f": pushed to docker://{host}/unsigned:t {digest}")
    assert registry_digest(f"docker://{host}/unsigned:t") == digest
    assert signatures(site) == []
    assert "has no signature" in one_line_error(site.verify("unsigned:t"))


def test_the_docker_archive_result_pushes_and_signs_too(site, key_home, tmp_path):  # noqa: F811
    archive = nix_build("busyboxArchive")
    (tarball,) = archive.glob("*.tar")
    work = tmp_path / "work"
    result = postprocess(archive, work, key_home, *push_options(site, "archive:t"))
    assert os.readlink(work / "images" / tarball.name) == str(tarball)
    host = site.registry.host
    digest = registry_digest(f"docker://{host}/archive:t")
    assert pushed_line(result) == (
        f"images/{tarball.name}: pushed to docker://{host}/archive:t {digest}, signed by {fingerprint(key_home)}"
    )
    assert signatures(site) == [site.signatures / f"archive@{digest.replace(':', '=')}" / "signature-1"]
    assert site.verify("archive:t").returncode == 0


def test_the_authfile_given_is_the_one_used(key_home, tmp_path):  # noqa: F811
    """A registry asking for a login: a wrong --authfile is refused in one line, the right one pushes."""
    image = built(IMAGE % "sign = false;")
    work = tmp_path / "work"
    with docker_registry(tmp_path / "registry", htpasswd=HTPASSWD) as registry:
        destination = f"docker://{registry.host}/login:t"
        for name, password in (("wrong", "not-it"), ("right", PASSWORD)):
            token = base64.b64encode(f"{USER}:{password}".encode()).decode()
            (tmp_path / f"{name}.json").write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
        login = ("--push", destination, INSECURE, "--authfile")
        refused = postprocess(image, work, key_home, *login, tmp_path / "wrong.json", check=False)
        assert one_line_error(refused).startswith(f"nix2aci: error: the registry {registry.host} refused the login")
        pushed = postprocess(image, work, key_home, *login, tmp_path / "right.json")
        # push read the registry's manifest with that login, and checked it is the one built.
        label = image_label("busyboxImage")
        digest = index_entry(image)["digest"]
        assert pushed_line(pushed) == f"images/{label}: pushed to {destination} {digest}"


@pytest.mark.parametrize(
    "case, arguments, message, linked",
    [
        ("tls", ["--tls-verify=maybe"], "nix2aci postprocess: error: argument --tls-verify: --tls-verify takes true "
         "or false, not 'maybe' (see nix2aci postprocess --help)", False),
        ("authfile", ["--authfile", "{work}/missing.json"], "nix2aci: error: --authfile {work}/missing.json is not "
         "a file", False),
        ("registries.d", ["--registries.d", "{work}/missing.d"], "nix2aci: error: --registries.d {work}/missing.d is "
         "not a directory", False),
        ("dest", ["--push", "registry.example.com/x:t"], "nix2aci: error: --push 'registry.example.com/x:t': no "
         "transport; allowed: ", False),
        ("without --push", ["--tls-verify=false"], "nix2aci: error: --registries.d, --authfile and --tls-verify say "
         "how to push: give them with --push DEST", False),
        ("no lookaside", ["--registries.d", "{work}/empty.d"], "nix2aci: error: --sign: {work}/empty.d configures no "
         "lookaside for {host}/bad", True),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_and_push_nothing(case, arguments, message, linked, layout, site, key_home, tmp_path):  # noqa: F811
    work = tmp_path / "work"
    (work / "empty.d").mkdir(parents=True)
    canary = work / "images" / "canary"
    canary.parent.mkdir()
    canary.write_bytes(b"canary\n")
    # The good options first (but without --push): the bad one, given after, overrides its good twin.
    good = [] if case == "without --push" else push_options(site, "bad:t")
    given = [word.format(work=work) for word in [*good, *arguments]]
    refused = postprocess(layout, work, key_home, *given, check=False)
    assert one_line_error(refused).startswith(message.format(work=work, host=site.registry.host)), refused.stderr
    assert refused.returncode == (1 if linked else 2)
    assert repositories(site) == [] and signatures(site) == []
    label = image_label("busyboxImage")
    assert sorted(path.name for path in canary.parent.iterdir()) == sorted(["canary", *([label] if linked else [])])
    assert canary.read_bytes() == b"canary\n"

"""An image's SBOM pushed with it (``nix2aci push``) and read back (``nix2aci sbom docker://``), on a real registry.

The registry is Debian's distribution 2.8 (tests/engines.py), which has no referrers API: the SBOM artifact is
listed by the tag-schema fallback, ``sha256-<hex of the image's digest>``. What the registry holds is read with
skopeo and with plain HTTP requests of the tests' own (not nix2aci's client). A referrer of someone else's is made
the same way. Hostile documents the registry would refuse to store are written into its storage directory as
distribution 2.8 keeps it (``blobs/sha256/XX/HEX/data``, a repository's ``_manifests/revisions`` and ``tags``
links): the registry then serves them as any stored manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build, run
from engines import docker_registry
from test_multiarch import aarch64_emulator  # noqa: F401 (a fixture)
from test_push import HTPASSWD, INSECURE, PASSWORD, USER, one_line_error, push, skopeo_inspect

pytestmark = pytest.mark.slow

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SPDX = "application/spdx+json"
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture(scope="module")
def layout() -> Path:
    return nix_build("busyboxImage")


@pytest.fixture(scope="module")
def multiarch() -> Path:
    return nix_build("busyboxMultiArch")


def entries(layout: Path) -> tuple[dict, list[dict]]:
    """``layout``'s index.json: its image's entry, and its artifacts' entries."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    (image,) = [entry for entry in manifests if "artifactType" not in entry]
    return image, [entry for entry in manifests if "artifactType" in entry]


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes()


def sbom_of(layout: Path, artifact: dict) -> bytes:
    """The SBOM bytes the artifact ``artifact`` of ``layout`` holds."""
    (layer,) = json.loads(blob(layout, artifact["digest"]))["layers"]
    return blob(layout, layer["digest"])


def fallback(host: str, repository: str, digest: str) -> dict:
    """The image index the referrers fallback tag of ``digest`` holds, as skopeo reads it."""
    return json.loads(skopeo_inspect(f"docker://{host}/{repository}:{digest.replace(':', '-')}", "--raw"))


def http(host: str, method: str, path: str, data: bytes | None = None, content_type: str | None = None):
    """One plain HTTP request to the registry; its response (read)."""
    request = urllib.request.Request(f"http://{host}{path}", data=data, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers, response.read()


def upload(host: str, repository: str, data: bytes) -> dict:
    """Upload the blob ``data``; its digest and size."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = http(host, "POST", f"/v2/{repository}/blobs/uploads/", b"")
    location = headers["Location"].removeprefix(f"http://{host}")
    http(host, "PUT", f"{location}&digest={digest}", data, "application/octet-stream")
    return {"digest": digest, "size": len(data)}


def put_manifest(host: str, repository: str, document: dict, media_type: str, tag: str | None = None) -> dict:
    """Store ``document`` as a manifest (by ``tag``, or by its digest); its descriptor."""
    data = json.dumps(document).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    http(host, "PUT", f"/v2/{repository}/manifests/{tag or digest}", data, media_type)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def foreign_referrer(host: str, repository: str, subject: dict, artifact_type: str, payload: bytes) -> dict:
    """Someone else's artifact about ``subject`` (a descriptor), stored by digest; its descriptor."""
    empty = {"mediaType": "application/vnd.oci.empty.v1+json", **upload(host, repository, b"{}")}
    layer = {"mediaType": artifact_type, **upload(host, repository, payload)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [layer],
        "subject": {key: subject[key] for key in ("mediaType", "digest", "size")},
    }
    return {**put_manifest(host, repository, manifest, MANIFEST), "artifactType": artifact_type}


def store_raw_manifest(storage: Path, repository: str, tag: str, data: bytes) -> None:
    """Make the registry's storage hold ``data`` as the manifest tagged ``tag`` (distribution 2.8's layout)."""
    encoded = hashlib.sha256(data).hexdigest()
    root = storage / "docker/registry/v2"
    (root / "blobs/sha256" / encoded[:2] / encoded).mkdir(parents=True, exist_ok=True)
    (root / "blobs/sha256" / encoded[:2] / encoded / "data").write_bytes(data)
    manifests = root / "repositories" / repository / "_manifests"
    for link in ("revisions/sha256/{e}/link", "tags/{t}/current/link", "tags/{t}/index/sha256/{e}/link"):
        path = manifests / link.format(e=encoded, t=tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"sha256:{encoded}")


def sbom_command(reference: str, *options: str, check: bool = True):
    return nix2aci("sbom", INSECURE, *options, reference, check=check)


def test_the_sbom_follows_the_image_by_the_fallback_tag_and_sbom_reads_it_back(layout, registry):
    image, (artifact,) = entries(layout)
    result = push(layout, f"docker://{registry.host}/nix2aci/busybox")
    tag = image["annotations"][REF_NAME]
    fallback_tag = f"docker://{registry.host}/nix2aci/busybox:{image['digest'].replace(':', '-')}"
    assert result.stdout.splitlines()[1:] == [
        f"{layout}: referrer {artifact['digest']} of {image['digest']}, listed by {fallback_tag}"
    ]
    # The fallback tag holds an index listing the artifact, as the layout lists it.
    assert fallback(registry.host, "nix2aci/busybox", image["digest"]) == {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [artifact],
    }
    # The artifact's manifest, byte for byte, and the SBOM blob over plain HTTP.
    raw = skopeo_inspect(f"docker://{registry.host}/nix2aci/busybox@{artifact['digest']}", "--raw")
    assert raw.encode() == blob(layout, artifact["digest"])
    (layer,) = json.loads(raw)["layers"]
    _, _, served = http(registry.host, "GET", f"/v2/nix2aci/busybox/blobs/{layer['digest']}")
    assert served == sbom_of(layout, artifact)
    printed = sbom_command(f"docker://{registry.host}/nix2aci/busybox:{tag}").stdout
    assert printed.encode() == sbom_of(layout, artifact) == nix2aci("sbom", layout).stdout.encode()
    # Pushed again: the same one entry, not two.
    push(layout, f"docker://{registry.host}/nix2aci/busybox")
    assert fallback(registry.host, "nix2aci/busybox", image["digest"])["manifests"] == [artifact]


def test_a_referrer_of_someone_elses_is_kept_and_sbom_picks_the_spdx_one(layout, registry, tmp_path):
    image, (artifact,) = entries(layout)
    tag = image["annotations"][REF_NAME]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    # skopeo copies the image alone, without its SBOM.
    destination = f"docker://{registry.host}/busybox:{tag}"
    run(
        [
            "skopeo",
            "--policy",
            policy,
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            destination,
        ]
    )
    missing = one_line_error(sbom_command(f"docker://{registry.host}/busybox:{tag}", check=False))
    assert missing == (
        f"nix2aci: error: docker://{registry.host}/busybox:{tag}: no SBOM: nothing of artifactType {SPDX} refers to "
        f"{image['digest']} (neither the referrers API nor the tag {image['digest'].replace(':', '-')} lists one)"
    )
    signature = foreign_referrer(registry.host, "busybox", image, "application/vnd.example.signature", b"signed")
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [signature]}
    put_manifest(registry.host, "busybox", index, INDEX, tag=image["digest"].replace(":", "-"))
    push(layout, f"docker://{registry.host}/busybox")
    assert fallback(registry.host, "busybox", image["digest"])["manifests"] == [signature, artifact]
    printed = sbom_command(f"docker://{registry.host}/busybox:{tag}").stdout
    assert printed.encode() == sbom_of(layout, artifact)


def test_an_index_is_pushed_whole_with_each_platforms_sbom(multiarch, registry, podman_engine, aarch64_emulator):  # noqa: F811
    top, artifacts = entries(multiarch)
    tag = top["annotations"][REF_NAME]
    reference = f"{registry.host}/nix2aci/multi:{tag}"
    result = push(multiarch, f"docker://{registry.host}/nix2aci/multi")
    assert result.stdout.splitlines()[0] == f"{multiarch}: pushed to docker://{reference} {top['digest']}"
    raw = skopeo_inspect(f"docker://{reference}", "--raw")
    assert raw.encode() == blob(multiarch, top["digest"])
    images = json.loads(raw)["manifests"]
    assert [(entry["platform"]["os"], entry["platform"]["architecture"]) for entry in images] == [
        ("linux", "amd64"),
        ("linux", "arm64"),
    ]
    inspected = json.loads(
        skopeo_inspect(f"docker://{reference}", "--override-arch", "arm64", "--override-os", "linux")
    )
    assert inspected["Architecture"] == "arm64"
    # Each platform's SBOM: listed by its image's fallback tag, and printed for --platform.
    about = {json.loads(blob(multiarch, artifact["digest"]))["subject"]["digest"]: artifact for artifact in artifacts}
    assert set(about) == {entry["digest"] for entry in images}
    for entry in images:
        artifact = about[entry["digest"]]
        assert fallback(registry.host, "nix2aci/multi", entry["digest"])["manifests"] == [artifact]
        platform = f"linux/{entry['platform']['architecture']}"
        printed = sbom_command(f"docker://{reference}", "--platform", platform).stdout
        assert printed.encode() == sbom_of(multiarch, artifact)
    # The SBOMs differ: each names its own busybox.
    assert len({sbom_of(multiarch, artifact) for artifact in artifacts}) == 2
    pulled = podman_engine.pull(f"docker://{reference}", INSECURE, "--arch", "arm64")
    assert json.loads(podman_engine("image", "inspect", pulled))[0]["Architecture"] == "arm64"
    assert podman_engine.run(pulled, "busybox", "uname", "-m") == "aarch64\n"


def test_the_index_layout_carries_each_images_sbom_and_validate_checks_its_subject(multiarch, tmp_path):
    _, artifacts = entries(multiarch)
    assert len(artifacts) == 2
    assert nix2aci("validate", multiarch).stdout.strip() == f"{multiarch}: valid oci-layout"
    # An artifact about a manifest the index does not list is a problem.
    copy = tmp_path / "layout"
    shutil.copytree(multiarch, copy, symlinks=True)
    for path in (copy, copy / "blobs", copy / "blobs/sha256", copy / "index.json"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    manifest = json.loads(blob(multiarch, artifacts[1]["digest"]))
    manifest["subject"]["digest"] = "sha256:" + "0" * 64
    data = json.dumps(manifest).encode()
    (copy / "blobs/sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    index = json.loads((copy / "index.json").read_text())
    index["manifests"][2].update(digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data))
    (copy / "index.json").write_text(json.dumps(index))
    found = nix2aci("validate", copy, check=False)
    assert found.returncode == 1
    assert "index.json.manifests[2] subject: must be the descriptor of an image manifest" in found.stdout


def test_a_login_is_read_from_the_auth_file_as_skopeo_reads_it(layout, tmp_path):
    image, (artifact,) = entries(layout)
    tag = image["annotations"][REF_NAME]
    with docker_registry(tmp_path / "registry", htpasswd=HTPASSWD) as registry:
        authfile = tmp_path / "auth.json"
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authfile.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
        push(layout, f"docker://{registry.host}/busybox", "--authfile", authfile)
        printed = sbom_command(f"docker://{registry.host}/busybox:{tag}", "--authfile", authfile).stdout
        assert printed.encode() == sbom_of(layout, artifact)
        anonymous = nix2aci(
            "sbom",
            INSECURE,
            f"docker://{registry.host}/busybox:{tag}",
            check=False,
            env={"REGISTRY_AUTH_FILE": str(tmp_path / "none.json")},
        )
        assert one_line_error(anonymous) == (
            f"nix2aci: error: the registry {registry.host} refused the login for GET /v2/busybox/manifests/{tag} "
            "(401 unauthorized): give credentials with --authfile FILE (or REGISTRY_AUTH_FILE; podman login / "
            "skopeo login write it)"
        )


# --- Hostile registries and layouts: one line each ------------------------------------------------------------------


def test_a_fallback_tag_of_garbage_or_too_big_or_no_index_is_one_line_and_kept(layout, registry):
    image, _ = entries(layout)
    tag = image["annotations"][REF_NAME]
    fallback_tag = image["digest"].replace(":", "-")
    reference = f"docker://{registry.host}/busybox:{tag}"
    # Each stored document, the error nix2aci push and nix2aci sbom give.
    too_big = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": "sha256:" + "1" * 64, "size": 1, "artifactType": SPDX}] * 40000,
    }
    # distribution 2.8 answers 500 for a manifest it cannot parse, or over its own 4 MiB limit: one line still.
    refused = f"{registry.host}/busybox: GET the manifest {fallback_tag}: HTTP 500: UNKNOWN unknown error"
    no_index = (
        f"docker://{registry.host}/busybox:{fallback_tag} (the referrers fallback tag) holds a {MANIFEST}, "
        "not an image index"
    )
    hostile = {
        b"\x00garbage{{": refused,
        json.dumps(too_big).encode(): refused,
        blob(layout, image["digest"]): no_index,
    }
    push(layout, reference)
    for document, message in hostile.items():
        store_raw_manifest(registry.storage, "busybox", fallback_tag, document)
        for result in (push(layout, reference, check=False), sbom_command(reference, check=False)):
            assert one_line_error(result) == f"nix2aci: error: {message}"
        # Left as it was: nix2aci replaces no document it cannot read.
        stored = registry.storage / "docker/registry/v2/repositories/busybox/_manifests/tags" / fallback_tag
        digest = hashlib.sha256(document).hexdigest()
        assert (stored / "current/link").read_text() == f"sha256:{digest}"


def test_a_listed_sbom_about_another_image_is_one_line(layout, registry):
    image, (artifact,) = entries(layout)
    tag = image["annotations"][REF_NAME]
    push(layout, f"docker://{registry.host}/busybox")
    # An SPDX referrer whose subject is another manifest (the artifact itself), listed under the image's tag.
    elsewhere = {"mediaType": MANIFEST, "digest": artifact["digest"], "size": artifact["size"]}
    liar = foreign_referrer(registry.host, "busybox", elsewhere, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [liar]}
    put_manifest(registry.host, "busybox", index, INDEX, tag=image["digest"].replace(":", "-"))
    error = one_line_error(sbom_command(f"docker://{registry.host}/busybox:{tag}", check=False))
    assert error == (
        f"nix2aci: error: docker://{registry.host}/busybox:{tag}: the referrer {liar['digest']} is about "
        f"{artifact['digest']!r}, not the image {image['digest']}"
    )
    # Two SBOMs listed: which one is meant cannot be told.
    index["manifests"].append(artifact)
    put_manifest(registry.host, "busybox", index, INDEX, tag=image["digest"].replace(":", "-"))
    error = one_line_error(sbom_command(f"docker://{registry.host}/busybox:{tag}", check=False))
    assert f"2 SBOMs refer to {image['digest']} ({liar['digest']}, {artifact['digest']})" in error
    # An SBOM over 64 MiB is not read to its end.
    payload = b" " * ((64 << 20) + 1)
    index["manifests"] = [foreign_referrer(registry.host, "busybox", image, SPDX, payload)]
    put_manifest(registry.host, "busybox", index, INDEX, tag=image["digest"].replace(":", "-"))
    error = one_line_error(sbom_command(f"docker://{registry.host}/busybox:{tag}", check=False))
    layer = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert error == f"nix2aci: error: {registry.host}/busybox: the blob {layer} is larger than {64 << 20} bytes"


def test_a_layout_whose_artifact_is_about_another_image_is_refused_before_the_push(layout, registry, tmp_path):
    image, (artifact,) = entries(layout)
    copy = tmp_path / "layout"
    shutil.copytree(layout, copy, symlinks=True)
    for path in (copy, copy / "blobs", copy / "blobs/sha256", copy / "index.json"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    manifest = json.loads(blob(layout, artifact["digest"]))
    manifest["subject"]["digest"] = "sha256:" + "0" * 64
    data = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (copy / "blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    (copy / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [image, {**artifact, "digest": digest, "size": len(data)}]})
    )
    error = one_line_error(push(copy, f"docker://{registry.host}/busybox", check=False))
    # The layout's own check says it, before skopeo reads the layout.
    assert error == (
        f"nix2aci: error: IMAGE {copy} is not a valid OCI image layout: index.json.manifests[1] subject: must be the "
        "descriptor of an image manifest that index.json names, or an image index it names"
    )
    # Nothing was sent: the registry has no such repository.
    assert not (registry.storage / "docker/registry/v2/repositories/busybox").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["docker://127.0.0.1:5000/busybox"], "IMAGE docker://127.0.0.1:5000/busybox: a registry image is"),
        (["--platform", "linux", "docker://127.0.0.1:5000/b:t"], "--platform 'linux': give OS/ARCH[/VARIANT]"),
        (["docker://127.0.0.1:5000/B:t"], "IMAGE 'docker://127.0.0.1:5000/B:t': 'B' is not a repository"),
    ],
)
def test_a_bad_registry_reference_is_one_line(arguments, message):
    result = nix2aci("sbom", *arguments, check=False)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"nix2aci: error: {message}")


def test_an_sbom_changed_in_the_registrys_storage_is_refused(layout, registry):
    image, (artifact,) = entries(layout)
    tag = image["annotations"][REF_NAME]
    push(layout, f"docker://{registry.host}/busybox")
    (layer,) = json.loads(blob(layout, artifact["digest"]))["layers"]
    encoded = layer["digest"].removeprefix("sha256:")
    data = registry.storage / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"
    data.write_bytes(data.read_bytes().replace(b"busybox", b"bosybux"))
    error = one_line_error(sbom_command(f"docker://{registry.host}/busybox:{tag}", check=False))
    reference = f"docker://{registry.host}/busybox:{tag}"
    assert error == f"nix2aci: error: {reference}: the registry served another SBOM than {layer['digest']}"

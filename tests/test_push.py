"""``nix2aci push``: an image result to a real registry (Debian's distribution 2.8, tests/engines.py), to Docker
Engine and to podman's storage; pulled, run and inspected by the real tools.

What a push uploads is read from the registry itself: the blob uploads its access log shows, each blob's size
from its storage. The application that changes is a store path holding a fresh nonce
(``test_oci_layers.app_image``), so that no earlier run built it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import pty
import secrets
import shutil
import struct
import subprocess
import tarfile
import termios
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    image_entry,
    nix2aci,
    nix2aci_command,
    nix2aci_environment,
    nix_build,
    nix_build_expression,
    run,
)
from engines import docker_registry, free_port, registry_answers
from test_oci_layers import app_image

pytestmark = pytest.mark.slow

INSECURE = "--tls-verify=false"
GREETING = "Hello from busybox\n"  # busyboxImage's Cmd
# The registry's login for the refused-login test, and its bcrypt hash for the htpasswd file. The registry
# takes bcrypt only; Debian has no htpasswd program here, so the hash is written once:
# python3 -c 'import crypt; print(crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))'
USER, PASSWORD = "pusher", "s3cret"
HTPASSWD = f"{USER}:$2b$10$.mBLde41fREixDj93PtNYOHS0chNu3KB68OQByiw97hV2FZnGAUgy\n"


@pytest.fixture(scope="module")
def layout() -> Path:
    """The busybox image's OCI layout."""
    return nix_build("busyboxImage")


def index_entry(layout: Path) -> dict:
    """The one image entry of ``layout``'s index.json (its SBOM's aside)."""
    return image_entry(layout)


def documents(layout: Path) -> tuple[dict, dict]:
    """The manifest and the config of the one image of ``layout``."""
    read = lambda digest: json.loads((layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_text())  # noqa: E731
    manifest = read(index_entry(layout)["digest"])
    return manifest, read(manifest["config"]["digest"])


def blobs(layout: Path) -> set[str]:
    """The digests of the one image's config and layers in ``layout``."""
    manifest, _ = documents(layout)
    return {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}


def layers_holding(layout: Path, store_path_name: str) -> set[str]:
    """The digests of the layers of ``layout`` whose history names a store path called ``store_path_name``."""
    manifest, config = documents(layout)
    return {
        layer["digest"]
        for layer, history in zip(manifest["layers"], config["history"], strict=True)
        if f"-{store_path_name} " in history.get("comment", "") + " "
    }


def skopeo_inspect(reference: str, *options: str) -> str:
    """``skopeo inspect --tls-verify=false [OPTIONS] REFERENCE``'s output."""
    return run(["skopeo", "inspect", INSECURE, *options, reference]).stdout


def push(image: Path, destination: str, *options: str, check: bool = True, env: dict | None = None):
    """``nix2aci push --tls-verify=false OPTIONS IMAGE DEST``."""
    return nix2aci("push", INSECURE, *options, image, destination, check=check, env=env)


def sbom_artifact(layout: Path) -> tuple[str, set[str]]:
    """The digest of the SBOM artifact's manifest in ``layout``, and of its blobs (the empty config, the SBOM)."""
    (entry,) = [
        entry for entry in json.loads((layout / "index.json").read_text())["manifests"] if "artifactType" in entry
    ]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].removeprefix("sha256:")).read_text())
    return entry["digest"], {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}


def measured_push(registry, image: Path, repository: str, tag: str) -> list[str]:
    """Push ``image`` to ``REPOSITORY:TAG`` of ``registry``; the digests of the blobs the registry received: the
    image's, then its SBOM artifact's, whose manifest is sent after them."""
    since = registry.log_position()
    push(image, f"docker://{registry.host}/{repository}:{tag}")
    return registry.uploads(since, f"{repository}/manifests/{sbom_artifact(image)[0]}")


def test_a_pushed_image_has_the_digest_built_and_podman_and_docker_pull_and_run_it(
    layout, registry, podman_engine, dockerd
):
    tag = index_entry(layout)["annotations"]["org.opencontainers.image.ref.name"]
    result = push(layout, f"docker://{registry.host}/nix2aci/busybox")  # the tag is the image's
    reference = f"{registry.host}/nix2aci/busybox:{tag}"
    built = index_entry(layout)["digest"]
    assert result.stdout.splitlines()[0] == f"{layout}: pushed to docker://{reference} {built}"
    # The registry serves the very manifest that was built: same bytes, same digest (nothing recompressed).
    raw = skopeo_inspect(f"docker://{reference}", "--raw")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == built
    inspected = json.loads(skopeo_inspect(f"docker://{reference}"))
    assert inspected["Digest"] == built
    assert set(inspected["Layers"]) | {json.loads(raw)["config"]["digest"]} == blobs(layout)
    image = podman_engine.pull(reference, INSECURE)
    assert podman_engine.run(image) == GREETING
    dockerd("pull", reference)
    assert dockerd.run(reference) == GREETING


def test_progress_shows_on_a_terminal_only(layout, registry):
    """Without a terminal, the push prints its one line (asserted above); on one, skopeo's progress too."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # room for the bars
    with os.fdopen(primary, "rb", buffering=0) as terminal:
        process = subprocess.Popen(
            nix2aci_command("push", INSECURE, layout, f"docker://{registry.host}/busybox:t"),
            stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, env=nix2aci_environment(),
        )  # fmt: skip
        os.close(secondary)
        shown = b""
        with contextlib.suppress(OSError):  # EIO: the terminal's last writer is gone
            while chunk := terminal.read(4096):
                shown += chunk
        assert process.wait(PATIENCE) == 0, process.stderr.read()
        process.stderr.close()
    assert b"Copying blob" in shown
    assert f"pushed to docker://{registry.host}/busybox:t".encode() in shown


def test_an_unchanged_image_uploads_nothing_and_a_changed_app_only_its_layers(registry, capsys):
    first = Path(nix_build_expression(app_image(secrets.token_hex(8))).stdout.split()[-1])
    changed = Path(nix_build_expression(app_image(secrets.token_hex(8))).stdout.split()[-1])
    uploaded = measured_push(registry, first, "app", "t")
    assert sorted(uploaded) == sorted(blobs(first) | sbom_artifact(first)[1])
    again = measured_push(registry, first, "app", "t")
    assert again == []
    after_change = measured_push(registry, changed, "app", "t")
    # What differs, and nothing else: the layer that holds the app, and the config (the last layer, whose profile
    # does not link the app's share/, is the same); and the SBOM, which names the new app (its empty config is there).
    manifest, _ = documents(changed)
    assert sorted(after_change) == sorted(
        (blobs(changed) | sbom_artifact(changed)[1]) - blobs(first) - sbom_artifact(first)[1]
    )
    assert set(after_change) - sbom_artifact(changed)[1] == {
        manifest["config"]["digest"],
        *layers_holding(changed, "app"),
    }
    assert len(layers_holding(changed, "app")) == 1
    sizes = [sum(registry.blob_size(digest) for digest in pushed) for pushed in (uploaded, again, after_change)]
    with capsys.disabled():
        print(f"\nbytes uploaded: first push {sizes[0]}, unchanged {sizes[1]}, after the app changed {sizes[2]}")


def test_push_to_docker_daemon_and_containers_storage(layout, podman_engine, dockerd):
    tag = index_entry(layout)["annotations"]["org.opencontainers.image.ref.name"]
    push(layout, "docker-daemon:nix2aci-push/busybox", env={"DOCKER_HOST": f"unix://{dockerd.socket}"})
    assert dockerd.run(f"nix2aci-push/busybox:{tag}") == GREETING
    store = f"[vfs@{podman_engine.root}+{podman_engine.runroot}]"
    push(layout, f"containers-storage:{store}localhost/nix2aci-push/busybox", env=podman_engine.storage_environment())
    assert podman_engine.run(f"localhost/nix2aci-push/busybox:{tag}") == GREETING


def test_an_image_index_is_pushed_whole_with_its_digest(layout, registry, tmp_path):
    two_platforms = multi_platform_layout(layout, tmp_path / "multi")
    push(two_platforms, f"docker://{registry.host}/multi:t")
    raw = skopeo_inspect(f"docker://{registry.host}/multi:t", "--raw")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == index_entry(two_platforms)["digest"]
    platforms = [entry["platform"]["architecture"] for entry in json.loads(raw)["manifests"]]
    assert platforms == ["amd64", "arm64"]
    for entry in json.loads(raw)["manifests"]:  # each platform's image is there, not only the host's
        skopeo_inspect(f"docker://{registry.host}/multi@{entry['digest']}", "--raw")


def image_requests(requests: list[str], repository: str, tag: str, image_blobs: set[str]) -> list[str]:
    """The ``requests`` (``METHOD /v2/PATH``) about the image pushed to ``REPOSITORY:TAG``: its tag's manifest and
    the blobs ``image_blobs`` (the referrer step's requests about the SBOM are left out)."""
    paths = {f"/v2/{repository}/manifests/{tag}", *(f"/v2/{repository}/blobs/{blob}" for blob in image_blobs)}
    return [request for request in requests if request.split(" ", 1)[1] in paths]


def test_an_unchanged_push_runs_no_copy_only_one_manifest_lookup_and_another_image_is_copied(
    layout, registry, tmp_path
):
    destination = f"docker://{registry.host}/again:t"
    built = index_entry(layout)["digest"]
    sbom_manifest = sbom_artifact(layout)[0]
    first = push(layout, destination).stdout.splitlines()[0]
    assert first == f"{layout}: pushed to {destination} {built}"
    since = registry.log_position()
    again = push(layout, destination)
    assert again.stdout.splitlines()[0] == f"{layout}: pushed to {destination} {built}, already there (nothing copied)"
    # The referrer step still ran (its manifest is PUT last); of the image, only the tag was looked up: skopeo,
    # which would HEAD every blob and PUT the manifest, did not run.
    requests = registry.requests(since, f"again/manifests/{sbom_manifest}")
    assert image_requests(requests, "again", "t", blobs(layout)) == ["GET /v2/again/manifests/t"]
    assert again.stdout.splitlines()[1].startswith(f"{layout}: referrer {sbom_manifest} of {built}")
    # The tag now names another image (an index of the same layers): pushing the first image copies it again.
    multiarch = multi_platform_layout(layout, tmp_path / "multiarch")
    push(multiarch, destination)
    since = registry.log_position()
    copied = push(layout, destination)
    assert copied.stdout.splitlines()[0] == first
    requests = registry.requests(since, f"again/manifests/{sbom_manifest}")
    assert "PUT /v2/again/manifests/t" in image_requests(requests, "again", "t", blobs(layout))
    assert skopeo_inspect(destination, "--raw") == (layout / "blobs/sha256" / built.removeprefix("sha256:")).read_text()


def write_blob(layout: Path, document: dict) -> dict:
    """Add ``document`` to ``layout`` as a JSON blob; its descriptor's digest and size."""
    data = json.dumps(document, sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def multi_platform_layout(layout: Path, destination: Path) -> Path:
    """A copy of ``layout`` whose index.json names an image index of two platforms: the image as it is
    (amd64) and the same layers with a config that says arm64 (made by hand: only the index is tested)."""
    shutil.copytree(layout, destination, symlinks=False)
    os.chmod(destination, 0o755)
    for directory in (destination / "blobs", destination / "blobs/sha256"):
        os.chmod(directory, 0o755)
    os.chmod(destination / "index.json", 0o644)
    entry = index_entry(layout)
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].removeprefix("sha256:")).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    arm = {**manifest, "config": {**manifest["config"], **write_blob(destination, {**config, "architecture": "arm64"})}}
    arm64 = {"architecture": "arm64", "os": "linux"}
    manifests = [
        {key: entry[key] for key in ("mediaType", "digest", "size", "platform")},
        {"mediaType": entry["mediaType"], **write_blob(destination, arm), "platform": arm64},
    ]
    media_type = "application/vnd.oci.image.index.v1+json"
    index = write_blob(destination, {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})
    top = {"mediaType": media_type, **index, "annotations": {"org.opencontainers.image.ref.name": "t"}}
    (destination / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return destination


def test_the_registry_fixture_answers_on_its_own_port_and_is_gone_after(tmp_path):
    with docker_registry(tmp_path / "registry") as running:
        assert registry_answers(running.host)
        assert (tmp_path / "registry/registry.yml").read_text().count(str(tmp_path / "registry/storage")) == 1
    assert not registry_answers(running.host)


# --- One line for each failure --------------------------------------------------------------------------------------


def one_line_error(result) -> str:
    """The one error line of a failed nix2aci run."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unreachable_registry_is_one_line(layout):
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    error = one_line_error(push(layout, f"docker://{host}/busybox:t", check=False))
    assert error.startswith(f"nix2aci: error: cannot reach the registry {host}: "), error
    assert "connection refused" in error


def test_a_refused_login_is_one_line_and_the_right_one_pushes(layout, tmp_path):
    with docker_registry(tmp_path / "registry", htpasswd=HTPASSWD) as registry:
        authfiles = {}
        for name, password in (("wrong", "not-it"), ("right", PASSWORD)):
            token = base64.b64encode(f"{USER}:{password}".encode()).decode()
            authfiles[name] = tmp_path / f"{name}.json"
            authfiles[name].write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
        destination = f"docker://{registry.host}/busybox:t"
        error = one_line_error(push(layout, destination, "--authfile", authfiles["wrong"], check=False))
        assert error.startswith(f"nix2aci: error: the registry {registry.host} refused the login (401"), error
        anonymous = push(layout, destination, check=False, env={"REGISTRY_AUTH_FILE": str(tmp_path / "none.json")})
        assert "refused the login" in one_line_error(anonymous)
        push(layout, destination, "--authfile", authfiles["right"])
        # REGISTRY_AUTH_FILE is read too, as containers' tools read it.
        push(layout, destination, env={"REGISTRY_AUTH_FILE": str(authfiles["right"])})


def test_a_missing_tag_is_one_line(layout, registry, tmp_path):
    untagged = tmp_path / "untagged"
    shutil.copytree(layout, untagged)
    os.chmod(untagged, 0o755)
    os.chmod(untagged / "index.json", 0o644)
    index = json.loads((untagged / "index.json").read_text())
    image = image_entry(untagged)
    del next(entry for entry in index["manifests"] if entry == image)["annotations"]
    (untagged / "index.json").write_text(json.dumps(index))
    # Beside its SBOM artifact, skopeo cannot pick an untagged image: said before skopeo runs.
    error = one_line_error(push(untagged, f"docker://{registry.host}/busybox:given", check=False))
    assert error.endswith(
        "index.json: the image has no org.opencontainers.image.ref.name annotation, which skopeo needs beside artifacts"
    )
    index["manifests"] = [entry for entry in index["manifests"] if "artifactType" not in entry]  # the image alone
    (untagged / "index.json").write_text(json.dumps(index))
    error = one_line_error(push(untagged, f"docker://{registry.host}/busybox", check=False))
    assert error == (
        f"nix2aci: error: DEST docker://{registry.host}/busybox: the image has no tag of its own: add :TAG to DEST"
    )
    push(untagged, f"docker://{registry.host}/busybox:given")  # a tag in DEST is enough


def test_an_oci_archive_destination_never_replaces_a_file(layout, tmp_path):
    canary, target = tmp_path / "notes.txt", tmp_path / "target.txt"
    canary.write_text("keep")
    target.write_text("keep too")
    (tmp_path / "link.tar").symlink_to(target)  # skopeo would write through it
    tag = index_entry(layout)["annotations"]["org.opencontainers.image.ref.name"]
    for existing in (canary, tmp_path / "link.tar"):
        error = one_line_error(push(layout, f"oci-archive:{existing}", check=False))
        assert (
            error
            == f"nix2aci: error: DEST oci-archive:{existing}:{tag}: {existing} exists; remove it or name a new file"
        )
    assert (canary.read_text(), target.read_text()) == ("keep", "keep too")
    push(layout, f"oci-archive:{tmp_path / 'new.tar'}")
    with tarfile.open(tmp_path / "new.tar") as archive:
        assert "index.json" in archive.getnames()


@pytest.mark.parametrize(
    "destination, problem",
    [
        ("registry/busybox:t", "no transport"),
        ("docker://busybox:t", "name the registry"),
        ("docker:127.0.0.1:5000/busybox", "a registry is written docker://HOST/REPO[:TAG]"),
        ("docker://127.0.0.1:5000/BusyBox:t", "'BusyBox' is not a repository"),
        ("docker://127.0.0.1:5000/busybox:t@sha256:" + "0" * 64, "a digest (@sha256:...) cannot be pushed to"),
        ("docker://127.0.0.1:5000/busybox:-t", "the tag '-t' is not"),
        ("ftp://example.com/busybox", "unknown transport 'ftp'"),
    ],
)
def test_a_bad_destination_is_one_line_before_anything_runs(layout, destination, problem):
    error = one_line_error(push(layout, destination, check=False))
    assert error.startswith(f"nix2aci: error: DEST {destination!r}: {problem}"), error
    assert "allowed: docker://HOST[:PORT]/REPO[:TAG], docker-daemon:NAME[:TAG]" in error


def canary_layer(path: Path) -> bytes:
    """Write at ``path`` a gzip'd tar layer holding one file of fresh secret bytes, outside the Nix store; its
    bytes (the secret among them, compressed: a test looks for the layer's own digest in the registry)."""
    with tarfile.open(path, "w:gz") as archive:
        secret = f"canary {secrets.token_hex(16)}\n".encode()
        member = tarfile.TarInfo("secret")
        member.size = len(secret)
        archive.addfile(member, io.BytesIO(secret))
    return path.read_bytes()


def layout_with_linked_layer(layout: Path, destination: Path, target: Path) -> str:
    """A copy of ``layout`` (its links into the store kept) whose image's last layer is the file ``target``,
    reached through a link ``blobs/sha256/DIGEST -> target``: consistent digests and sizes, the image alone (no
    SBOM, whose subject would no longer match). The layer's digest."""
    shutil.copytree(layout, destination, symlinks=True)
    for directory in (destination, destination / "blobs", destination / "blobs/sha256"):
        os.chmod(directory, 0o755)
    os.chmod(destination / "index.json", 0o644)
    data = target.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (destination / "blobs/sha256" / digest).symlink_to(target)
    manifest, _ = documents(layout)
    manifest["layers"][-1] = {**manifest["layers"][-1], "digest": f"sha256:{digest}", "size": len(data)}
    entry = {**index_entry(layout), **write_blob(destination, manifest)}
    (destination / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return f"sha256:{digest}"


def test_a_layout_whose_blob_links_out_of_the_store_is_refused_before_skopeo_reads_it(layout, registry, tmp_path):
    canary = tmp_path / "canary.tar.gz"
    canary_bytes = canary_layer(canary)
    hostile = tmp_path / "hostile"
    digest = layout_with_linked_layer(layout, hostile, canary)

    error = one_line_error(push(hostile, f"docker://{registry.host}/leak:t", check=False))

    assert error == (
        f"nix2aci: error: IMAGE {hostile} is not a valid OCI image layout: index.json.manifests[0] layers[2]: "
        f"names blob {digest}, which is a symbolic link to {canary}, which is not in the Nix store /nix/store"
    )
    assert not (registry.storage / "docker/registry/v2/repositories").exists()  # nothing was pushed
    assert not (registry.storage / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:]).exists()
    assert canary.read_bytes() == canary_bytes
    # The same layer as a regular file of the layout is pushed: the link is what was refused.
    (hostile / "blobs/sha256" / digest.removeprefix("sha256:")).unlink()
    shutil.copyfile(canary, hostile / "blobs/sha256" / digest.removeprefix("sha256:"))
    push(hostile, f"docker://{registry.host}/leak:t")
    assert registry.blob_size(digest) == len(canary_bytes)

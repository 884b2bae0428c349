"""The parts of ``nix2aci push`` that need no registry: destinations, image sources, registries.d, simple-signing
claims and skopeo's errors, each fed hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from nix2aci import inputs
from nix2aci.distribution import registries_d, simple_signing, skopeo, source
from nix2aci.distribution.reference import Destination, parse_destination, parse_scope
from nix2aci.errors import Nix2AciError, UsageError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, expected",
    [
        ("docker://127.0.0.1:5000/busybox:9.9.9", Destination("docker", "127.0.0.1:5000/busybox", "9.9.9")),
        ("docker://registry.example.com/team/app", Destination("docker", "registry.example.com/team/app", None)),
        ("docker://localhost/a__b/c-d.e", Destination("docker", "localhost/a__b/c-d.e", None)),
        ("docker-daemon:busybox:t", Destination("docker-daemon", "busybox", "t")),
        ("docker-daemon:localhost:5000/busybox", Destination("docker-daemon", "localhost:5000/busybox", None)),
        (
            "containers-storage:[vfs@/r+/rr]localhost/busybox:t",
            Destination("containers-storage", "localhost/busybox", "t", "[vfs@/r+/rr]"),
        ),
        ("oci:/tmp/out:v1", Destination("oci", "/tmp/out", "v1")),
        ("oci-archive:out.tar", Destination("oci-archive", "out.tar", None)),
    ],
)
def test_a_destination_is_parsed_and_written_back_as_skopeo_takes_it(text, expected):
    parsed = parse_destination(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty or holds a newline or NUL"),
        ("docker://host.example/a\nb", "empty or holds a newline or NUL"),
        ("docker://-bad-.example/busybox", "'-bad-.example' is not a host name"),
        ("docker://127.0.0.1:5000/" + "a" * 256, "the name is longer than 255 characters"),
        ("docker://127.0.0.1:5000/a//b", "is not a repository"),
        ("docker://127.0.0.1:5000/a:" + "t" * 129, "is not 1 to 128 letters"),
        ("docker-daemon:", "no image name"),
        ("containers-storage:[vfs@/r]", "no image name"),
        ("oci:", "no path"),
        ("oci:/x:bad tag", "the tag 'bad tag' is not"),
        ("dir:/tmp/x", "unknown transport 'dir'"),
        ("/tmp/layout", "no transport"),
    ],
)
def test_a_bad_destination_is_one_line_naming_it(text, problem):
    with pytest.raises(UsageError) as caught:
        parse_destination(text)
    message = str(caught.value)
    assert message.startswith(f"DEST {text!r}: "), message
    assert problem in message
    assert "\n" not in message.replace(repr(text), "")


@pytest.mark.parametrize("scope", ["registry.example.com", "127.0.0.1:5000/team/app", "localhost/x"])
def test_a_policy_scope_is_a_host_and_an_optional_repository(scope):
    assert parse_scope(scope) == scope


@pytest.mark.parametrize("scope", ["busybox", "Registry.example.com/X", "example.com/a//b", ""])
def test_a_bad_policy_scope_is_refused(scope):
    with pytest.raises(UsageError, match=r"^--registry "):
        parse_scope(scope)


# --- Sources -----------------------------------------------------------------------------------------------------


BLOBS: dict[str, bytes] = {}  # what each layout of make_layout holds in blobs/sha256, by digest


def blob(document: dict | bytes, media_type: str) -> dict:
    """The descriptor of ``document`` (JSON, or bytes as they are), which is added to BLOBS."""
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    BLOBS[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


# A valid image: its layer is not read (push checks layers' sizes, not their contents), a config, its manifest,
# an image index naming it, and an artifact (an SBOM) whose subject it is.
LAYER = blob(b"a layer", "application/vnd.oci.image.layer.v1.tar")
CONFIG = blob(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [DIGEST]}},
    "application/vnd.oci.image.config.v1+json",
)
MANIFEST = blob({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": CONFIG, "layers": [LAYER]}, MANIFEST_TYPE)
IMAGE_INDEX = blob({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [MANIFEST]}, INDEX_TYPE)
SBOM = {
    **blob(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": "application/spdx+json",
            "config": blob(b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [blob(b"{}", "application/spdx+json")],
            "subject": MANIFEST,
        },
        MANIFEST_TYPE,
    ),
    "artifactType": "application/spdx+json",
}


def make_layout(directory: Path, entries: list | str) -> Path:
    """An OCI layout whose index.json lists ``entries`` (or is the text ``entries``), with the blobs of BLOBS."""
    (directory / "blobs/sha256").mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    text = entries if isinstance(entries, str) else json.dumps({"schemaVersion": 2, "manifests": entries})
    (directory / "index.json").write_text(text)
    for digest, data in BLOBS.items():
        (directory / "blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    return directory


def entry(tag: str | None = "t", media_type: str = MANIFEST_TYPE) -> dict:
    """index.json's descriptor of MANIFEST (or IMAGE_INDEX, by ``media_type``), tagged ``tag``."""
    annotations = {"annotations": {"org.opencontainers.image.ref.name": tag}} if tag else {}
    return {**(MANIFEST if media_type == MANIFEST_TYPE else IMAGE_INDEX), "mediaType": media_type, **annotations}


def test_a_layout_gives_its_tag_its_digest_and_whether_it_is_an_index(tmp_path):
    assert source.resolve(str(make_layout(tmp_path / "a", [entry()]))) == source.Source(
        f"oci:{tmp_path}/a:t", "t", False, MANIFEST["digest"], str(tmp_path / "a")
    )
    assert source.resolve(str(make_layout(tmp_path / "b", [entry(None)]))).tag is None
    assert source.resolve(str(make_layout(tmp_path / "c", [entry("t", INDEX_TYPE)]))).index
    # buildOCIImage's layout: the image, and its SBOM as an artifact referring to it, which is no image to push.
    assert source.resolve(str(make_layout(tmp_path / "d", [entry(), SBOM]))) == source.Source(
        f"oci:{tmp_path}/d:t",
        "t",
        False,
        MANIFEST["digest"],
        str(tmp_path / "d"),
        (SBOM,),
        frozenset([MANIFEST["digest"]]),
    )


@pytest.mark.parametrize(
    "index, problem",
    [
        ("{", "index.json is not JSON"),
        ("[]", "index.json is not a JSON object"),
        ([], "manifests must list exactly one image (and artifacts about it), it lists 0"),
        ([entry(), entry()], "manifests must list exactly one image (and artifacts about it), it lists 2"),
        (
            [{**entry(), "artifactType": "x"}],
            "manifests must list exactly one image (and artifacts about it), it lists 0",
        ),
        ([entry(None), {**entry(), "artifactType": "x"}], "the image has no org.opencontainers.image.ref.name"),
        ([{**entry(), "mediaType": "text/plain"}], "the image's mediaType 'text/plain' is neither"),
        ([{**entry(), "annotations": {"org.opencontainers.image.ref.name": 7}}], "is not a string"),
        ('{"manifests": ' + "[" * 100000 + "]" * 100000 + "}", "index.json is not JSON"),
    ],
)
def test_a_hostile_layout_is_one_line(tmp_path, index, problem):
    with pytest.raises(Nix2AciError) as caught:
        source.resolve(str(make_layout(tmp_path / "l", index)))
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_layout_whose_index_is_a_fifo_or_a_link_out_is_refused_at_once(tmp_path):
    layout = make_layout(tmp_path / "l", [entry()])
    (layout / "index.json").unlink()
    os.mkfifo(layout / "index.json")  # nothing writes it: reading would hang
    with pytest.raises(Nix2AciError, match="is a FIFO"):
        source.resolve(str(layout))
    (layout / "index.json").unlink()
    (layout / "index.json").symlink_to("/etc/passwd")
    with pytest.raises(Nix2AciError, match="symbolic link"):
        source.resolve(str(layout))


@pytest.mark.parametrize("descriptor", [LAYER, CONFIG], ids=["layer", "config"])
def test_a_layout_whose_blob_links_out_of_the_store_is_refused_unread(tmp_path, descriptor):
    layout = make_layout(tmp_path / "l", [entry()])
    canary = tmp_path / "canary"
    os.mkfifo(canary)  # nothing writes it: were the link followed, reading would hang
    encoded = descriptor["digest"].removeprefix("sha256:")
    for target in (canary, Path("/etc/shadow")):
        (layout / "blobs/sha256" / encoded).unlink(missing_ok=True)
        (layout / "blobs/sha256" / encoded).symlink_to(target)
        with pytest.raises(Nix2AciError) as caught:
            source.resolve(str(layout))
        assert str(caught.value).startswith(f"IMAGE {layout} is not a valid OCI image layout: index.json.manifests[0]")
        assert str(caught.value).endswith(
            f"names blob {descriptor['digest']}, which is a symbolic link to {target}, which is not in the Nix store "
            f"{inputs.store_dir()}"
        )


def make_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_docker_archive_gives_its_tag_whether_named_or_in_its_result_directory(tmp_path):
    result = tmp_path / "result"
    result.mkdir()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["localhost:5000/busybox:9.9.9"], "Layers": []}])
    archive = make_archive(result / "busybox-9.9.9.tar", {"manifest.json": manifest.encode()})
    expected = source.Source(f"docker-archive:{archive}", "9.9.9", False, None)
    assert source.resolve(str(result)) == source.resolve(str(archive)) == expected
    untagged = json.dumps([{"Config": "c.json", "RepoTags": ["localhost:5000/busybox"], "Layers": []}]).encode()
    assert source.resolve(str(make_archive(tmp_path / "u.tar", {"manifest.json": untagged}))).tag is None


@pytest.mark.parametrize(
    "members, problem",
    [
        ({"other": b"x"}, "has no manifest.json: not a docker-archive"),
        ({"manifest.json": b"{}"}, "manifest.json is not a JSON list"),
        ({"manifest.json": b"[{}, {}]"}, "manifest.json must be a list of exactly one image"),
        ({"manifest.json": b'[{"RepoTags": "x:y"}]'}, "RepoTags is not a list of names"),
        ({"manifest.json": b"\xff"}, "manifest.json is not JSON"),
    ],
)
def test_a_hostile_docker_archive_is_one_line(tmp_path, members, problem):
    with pytest.raises(Nix2AciError) as caught:
        source.resolve(str(make_archive(tmp_path / "a.tar", members)))
    assert problem in str(caught.value)


def test_what_is_not_an_image_is_one_line(tmp_path):
    (tmp_path / "not-a-tar.tar").write_bytes(b"\0" * 10)
    with pytest.raises(Nix2AciError, match="is not a tar archive"):
        source.resolve(str(tmp_path / "not-a-tar.tar"))
    with pytest.raises(UsageError, match="does not exist"):
        source.resolve(str(tmp_path / "missing"))
    with pytest.raises(UsageError, match=r"holds 0 \.tar files, not one"):
        (tmp_path / "empty").mkdir()
        source.resolve(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="a path with ':' cannot be given to skopeo"):
        source.resolve(str(make_layout(tmp_path / "a:b", [entry()])))


# --- registries.d ------------------------------------------------------------------------------------------------


def test_the_most_specific_namespace_wins_then_default_docker(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "docker:\n  r.example.com:\n    lookaside: https://host/\n"
        "  r.example.com/team/app:\n    lookaside: https://app/\n    lookaside-staging: file:///stage\n"
    )
    (tmp_path / "b.yaml").write_text("default-docker:\n  sigstore: file:///default\n")
    (tmp_path / "ignored.txt").write_text("not: [yaml")
    app = registries_d.stores_for(str(tmp_path), "r.example.com/team/app:t")
    assert (app.read, app.write) == ("https://app/", "file:///stage")
    other = registries_d.stores_for(str(tmp_path), "r.example.com/team/other:t")
    assert (other.read, other.write) == ("https://host/", "https://host/")
    elsewhere = registries_d.stores_for(str(tmp_path), "q.example.com/x:t")
    assert (elsewhere.read, elsewhere.write) == ("file:///default", "file:///default")
    assert registries_d.stores_for(str(tmp_path / "missing"), "q.example.com/x:t") is None
    assert registries_d.scopes("h:5000/a/b:t") == ["h:5000/a/b:t", "h:5000/a/b", "h:5000/a", "h:5000"]


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"a.yaml": "docker: [", "b.yaml": ""}, "a.yaml is not YAML"),
        ({"a.yaml": "- 1\n"}, "must be a mapping with docker: and default-docker:"),
        ({"a.yaml": "docker: 3\n"}, "docker: must map namespaces to lookaside URLs"),
        ({"a.yaml": "docker:\n  h.example: 3\n"}, "must be a mapping of lookaside URLs"),
        ({"a.yaml": "docker:\n  h.example:\n    lookaside: [1]\n"}, "lookaside must be a URL string"),
        ({"a.yaml": "docker:\n  h.example: {}\n", "b.yaml": "docker:\n  h.example: {}\n"}, "also configured in"),
        ({"a.yaml": "x: !!python/object/apply:os.system ['true']\n"}, "is not YAML"),
        ({"a.yaml": "[" * 100_000}, "a.yaml nests YAML deeper than nix2aci reads"),
        ({"a.yaml": "docker: " + "{a: " * 50_000}, "a.yaml nests YAML deeper than nix2aci reads"),
    ],
)
def test_a_hostile_registries_d_is_one_line(tmp_path, files, problem):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(Nix2AciError) as caught:
        registries_d.stores_for(str(tmp_path), "h.example/x:t")
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


# --- Simple signing claims ------------------------------------------------------------------------------------


def claim(**critical) -> bytes:
    base = {"type": "atomic container signature", "image": {"docker-manifest-digest": DIGEST},
            "identity": {"docker-reference": "h.example/x:t"}}  # fmt: skip
    return json.dumps({"critical": {**base, **critical}, "optional": {"creator": "x"}}).encode()


def test_a_claim_names_the_digest_and_the_image():
    assert simple_signing.parse_claim(claim()) == simple_signing.Claim(DIGEST, "h.example/x:t")
    url = simple_signing.signature_url("file:///s/", "team/x", DIGEST, 2)
    assert url == f"file:///s/team/x@sha256={'ab' * 32}/signature-2"


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"\x89PNG", "its data is not JSON"),
        (b"[]", "its data has no critical object"),
        (claim(type="cosign container image signature"), "critical.type is 'cosign container image signature'"),
        (claim(image={}), "docker-manifest-digest or critical.identity.docker-reference is missing"),
        (claim(identity={"docker-reference": 7}), "is missing"),
    ],
)
def test_a_hostile_claim_is_refused(data, problem):
    with pytest.raises(Nix2AciError, match=problem.replace(".", r"\.")):
        simple_signing.parse_claim(data)


def test_signatures_are_read_until_the_first_missing_number(tmp_path):
    directory = tmp_path / f"x@sha256={'ab' * 32}"
    directory.mkdir()
    for number in (1, 2, 4):
        (directory / f"signature-{number}").write_bytes(b"sig%d" % number)
    found = simple_signing.read_signatures(f"file://{tmp_path}", "x", DIGEST)
    assert [data for _, data in found] == [b"sig1", b"sig2"]
    with pytest.raises(Nix2AciError, match="is not a file://, http:// or https:// URL"):
        simple_signing.read_signatures("ftp://x", "x", DIGEST)


def test_a_fifo_in_the_lookaside_is_refused_at_once(tmp_path):
    directory = tmp_path / f"x@sha256={'ab' * 32}"
    directory.mkdir()
    os.mkfifo(directory / "signature-1")  # no writer: opening it to read would wait for ever
    with pytest.raises(Nix2AciError) as caught:
        simple_signing.read_signatures(f"file://{tmp_path}", "x", DIGEST)
    assert str(caught.value) == f"the signature {directory}/signature-1 is a FIFO, not a regular file"
    assert type(caught.value) is Nix2AciError  # the store's content, not a command-line argument


@pytest.fixture
def trickling_server():
    """An http server that answers every request with a header and then one byte at a time, until the test ends;
    yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def trickle(connection: socket.socket) -> None:
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while not done.wait(0.1):
                connection.sendall(b"x")

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listener closed: the test is over
            while True:
                threading.Thread(target=trickle, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    done.set()
    listener.close()


def test_a_lookaside_that_answers_a_byte_at_a_time_is_given_up(trickling_server, monkeypatch):
    # Each byte comes well within the socket's timeout: only a deadline on the whole answer stops the read.
    monkeypatch.setattr(simple_signing, "FETCH_TIMEOUT", 1)
    with pytest.raises(Nix2AciError) as caught:
        simple_signing.read_signatures(trickling_server, "x", DIGEST)
    url = simple_signing.signature_url(trickling_server, "x", DIGEST, 1)
    assert str(caught.value) == f"cannot read the signature {url}: no whole answer within 1 s"


# --- skopeo's errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stderr, start",
    [
        ('level=fatal msg="pinging container registry h:1: dial tcp h:1: connect: connection refused"',
         "cannot reach the registry h:1: "),
        ('level=fatal msg="trying to reuse blob: unauthorized: authentication required"',
         "the registry h:1 refused the login (401 unauthorized)"),
        ('level=fatal msg="reading manifest t in h:1/x: manifest unknown: manifest unknown"',
         "h:1: no such image or tag: "),
        ('level=fatal msg="Get \\"https://h:1/v2/\\": http: server gave HTTP response to HTTPS client"',
         "h:1: TLS failed (--tls-verify=false"),
        ("something else entirely\n", "h:1: something else entirely"),
    ],
)  # fmt: skip
def test_skopeo_errors_become_one_line(stderr, start):
    message = skopeo.explain(stderr, "h:1")
    assert message.startswith(start), message
    assert "\n" not in message

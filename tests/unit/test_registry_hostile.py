"""nix2aci's registry client (nix2aci/distribution/registry.py) against a hostile registry: a raw socket server
in a thread answers each request with bytes the test chooses (not HTTP, a header past http.client's limits, a
broken chunk; a token realm elsewhere over plain HTTP). Each must end in one Nix2AciError line, and the auth
file's login must not reach a place it may not go."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading

import pytest

from nix2aci.build.sbom import MEDIA_TYPE
from nix2aci.distribution import credentials, referrers, registry, registry_sbom, skopeo
from nix2aci.distribution.reference import parse_destination
from nix2aci.errors import Nix2AciError

EMPTY_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def serve(answer, then=None) -> tuple[int, list[bytes]]:
    """A TCP server on 127.0.0.1 answering each HTTP request with ``answer(request_head)`` (bytes to send, None:
    close at once), then calling ``then(connection)`` when given; TLS is refused by closing. Returns its port and
    the request heads it got."""
    listener = socket.create_server(("127.0.0.1", 0))
    heads: list[bytes] = []

    def one(connection: socket.socket) -> None:
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk or chunk.startswith(b"\x16"):  # closed, or a TLS ClientHello: this is plain HTTP
                    return
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0]
            heads.append(head)
            reply = answer(head)
            if reply:
                connection.sendall(reply)
                if then and not head.startswith(b"GET /v2/ "):
                    with contextlib.suppress(OSError):  # the client gave up
                        then(connection)

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=one, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], heads


def registry_answering(reply: bytes | None):
    """A registry whose ``/v2/`` answers, and whose every other request gets ``reply``."""
    return lambda head: EMPTY_OK if head.startswith(b"GET /v2/ ") else reply


def client(port: int, authfile: str = "/nonexistent/auth.json") -> registry.Client:
    return registry.Client(f"127.0.0.1:{port}/repo", skopeo.Options(tls_verify=False, authfile=authfile))


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        (b"HELLO\r\n\r\n", "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", "LineTooLong"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 200 + b"\r\n", "got more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "IncompleteRead"),
        (None, "Remote end closed connection"),
    ],
    ids=["status-line", "long-header", "many-headers", "bad-chunk", "no-answer"],
)
def test_an_answer_that_is_no_http_is_one_line(reply, shown):
    port, _ = serve(registry_answering(reply))
    with pytest.raises(Nix2AciError) as raised:
        client(port).manifest("latest")
    message = str(raised.value)
    assert f"127.0.0.1:{port} answered no valid HTTP" in message and shown in message
    assert "\n" not in message and "\r" not in message


def auth_file(tmp_path, host: str) -> str:
    """An auth file with the login user:secret for ``host``."""
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"user:secret").decode()}}}))
    return str(path)


def bearer_registry(realm: str):
    """A registry asking for a Bearer token from ``realm`` and answering 404 once it has one."""

    def answer(head: bytes) -> bytes:
        if head.startswith(b"GET /v2/ "):
            return EMPTY_OK
        if b"Authorization: Bearer the-token" in head:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        challenge = f'WWW-Authenticate: Bearer realm="{realm}",service="registry"'.encode()
        return b"HTTP/1.1 401 Unauthorized\r\n" + challenge + b"\r\nContent-Length: 0\r\n\r\n"

    return answer


TOKEN = b'HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n{"token":"the-token"}'


def test_the_login_does_not_go_over_plain_http_to_a_realm_elsewhere(tmp_path):
    realm_port, realm_heads = serve(lambda head: TOKEN)
    # localhost is another host than the registry's 127.0.0.1, as a browser's origin counts it.
    port, _ = serve(bearer_registry(f"http://localhost:{realm_port}/token"))
    assert client(port, auth_file(tmp_path, f"127.0.0.1:{port}")).manifest("latest") is None  # the token worked
    assert len(realm_heads) == 1 and b"GET /token?service=registry " in realm_heads[0]
    assert b"Authorization" not in realm_heads[0] and base64.b64encode(b"user:secret") not in realm_heads[0]


def test_the_login_goes_to_a_realm_of_the_registry_itself(tmp_path):
    def answer(head: bytes) -> bytes:
        return TOKEN if head.startswith(b"GET /token") else registry_itself(head)

    port, heads = serve(answer)
    registry_itself = bearer_registry(f"http://127.0.0.1:{port}/token")
    assert client(port, auth_file(tmp_path, f"127.0.0.1:{port}")).manifest("latest") is None
    (token_request,) = [head for head in heads if head.startswith(b"GET /token")]
    assert b"Authorization: Basic " + base64.b64encode(b"user:secret") in token_request


def test_an_auth_file_over_its_limit_is_named_as_such_not_as_no_json(tmp_path):
    path = tmp_path / "auth.json"
    padding = "x" * credentials.AUTH_FILE_LIMIT
    path.write_text(json.dumps({"auths": {"127.0.0.1:1": {"auth": "dXNlcjpwdw=="}}, "padding": padding}))
    with pytest.raises(Nix2AciError, match=rf"auth file .*auth.json is over {credentials.AUTH_FILE_LIMIT} bytes"):
        credentials.login("127.0.0.1:1/repo", str(path))


def test_a_registry_error_text_with_line_breaks_and_escapes_stays_one_line():
    said = json.dumps({"errors": [{"code": "DENIED\nnix2aci: all good\x1b[2J", "message": "\r"}]}).encode()
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(said) + said
    port, _ = serve(registry_answering(reply))
    with pytest.raises(Nix2AciError) as raised:
        client(port).manifest("latest")
    message = str(raised.value)
    assert message.startswith(f"127.0.0.1:{port}/repo: GET the manifest latest: HTTP 403: DENIED")
    assert message.isprintable() and "\\nnix2aci: all good\\x1b[2J" in message


def test_a_registry_that_sends_a_byte_now_and_then_is_given_up(monkeypatch):
    """Each byte comes well within the socket's timeout; the whole answer never does."""
    monkeypatch.setattr(registry, "TIMEOUT", 1)
    stop = threading.Event()

    def drip(head: bytes) -> bytes | None:
        if head.startswith(b"GET /v2/ "):
            return EMPTY_OK
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"

    port, _ = serve(
        drip, then=lambda connection: [connection.sendall(b"x") for _ in iter(lambda: stop.wait(0.2), True)]
    )
    outcome: list = []
    reader = threading.Thread(
        target=lambda: outcome.append(attempt(lambda: client(port).blob("sha256:" + "0" * 64, 4096))), daemon=True
    )
    reader.start()
    reader.join(60)  # only a guard against a test that hangs: the deadline asked for is 1 s + 4 KiB / MIN_RATE
    stop.set()
    assert len(outcome) == 1 and isinstance(outcome[0], Nix2AciError), outcome
    assert f"127.0.0.1:{port}: GET /v2/repo/blobs/sha256:" in str(outcome[0]) and "no whole answer within 1 s" in str(
        outcome[0]
    )


def attempt(work):
    """What ``work()`` returned, or the exception it raised."""
    try:
        return work()
    except Exception as error:
        return error


def answer_json(routes: dict[bytes, tuple[str, dict]]):
    """A registry answering ``GET PATH`` with the JSON document (of the media type) ``routes`` gives, 404 else."""

    def answer(head: bytes) -> bytes:
        if head.startswith(b"GET /v2/ "):
            return EMPTY_OK
        for path, (media_type, document) in routes.items():
            if head.startswith(b"GET " + path + b" "):
                body = json.dumps(document).encode()
                return (
                    f"HTTP/1.1 200 OK\r\nContent-Type: {media_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    return answer


HOSTILE_TEXT = "linux\nnix2aci: all good\x1b[2J"


def test_an_index_whose_platforms_hold_line_breaks_is_one_line_for_sbom():
    index = {"manifests": [{"digest": "sha256:" + "0" * 64, "platform": {"os": HOSTILE_TEXT, "architecture": "x"}}]}
    port, _ = serve(answer_json({b"/v2/repo/manifests/latest": (registry.OCI_INDEX, index)}))
    reference = parse_destination(f"docker://127.0.0.1:{port}/repo:latest")
    with pytest.raises(Nix2AciError) as raised:
        registry_sbom.fetch(reference, skopeo.Options(tls_verify=False, authfile="/nonexistent"), "linux/arm64")
    assert "without a linux/arm64 image (it has: 'linux\\nnix2aci: all good\\x1b[2J/x')" in str(raised.value)
    assert str(raised.value).isprintable()


def test_several_sboms_listed_with_line_breaks_in_their_digests_are_one_line():
    image = {"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST}
    subject = "sha256:" + hashlib.sha256(json.dumps(image).encode()).hexdigest()
    listed = {"manifests": [{"digest": HOSTILE_TEXT, "artifactType": MEDIA_TYPE}] * 2}
    routes = {
        b"/v2/repo/manifests/latest": (registry.OCI_MANIFEST, image),
        f"/v2/repo/referrers/{subject}".encode(): (registry.OCI_INDEX, listed),
    }
    port, _ = serve(answer_json(routes))
    reference = parse_destination(f"docker://127.0.0.1:{port}/repo:latest")
    with pytest.raises(Nix2AciError) as raised:
        registry_sbom.fetch(reference, skopeo.Options(tls_verify=False, authfile="/nonexistent"))
    assert f"2 SBOMs refer to {subject} (" in str(raised.value) and str(raised.value).isprintable()


def test_a_registry_error_text_relayed_by_skopeo_stays_one_line():
    said = json.dumps({"errors": [{"code": "DENIED", "message": "no\nnix2aci: pushed\x1b[2J"}]}).encode()
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(said)
    port, _ = serve(registry_answering(reply + said))
    reference = f"docker://127.0.0.1:{port}/repo:latest"
    options = skopeo.Options(tls_verify=False, authfile="/nonexistent")
    with pytest.raises(Nix2AciError) as raised:
        skopeo.raw_manifest(reference, reference, options)
    assert "denied: no\\nnix2aci: pushed\\x1b[2J" in str(raised.value) and str(raised.value).isprintable()


def test_a_fallback_tag_of_a_media_type_with_terminal_controls_is_one_printable_line():
    subject = "sha256:" + "0" * 64
    routes = {f"/v2/repo/manifests/{referrers.fallback_tag(subject)}".encode(): ("\x1b[2j/x", {"manifests": []})}
    port, _ = serve(answer_json(routes))
    with pytest.raises(Nix2AciError) as raised:
        referrers.listed(client(port), subject)
    assert "holds a '\\x1b[2j/x', not an image index" in str(raised.value) and str(raised.value).isprintable()

"""nix2aci's registry client (nix2aci/distribution/registry.py) against a hostile registry: a raw socket server
in a thread answers each request with bytes the test chooses (not HTTP, a header past http.client's limits, a
broken chunk; a token realm elsewhere over plain HTTP). Each must end in one Nix2AciError line, and the auth
file's login must not reach a place it may not go."""

from __future__ import annotations

import base64
import json
import socket
import threading

import pytest

from nix2aci.distribution import credentials, registry, skopeo
from nix2aci.errors import Nix2AciError

EMPTY_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def serve(answer) -> tuple[int, list[bytes]]:
    """A TCP server on 127.0.0.1 answering each HTTP request with ``answer(request_head)`` (bytes to send, None:
    close at once); TLS is refused by closing. Returns its port and the request heads it got."""
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

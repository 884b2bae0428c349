"""A small client of one repository of a registry (the OCI distribution API), for what skopeo cannot do.

skopeo 1.9 copies images; it cannot copy a manifest by digest out of a layout (``oci:DIR@sha256:...``), nor write
the referrers fallback index as it is (with ``--preserve-digests`` it refuses an index it would re-serialise), nor
ask for ``/v2/<name>/referrers/<digest>``. The few requests an SBOM needs are made here, with urllib:

- blobs: ``HEAD`` (is it there), ``POST`` + ``PUT ?digest=`` (a monolithic upload), ``GET``;
- manifests: ``GET`` and ``PUT`` by tag or digest; the referrers API ``GET``.

Reached as skopeo reaches it (the same options, :class:`nix2aci.distribution.skopeo.Options`): HTTPS with its
certificate verified; with ``tls_verify`` False, HTTPS unverified and, when the registry does not speak TLS,
plain HTTP. The login is the auth file's (:mod:`.credentials`), sent as the registry's ``WWW-Authenticate``
challenge asks: ``Basic``, or a ``Bearer`` token from its realm. Only http(s) URLs are followed, the login is
never sent along a redirect, nor over plain HTTP to another place than the registry (a realm or upload URL the
registry names). Every read stops at a limit, every wait at TIMEOUT seconds, every request (against a registry
sending a byte now and then) at TIMEOUT seconds and one more per MIN_RATE bytes it may send or read. Every failure,
an answer that is no HTTP too, is one Nix2AciError line naming the registry and what was asked; the registry's own
text in it is escaped.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

from ..errors import Nix2AciError
from ..oci.layout import INDEX, MANIFEST
from ..schema import json_or_none
from . import credentials
from .deadline import PastDeadline, within
from .skopeo import MANIFEST_LIMIT, Options

# The OCI media types under the names a registry's client gives them beside Docker's.
OCI_INDEX, OCI_MANIFEST = INDEX, MANIFEST
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
# Seconds a connection or a read may wait: a registry that stops answering ends the command, it does not hang it.
TIMEOUT = 60
# The slowest a whole request may go, in bytes a second past its first TIMEOUT seconds: the socket's timeout bounds
# each read only, and a registry sending a byte now and then would hold a request for ever.
MIN_RATE = 64 << 10
# The most read of an error's body or a token's answer: both are a few hundred bytes.
SMALL_LIMIT = 64 << 10
CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')
# What a request that got no (usable) answer raises: urllib's errors, the socket's, and http.client's for an
# answer that is no HTTP (a bad status line, a header over its limit, a broken chunk).
NO_ANSWER = (urllib.error.URLError, OSError, ValueError, http.client.HTTPException)


@dataclass(frozen=True)
class Response:
    """A registry's answer: its ``status``, ``headers`` and ``body`` (read up to the request's limit)."""

    status: int
    headers: Message
    body: bytes


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only (urllib would follow ftp:// too)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """urllib's redirect, refused with an HTTPError when ``newurl`` is not http(s)."""
        if urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to {newurl!r}, not http(s)", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Client:
    """The repository ``name`` (``HOST[:PORT]/REPO``) of a registry, reached with ``options``."""

    def __init__(self, name: str, options: Options) -> None:
        self.host, self.repository = name.split("/", 1)
        self.tls_verify = options.tls_verify
        self._login = credentials.login(name, options.authfile)
        context = ssl.create_default_context()
        if not options.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _HttpOnlyRedirects)
        self._base: str | None = None  # https://HOST or http://HOST, once the registry answered
        self._authorization: str | None = None

    # Transport

    def _may_carry_login(self, url: str) -> bool:
        """Whether a login may be sent to ``url``: over HTTPS, or to the registry itself (plain HTTP elsewhere would
        show it to the network)."""
        parts = urllib.parse.urlsplit(url)
        return parts.scheme == "https" or f"{parts.scheme}://{parts.netloc}" == self._base

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], limit: int, authorization: str | None
    ) -> Response:
        """One request, with ``authorization`` where it may go; its response (of any status) read up to ``limit``
        + 1 bytes. Raises one of NO_ANSWER."""
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        if authorization and self._may_carry_login(url):
            request.add_unredirected_header("Authorization", authorization)

        def exchange() -> Response:
            try:
                response = self._opener.open(request, timeout=TIMEOUT)
            except urllib.error.HTTPError as error:
                response = error
            with response:
                return Response(response.status, response.headers, response.read(limit + 1))

        deadline = TIMEOUT + (len(body or b"") + limit) / MIN_RATE
        try:
            return within(deadline, exchange)
        except PastDeadline:
            path = urllib.parse.urlsplit(url).path
            raise Nix2AciError(f"{self.host}: {method} {path}: no whole answer within {deadline:.0f} s") from None

    def _unreachable(self, error: Exception) -> Nix2AciError:
        """The one line for a request that got no answer."""
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLError):
            return Nix2AciError(
                f"{self.host}: TLS failed (--tls-verify=false for a registry that serves plain HTTP): {reason}"
            )
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return Nix2AciError(f"cannot reach the registry {self.host}: no answer in {TIMEOUT} s")
        if isinstance(reason, http.client.HTTPException):
            # Its text is the registry's own bytes (a status line...): shown escaped and cut, on one line.
            return Nix2AciError(f"{self.host} answered no valid HTTP ({type(reason).__name__}: {str(reason)[:80]!r})")
        return Nix2AciError(f"cannot reach the registry {self.host}: {reason}")

    def _connect(self) -> str:
        """``https://HOST`` or, with TLS unverified and a registry without TLS, ``http://HOST``: where ``/v2/``
        answers (200, or 401 asking for a login)."""
        if self._base is None:
            schemes = ("https",) if self.tls_verify else ("https", "http")
            for scheme in schemes:
                try:
                    response = self._send("GET", f"{scheme}://{self.host}/v2/", None, {}, SMALL_LIMIT, None)
                except NO_ANSWER as error:
                    if scheme == schemes[-1]:
                        raise self._unreachable(error) from None
                    continue
                if response.status not in (200, 401):
                    raise Nix2AciError(f"{self.host} is no registry: GET /v2/ answered HTTP {response.status}")
                self._base = f"{scheme}://{self.host}"
                break
        return self._base

    def _authenticate(self, challenge: str | None, what: str) -> None:
        """Answer the ``WWW-Authenticate`` ``challenge`` of a 401 to ``what``: the login (Basic), or a token for
        it from the challenge's realm (Bearer)."""
        scheme = (challenge or "").split(" ", 1)[0].lower()
        parameters = dict(CHALLENGE_PARAMETER.findall(challenge or ""))
        basic = None
        if self._login:
            basic = "Basic " + base64.b64encode(":".join(self._login).encode()).decode()
        if scheme == "basic" and basic:
            self._authorization = basic
            return
        if scheme != "bearer" or urllib.parse.urlsplit(parameters.get("realm", "")).scheme not in ("http", "https"):
            raise Nix2AciError(
                f"the registry {self.host} refused the login for {what} (401 unauthorized): give credentials with "
                "--authfile FILE (or REGISTRY_AUTH_FILE; podman login / skopeo login write it)"
            )
        query = urllib.parse.urlencode({key: parameters[key] for key in ("service", "scope") if key in parameters})
        try:
            answer = self._send("GET", f"{parameters['realm']}?{query}", None, {}, SMALL_LIMIT, basic)
        except NO_ANSWER as error:
            raise self._unreachable(error) from None
        document = json_or_none(answer.body) if answer.status == 200 else {}
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token.isprintable():
            raise Nix2AciError(
                f"the registry {self.host} gave no token for {what} (its realm answered HTTP {answer.status}): "
                "give credentials with --authfile FILE"
            )
        self._authorization = f"Bearer {token}"

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, limit: int
    ) -> Response:
        """``METHOD path`` (``/v2/...``, or an absolute http(s) URL the registry gave), logged in when the registry
        asks; the body read up to ``limit`` + 1 bytes."""
        url = path if path.startswith(("http://", "https://")) else self._connect() + path
        what = f"{method} {urllib.parse.urlsplit(url).path}"
        try:
            response = self._send(method, url, body, headers or {}, limit, self._authorization)
            if response.status == 401:
                self._authenticate(response.headers.get("WWW-Authenticate"), what)
                response = self._send(method, url, body, headers or {}, limit, self._authorization)
        except NO_ANSWER as error:
            raise self._unreachable(error) from None
        if response.status == 401:
            raise Nix2AciError(f"the registry {self.host} refused the login for {what} (401 unauthorized)")
        return response

    def failed(self, what: str, response: Response) -> Nix2AciError:
        """The one line for an unexpected ``response`` to ``what``, with the registry's own error message."""
        reason = ""
        try:
            errors = json.loads(response.body[:SMALL_LIMIT]).get("errors")
            said = f"{errors[0].get('code')} {errors[0].get('message')}"
            # The registry's own text: shown escaped (no line breaks, no terminal controls) and cut.
            reason = ": " + said[:200].encode("unicode_escape").decode("ascii")
        except (ValueError, RecursionError, AttributeError, TypeError, IndexError, KeyError):
            pass
        return Nix2AciError(f"{self.host}/{self.repository}: {what}: HTTP {response.status}{reason}")

    # The API

    def manifest(self, reference: str) -> tuple[str, bytes] | None:
        """The media type and bytes of the manifest ``reference`` (a tag or digest); None when there is none."""
        what = f"the manifest {reference}"
        response = self.request(
            "GET", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": ACCEPT}, limit=MANIFEST_LIMIT
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self.failed(f"GET {what}", response)
        if len(response.body) > MANIFEST_LIMIT:
            raise Nix2AciError(f"{self.host}/{self.repository}: {what} is larger than {MANIFEST_LIMIT} bytes")
        return response.headers.get_content_type(), response.body

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> Message:
        """Store ``data`` (of ``media_type``) as the manifest ``reference``; the response's headers."""
        response = self.request(
            "PUT",
            f"/v2/{self.repository}/manifests/{reference}",
            body=data,
            headers={"Content-Type": media_type},
            limit=SMALL_LIMIT,
        )
        if response.status not in (200, 201):
            raise self.failed(f"PUT the manifest {reference}", response)
        return response.headers

    def has_blob(self, digest: str) -> bool:
        """Whether the repository holds the blob ``digest``."""
        response = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}", limit=0)
        if response.status not in (200, 404):
            raise self.failed(f"HEAD the blob {digest}", response)
        return response.status == 200

    def upload_blob(self, digest: str, data: bytes) -> None:
        """Upload ``data``, the blob ``digest``, in one request (the registry checks the digest)."""
        started = self.request("POST", f"/v2/{self.repository}/blobs/uploads/", body=b"", limit=SMALL_LIMIT)
        location = started.headers.get("Location")
        if started.status != 202 or not location:
            raise self.failed(f"POST an upload of {digest}", started)
        url = urllib.parse.urljoin(self._connect() + "/", location)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise Nix2AciError(f"{self.host}: the upload of {digest} was sent to {location!r}, not an http(s) URL")
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
        finished = self.request(
            "PUT",
            f"{url}{separator}digest={urllib.parse.quote(digest)}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            limit=SMALL_LIMIT,
        )
        if finished.status not in (201, 204):
            raise self.failed(f"PUT the blob {digest}", finished)

    def blob(self, digest: str, limit: int) -> bytes:
        """The blob ``digest``, at most ``limit`` bytes (one line when it is missing or larger)."""
        response = self.request("GET", f"/v2/{self.repository}/blobs/{digest}", limit=limit)
        if response.status != 200:
            raise self.failed(f"GET the blob {digest}", response)
        if len(response.body) > limit:
            raise Nix2AciError(f"{self.host}/{self.repository}: the blob {digest} is larger than {limit} bytes")
        return response.body

    def referrers(self, digest: str) -> bytes | None:
        """The referrers API's image index of the manifests whose subject is ``digest``; None when the registry
        has no referrers API (it answers 404)."""
        response = self.request("GET", f"/v2/{self.repository}/referrers/{digest}", limit=MANIFEST_LIMIT)
        if response.status == 404:
            return None
        if response.status != 200:
            raise self.failed(f"GET the referrers of {digest}", response)
        if len(response.body) > MANIFEST_LIMIT:
            raise Nix2AciError(f"{self.host}/{self.repository}: the referrers of {digest} are over {MANIFEST_LIMIT} B")
        return response.body

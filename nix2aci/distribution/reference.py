"""Where ``nix2aci push`` sends an image: a containers transport reference, checked before anything runs.

The forms allowed (those of skopeo and containers/image, less the ones nix2aci has no use for)::

    docker://HOST[:PORT]/REPO[:TAG]                a registry; HOST is explicit (no implied docker.io)
    docker-daemon:NAME[:TAG]                       the Docker Engine of DOCKER_HOST
    containers-storage:[[DRIVER@]ROOT[+RUNROOT]]NAME[:TAG]   podman's and buildah's storage
    oci:PATH[:TAG]                                 an OCI image layout directory
    oci-archive:PATH[:TAG]                         a tar of one

A missing TAG is taken from the image (:mod:`nix2aci.distribution.source`). Names follow
distribution's reference grammar: lower-case path components, a tag of at most 128 word
characters, dots and dashes, a name of at most 255 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import UsageError

ALLOWED = (
    "docker://HOST[:PORT]/REPO[:TAG], docker-daemon:NAME[:TAG], containers-storage:NAME[:TAG], "
    "oci:PATH[:TAG] or oci-archive:PATH[:TAG]"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
HOST = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
NAME_LIMIT = 255
# containers-storage:[DRIVER@ROOT+RUNROOT:OPTIONS]: the store specification that precedes the name.
STORE_SPEC = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Destination:
    """A checked destination.

    ``transport`` is one of ``docker``, ``docker-daemon``, ``containers-storage``, ``oci``, ``oci-archive``;
    ``name`` the image name (``HOST/REPO`` for a registry, a docker name for the daemon and storage) or the
    path (``oci``, ``oci-archive``); ``tag`` the tag or None; ``store`` the ``[...]`` store specification of
    ``containers-storage`` or "".
    """

    transport: str
    name: str
    tag: str | None
    store: str = ""

    @property
    def registry(self) -> str:
        """``HOST[:PORT]`` of a ``docker`` destination."""
        return self.name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        """``REPO`` of a ``docker`` destination (the name without the registry)."""
        return self.name.split("/", 1)[1]

    def with_tag(self, tag: str) -> Destination:
        """The same destination with ``tag``."""
        return replace(self, tag=tag)

    def docker_reference(self) -> str:
        """``HOST/REPO:TAG``: the identity a signature names (``docker`` destinations)."""
        return f"{self.name}:{self.tag}"

    def __str__(self) -> str:
        """The reference as skopeo takes it."""
        tag = f":{self.tag}" if self.tag else ""
        if self.transport == "docker":
            return f"docker://{self.name}{tag}"
        return f"{self.transport}:{self.store}{self.name}{tag}"


class _Bad(Exception):
    """What is wrong with a reference, before it is put in the one-line message naming the argument."""


def _split_tag(rest: str) -> tuple[str, str | None]:
    """``NAME[:TAG]`` split into the name and the tag (None when absent); a ``@DIGEST`` is refused."""
    if "@" in rest:
        raise _Bad("a digest (@sha256:...) cannot be pushed to: name a tag")
    name, colon, tag = rest.rpartition(":")
    # A colon before the last slash belongs to HOST:PORT, not to a tag.
    if not colon or "/" in tag:
        return rest, None
    if not TAG.fullmatch(tag):
        raise _Bad(f"the tag {tag!r} is not 1 to 128 letters, digits, '_', '.' or '-' (not first)")
    return name, tag


def _check_name(name: str, need_host: bool) -> None:
    """Check a docker image name ``[HOST[:PORT]/]REPO``; ``need_host``: the host must be written out."""
    if len(name) > NAME_LIMIT:
        raise _Bad(f"the name is longer than {NAME_LIMIT} characters")
    host, slash, repository = name.partition("/")
    names_host = slash and ("." in host or ":" in host or host == "localhost")
    if need_host and not names_host:
        raise _Bad("name the registry: docker://HOST[:PORT]/REPO (docker.io/USER/REPO for Docker Hub)")
    if names_host and not HOST.fullmatch(host):
        raise _Bad(f"{host!r} is not a host name with an optional :PORT")
    if not names_host:
        repository = name
    if not REPOSITORY.fullmatch(repository):
        raise _Bad(
            f"{repository!r} is not a repository: lower-case letters and digits, separated by '/', '.', '_' or '-'"
        )


def parse_destination(text: str, argument: str = "DEST") -> Destination:
    """Parse and check a reference (the ``argument`` DEST of ``nix2aci push``); a :class:`UsageError` of one line,
    naming the argument, what is wrong and what is allowed, when it is bad."""
    try:
        return _parse(text)
    except _Bad as problem:
        raise UsageError(f"{argument} {text!r}: {problem}; allowed: {ALLOWED}") from None


def _parse(text: str) -> Destination:
    """:func:`parse_destination` without the message's frame."""
    if not text or "\n" in text or "\0" in text:
        raise _Bad("empty or holds a newline or NUL")
    transport, colon, rest = text.partition(":")
    if not colon:
        raise _Bad("no transport")
    if transport == "docker":
        if not rest.startswith("//"):
            raise _Bad("a registry is written docker://HOST/REPO[:TAG]")
        name, tag = _split_tag(rest[2:])
        _check_name(name, need_host=True)
        return Destination("docker", name, tag)
    if transport in ("docker-daemon", "containers-storage"):
        store = ""
        if transport == "containers-storage" and (spec := STORE_SPEC.match(rest)):
            store, rest = spec.group(), rest[spec.end() :]
        name, tag = _split_tag(rest)
        if not name:
            raise _Bad("no image name")
        _check_name(name, need_host=False)
        return Destination(transport, name, tag, store)
    if transport in ("oci", "oci-archive"):
        path, _, tag = rest.partition(":")
        if not path:
            raise _Bad("no path")
        if tag and not TAG.fullmatch(tag):
            raise _Bad(f"the tag {tag!r} is not 1 to 128 letters, digits, '_', '.' or '-' (not first)")
        return Destination(transport, path, tag or None)
    if not re.fullmatch(r"[a-z][a-z-]*", transport):
        raise _Bad("no transport")
    raise _Bad(f"unknown transport {transport!r}")


def parse_scope(text: str) -> str:
    """Check ``HOST[:PORT][/REPO]``, the part of the registry a consumer policy covers; returns it."""
    host, _, repository = text.partition("/")
    if not HOST.fullmatch(host) or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(f"--registry {text!r}: give HOST[:PORT][/REPO], HOST with a dot, a port or localhost")
    if repository and not REPOSITORY.fullmatch(repository):
        raise UsageError(f"--registry {text!r}: {repository!r} is not a lower-case repository path")
    return text

"""containers-registries.d(5): where the simple signatures of a registry's images are kept.

A registries.d directory holds YAML files (``*.yaml``) mapping namespaces to signature stores::

    docker:
      registry.example.com/team:
        lookaside: https://sigs.example.com/             # where consumers read signatures
        lookaside-staging: file:///srv/sigs/             # where publishers write them (optional)
    default-docker:
      lookaside: file:///var/lib/containers/sigstore

The entry for an image is that of its most specific namespace (``HOST/REPO:TAG``, ``HOST/REPO``,
its parents, ``HOST``), else ``default-docker``; ``sigstore`` and ``sigstore-staging`` are the
older names of the two keys. A namespace defined in two files is an error, as in containers/image.
The default directory is the one containers/image uses: ``~/.config/containers/registries.d``
when it exists, else ``/etc/containers/registries.d``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import inputs
from ..errors import Nix2AciError

SYSTEM_DIRECTORY = "/etc/containers/registries.d"
FILE_LIMIT = 1 << 20
# The current keys, then the older names containers/image still reads.
READ_KEYS = ("lookaside", "sigstore")
WRITE_KEYS = ("lookaside-staging", "sigstore-staging", "lookaside", "sigstore")


@dataclass(frozen=True)
class Stores:
    """The signature stores of one namespace (URLs, or None): where to read and where to write."""

    read: str | None
    write: str | None
    source: str  # the file and namespace they come from, for messages


def default_directory() -> str:
    """The registries.d directory containers/image reads for this user."""
    user = os.path.join(os.path.expanduser("~"), ".config", "containers", "registries.d")
    return user if os.path.isdir(user) else SYSTEM_DIRECTORY


def _load_yaml(path: str) -> object:
    """The YAML document of ``path``; one line naming it when it cannot be read or parsed."""
    import yaml  # PyYAML: only the publishing commands need it

    with inputs.open_input(path, "registries.d file") as file:
        text = file.read(FILE_LIMIT + 1)
    if len(text) > FILE_LIMIT:
        raise Nix2AciError(f"{path} is larger than {FILE_LIMIT} bytes")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise Nix2AciError(f"{path} is not YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:  # nesting deeper than PyYAML's recursive parser goes
        raise Nix2AciError(f"{path} nests YAML deeper than nix2aci reads") from None


def _stores(entry: object, source: str) -> Stores:
    """The :class:`Stores` of one namespace's mapping."""
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise Nix2AciError(f"{source}: must be a mapping of lookaside URLs")
    for key, value in entry.items():
        if key in WRITE_KEYS and not isinstance(value, str):
            raise Nix2AciError(f"{source}: {key} must be a URL string")
    read = next((entry[key] for key in READ_KEYS if entry.get(key)), None)
    write = next((entry[key] for key in WRITE_KEYS if entry.get(key)), None)
    return Stores(read, write, source)


def load(directory: str) -> tuple[dict[str, Stores], Stores | None]:
    """The namespaces of every ``*.yaml`` file of ``directory``, and the ``default-docker`` entry or None.

    A missing directory configures nothing; a namespace (or default-docker) defined twice is an error.
    """
    namespaces: dict[str, Stores] = {}
    default = None
    if not os.path.isdir(directory):
        return namespaces, default
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith(".yaml") or os.path.isdir(path):
            continue
        document = _load_yaml(path) or {}
        if not isinstance(document, dict):
            raise Nix2AciError(f"{path}: must be a mapping with docker: and default-docker:")
        docker = document.get("docker") or {}
        if not isinstance(docker, dict):
            raise Nix2AciError(f"{path}: docker: must map namespaces to lookaside URLs")
        for namespace, entry in docker.items():
            if namespace in namespaces:
                raise Nix2AciError(f"{path}: {namespace} is also configured in {namespaces[namespace].source}")
            namespaces[str(namespace)] = _stores(entry, f"{path} ({namespace})")
        if "default-docker" in document:
            if default is not None:
                raise Nix2AciError(f"{path}: default-docker is also configured in {default.source}")
            default = _stores(document["default-docker"], f"{path} (default-docker)")
    return namespaces, default


def scopes(reference: str) -> list[str]:
    """The namespaces of ``HOST/REPO[:TAG]`` from the most specific: itself, then each parent to ``HOST``."""
    found = [reference]
    name = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
    if name != reference:
        found.append(name)
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        found.append(name)
    return found


def stores_for(directory: str, reference: str) -> Stores | None:
    """The signature stores for the image ``HOST/REPO[:TAG]`` in ``directory``, or None when none is configured."""
    namespaces, default = load(directory)
    for scope in scopes(reference):
        if scope in namespaces:
            return namespaces[scope]
    return default

"""``nix2aci push IMAGE DEST``: copy an OCI image result to a registry (or Docker, podman's storage, a layout),
uploading only the blobs the destination lacks, and sign it the containers way (``--sign``).

PyYAML and python-gnupg are imported when the command runs: only publishing needs them.
"""

from __future__ import annotations

import argparse
import os

from .. import inputs
from ..errors import UsageError


def tls_verify(value: str) -> bool:
    """``--tls-verify=true|false``."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"--tls-verify takes true or false, not {value!r}")
    return value == "true"


def add_registry_options(command: argparse.ArgumentParser) -> None:
    """The options that say how to reach a registry, shared by push and verify."""
    command.add_argument("--registries.d", dest="registries_d", metavar="DIR", help="where signatures are kept")
    command.add_argument("--authfile", metavar="FILE", help="credentials (default: containers', REGISTRY_AUTH_FILE)")
    # None when not given (verified): postprocess refuses these options without --push, so it must tell.
    command.add_argument("--tls-verify", type=tls_verify, metavar="true|false", help="default: true")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``push`` and its options to the command line's ``subparsers``."""
    command = subparsers.add_parser("push", help="push an OCI image result to a registry, optionally signed")
    command.add_argument("--sign", action="store_true", help="sign it with the dedicated key (simple signing)")
    add_registry_options(command)
    command.add_argument("image", metavar="IMAGE", help="an OCI image layout or docker-archive result")
    command.add_argument(
        "destination",
        metavar="DEST",
        help="docker://HOST[:PORT]/REPO[:TAG], docker-daemon:NAME[:TAG], containers-storage:NAME[:TAG], "
        "oci:PATH[:TAG] or oci-archive:PATH[:TAG]; the tag defaults to the image's",
    )
    command.set_defaults(handler=handle)


def registry_options(options: argparse.Namespace, need_registries_d: bool):
    """The :class:`skopeo.Options` of the command line; the auth file must exist when named."""
    from ..distribution import publish, skopeo

    if options.authfile is not None and not os.path.isfile(options.authfile):
        raise UsageError(f"--authfile {options.authfile} is not a file")
    registries = publish.default_registries_d(options.registries_d) if need_registries_d else options.registries_d
    return skopeo.Options(options.authfile, options.tls_verify is not False, registries)


def handle(options: argparse.Namespace) -> int:
    """Push IMAGE to DEST (see :func:`push_image`)."""
    from ..distribution import reference

    destination = reference.parse_destination(options.destination)
    return push_image(options.image, destination, registry_options(options, options.sign), options.sign)


def push_image(image: str, destination, registry, sign: bool, named: str | None = None) -> int:
    """Push the image result ``image`` (a path) to ``destination`` (a checked :class:`reference.Destination`)
    with ``registry`` (:func:`registry_options`), signed when ``sign``; print where, the digest and the signer,
    naming the image ``named`` (default: ``image``, as the user gave it), escaped when unprintable (one line).
    Returns the exit status, 0: failures raise."""
    from ..distribution import publish, source

    pushed = publish.push(source.resolve(image), destination, registry, sign)
    name = inputs.shown(image if named is None else named)
    digest = f" {pushed.digest}" if pushed.digest else ""
    signed = f", signed by {pushed.signer}" if pushed.signer else ""
    unchanged = ", already there (nothing copied)" if pushed.unchanged else ""
    print(f"{name}: pushed to {pushed.destination}{digest}{signed}{unchanged}")
    for attached in pushed.attached:
        print(f"{name}: referrer {attached.digest} of {attached.subject}, listed by {attached.listed_by}")
    return 0

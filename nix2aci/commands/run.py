"""``nix2aci run IMAGE.aci``: run an image's app with runc, as root (see :mod:`nix2aci.run`)."""

from __future__ import annotations

import argparse

from ..errors import Nix2AciError, UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to the command line's ``subparsers``; its options when it is used (:func:`add_arguments`)."""
    subparsers.add_parser(
        "run",
        help="run an ACI's app with runc (as root)",
        description="Unpack IMAGE.aci into a private bundle and run its app with runc, as rkt would: "
        "ARGs after -- are appended to the image's exec; --exec replaces the executable and drops its arguments.",
        arguments=add_arguments,
    )


def add_arguments(command: argparse.ArgumentParser) -> None:
    """Add ``run``'s options to its parser ``command``: their choices are :mod:`nix2aci.run`'s."""
    from .. import run

    command.add_argument("--mounts-file", metavar="F", help="volumes as rkt flags, e.g. a thin image's .mounts")
    command.add_argument(
        "--volume", action="append", default=[], metavar="NAME,kind=host,source=PATH[,readOnly=true]",
        help="a host directory for the mountPoint NAME",
    )  # fmt: skip
    command.add_argument("--exec", metavar="PATH", help="run PATH instead of the image's exec")
    command.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set a variable")
    command.add_argument("--allow-setuid", action="store_true", help="run images with set-uid or set-gid files")
    insecure_help = "; ".join(f"{name}: {what}" for name, what in run.INSECURE_OPTIONS.items())
    command.add_argument(
        "--insecure-options", action="append", default=[], metavar="LIST",
        help=f"comma-separated protections to drop ({insecure_help}; all: every one)",
    )  # fmt: skip
    command.add_argument(
        "--caps-retain", metavar="CAP,...", help="the app's exact capability set, instead of the image's isolators"
    )
    command.add_argument("--caps-remove", metavar="CAP,...", help="capabilities taken away from the app's set")
    command.add_argument(
        "--net", choices=run.NETWORKS, default="none",
        help="none (default): a network namespace with only loopback; host: the host's network",
    )  # fmt: skip
    command.add_argument("image", metavar="IMAGE.aci")
    command.add_argument("args", nargs="*", metavar="ARG", help="appended to the app's exec (after --)")
    command.set_defaults(handler=handle)


def handle(options: argparse.Namespace) -> int:
    """Run an image's app with runc; its exit status is ours (128 + N when signal N stopped us before it ran)."""
    from .. import run

    env = []
    for assignment in options.env:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise Nix2AciError(f"--env {assignment!r}: write NAME=VALUE")
        env.append((name, value))
    volumes = run.read_mounts_file(options.mounts_file) if options.mounts_file else []
    volumes += [run.Volume.parse(text) for text in options.volume]
    request = run.RunRequest(
        image=options.image,
        args=tuple(options.args),
        exec=options.exec,
        env=tuple(env),
        volumes=tuple(volumes),
        allow_setuid=options.allow_setuid,
        insecure=_insecure_options(options.insecure_options),
        caps_retain=None if options.caps_retain is None else _capability_list("--caps-retain", options.caps_retain),
        caps_remove=() if options.caps_remove is None else _capability_list("--caps-remove", options.caps_remove),
        network=options.net,
    )
    try:
        return run.run(request)
    except run.StopSignal as stop:
        return 128 + stop.signal


def _comma_list(text: str) -> list[str]:
    """The non-empty items of a comma-separated flag value."""
    return [item for item in text.split(",") if item]


def _insecure_options(texts: list[str]) -> frozenset[str]:
    """The values of every --insecure-options flag; "all" stands for each of them."""
    from .. import run

    values = {item for text in texts for item in _comma_list(text)}
    unknown = sorted(values - set(run.INSECURE_OPTIONS) - {"all"})
    if unknown:
        allowed = ", ".join([*run.INSECURE_OPTIONS, "all"])
        raise UsageError(f"--insecure-options: unknown value {unknown[0]!r} (allowed: {allowed})")
    return frozenset(run.INSECURE_OPTIONS) if "all" in values else frozenset(values)


def _capability_list(flag: str, text: str) -> tuple[str, ...]:
    """The capability names of ``flag``'s value (CAP_... separated by commas)."""
    from ..appc.isolators import CAPABILITIES

    names = tuple(_comma_list(text))
    unknown = [name for name in names if name not in CAPABILITIES]
    if unknown or (flag == "--caps-retain" and not names):
        raise UsageError(f"{flag}: {unknown[0] if unknown else 'nothing'!r} is not a Linux capability name (CAP_...)")
    return names

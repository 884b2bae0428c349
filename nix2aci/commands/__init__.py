"""The ``nix2aci`` command: thin wrappers over the modules, one clear line per error.

Exit status, for every command:

- 0: success.
- 1: invalid input or a failed step (``run`` passes the app's status through).
- 2: a usage error: a bad option, or a file named on the command line (an image,
  manifest, keyring, signature) that does not exist or is not a regular file (a
  directory, FIFO, socket or device: refused at once, never read).
- 3: (``validate`` only) an input that could not be checked.

``validate`` judges what it is given: a missing PATH is a usage error (2, before
anything is checked); a directory given as a file kind, or a file given as a
directory kind, is invalid (1); a FIFO, socket or device is not checked (3). Of
several PATHs, the worst verdict decides: any invalid gives 1, else any not
checked gives 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import build_thin, inputs, inspect, run, validate
from ..appc.isolators import CAPABILITIES
from ..errors import Nix2AciError


class UsageError(Nix2AciError):
    """The command line names something that cannot be used (exit status 2, like argparse's errors)."""


# The exit status of each verdict of ``validate``, and which wins when several paths are checked.
_VALID, _INVALID, _NOT_CHECKED = 0, 1, 3
_WORST_FIRST = (_INVALID, _NOT_CHECKED, _VALID)


def _stat_problem(path: str) -> str | None:
    """Why ``path`` (links followed) names nothing to check ("X: No such file or directory"), or None."""
    try:
        os.stat(path)
    except OSError as error:
        return f"{inputs.shown(path)}: {error.strerror or error}"
    return None


def _validate(options: argparse.Namespace) -> int:
    """One line per problem, warning or verdict; the exit status of the worst input (invalid before not checked)."""
    unusable = [problem for problem in map(_stat_problem, options.paths) if problem]
    if unusable:
        raise UsageError(f"cannot use {', '.join(unusable)}")
    statuses = set()
    for path in options.paths:
        verdict = validate.check(path, options.type)
        shown = inputs.shown(path)
        for warning in verdict.warnings:
            print(f"{shown}: warning: {warning}")
        for problem in verdict.problems:
            print(f"{shown}: {problem}")
        if verdict.not_checked:
            print(f"{shown}: not checked: {verdict.not_checked}")
            statuses.add(_NOT_CHECKED)
        elif verdict.problems:
            statuses.add(_INVALID)
        else:
            print(f"{shown}: valid {verdict.kind}")
            statuses.add(_VALID)
    return next(status for status in _WORST_FIRST if status in statuses)


def _run(options: argparse.Namespace) -> int:
    """Run an image's app with runc; its exit status is ours (128 + N when signal N stopped us before it ran)."""
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
    values = {item for text in texts for item in _comma_list(text)}
    unknown = sorted(values - set(run.INSECURE_OPTIONS) - {"all"})
    if unknown:
        allowed = ", ".join([*run.INSECURE_OPTIONS, "all"])
        raise UsageError(f"--insecure-options: unknown value {unknown[0]!r} (allowed: {allowed})")
    return frozenset(run.INSECURE_OPTIONS) if "all" in values else frozenset(values)


def _capability_list(flag: str, text: str) -> tuple[str, ...]:
    """The capability names of ``flag``'s value (CAP_... separated by commas)."""
    names = tuple(_comma_list(text))
    unknown = [name for name in names if name not in CAPABILITIES]
    if unknown or (flag == "--caps-retain" and not names):
        raise UsageError(f"{flag}: {unknown[0] if unknown else 'nothing'!r} is not a Linux capability name (CAP_...)")
    return names


def _build_thin(options: argparse.Namespace) -> int:
    """Build a thin image of packages and link it into OUTDIR."""
    file = options.file or build_thin.default_file()
    links = build_thin.build_thin(options.name, options.binary, options.packages, file, options.outdir, options.force)
    for link in links:
        print(link)
    return 0


def _inspect(options: argparse.Namespace) -> int:
    """Print an image's manifest, ID, sizes and file count."""
    print(json.dumps(inspect.inspect(options.image), indent=2))
    return 0


# --- Signing (issue 5): sign, verify, postprocess. Imported lazily: only these need python-gnupg.


def _sign(options: argparse.Namespace) -> int:
    """Sign IMAGE.aci with the dedicated key into IMAGE.aci.asc, then verify it with the public key."""
    from ..signing import openpgp as signing

    gpg, key = signing.find_key(wanted=options.key)
    signer = signing.sign_and_verify(gpg, key, options.image)
    print(f"{signing.signature_path(options.image)}: signed by {signer.name} ({signer.fingerprint}), {signer.digest}")
    return 0


def _verify(options: argparse.Namespace) -> int:
    """Verify IMAGE.aci.asc with only a public keyring; name the signer."""
    from ..signing import openpgp as signing

    keyring = options.keyring or os.path.join(signing.default_home(), signing.PUBLIC_KEY_FILE)
    if not options.keyring and not os.path.isfile(keyring):
        raise Nix2AciError(f"no public keyring at {keyring}: pass --keyring pubkeys.gpg")
    signer = signing.verify_file(options.image, keyring, options.signature)
    print(f"{options.image}: good signature by {signer.name} ({signer.fingerprint}), {signer.digest}")
    return 0


def _prepare_signing_key(options: argparse.Namespace) -> int:
    """Create the dedicated signing key (scripts/prepare-signing-key); print how to trust it."""
    from ..signing import openpgp as signing

    home = os.path.abspath(options.home) if options.home else signing.default_home()
    key, public, retired = signing.prepare_key(
        home,
        options.name or signing.default_name(),
        options.email,
        bits=options.bits,
        protect=not options.no_protection,
        force=options.force,
    )
    if retired:
        print(f"moved the old key home to {retired}")
    print(f"signing key: {key.fingerprint} ({key.uid}), RSA-{options.bits}")
    print(f"key home:    {home}{' (no passphrase)' if options.no_protection else ''}")
    print(f"public key:  {public}")
    print("trust it in rkt for images whose name starts with NAME:")
    print(f"  sudo rkt trust --prefix=NAME {public}")
    print(f"  (rkt keeps it as /etc/rkt/trustedkeys/prefix.d/NAME/{key.fingerprint.lower()})")
    return 0


def _postprocess(options: argparse.Namespace) -> int:
    """Link, GC-root, sign and verify a build output's images (what postprocess.sh runs)."""
    from ..signing import postprocess

    return postprocess.main(options.store_output, options.outdir, sign=options.sign, force=options.force)


def _trust(options: argparse.Namespace) -> int:
    """Store the keys of PUBKEYS as trusted for a prefix or every image; show what was trusted, and where."""
    from ..signing import trust

    store = trust.store_to_write(options.system)
    for pubkeys in options.pubkeys:
        for key in trust.trust(pubkeys, options.prefix, store):
            scope = f"images named {options.prefix} or {options.prefix}/..." if options.prefix else "every image"
            print(f"trusted {key.fingerprint} ({key.uid}) for {scope}: {key.path}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(
        prog="nix2aci",
        description="Container images from Nix store closures.",
        epilog="Exit status: 0 success; 1 invalid input or a failed step (run: the app's status); 2 usage error, "
        "including a file argument that does not exist or is not a regular file (a directory, FIFO, socket or "
        "device is refused at once, never read); 3 (validate) an input that could not be checked.",
    )
    commands = top.add_subparsers(dest="command", required=True)

    validate_command = commands.add_parser(
        "validate",
        help="check images against the appc and OCI specs",
        description="Check each PATH: an ACI (tar, gzip, bzip2 or xz), an ACI manifest, an unpacked image layout, "
        "an OCI runtime bundle or an OCI image layout. Exit status: 0 all valid, 1 any invalid, "
        "2 usage error (a PATH does not exist: nothing is checked), 3 an input could not be checked and none is "
        "invalid (a FIFO, socket or device is not read: not checked).",
    )
    validate_command.add_argument("--type", choices=validate.KINDS, help="the kind of every PATH (default: detected)")
    validate_command.add_argument("paths", nargs="+", metavar="PATH")
    validate_command.set_defaults(handler=_validate)

    run_command = commands.add_parser(
        "run",
        help="run an ACI's app with runc (as root)",
        description="Unpack IMAGE.aci into a private bundle and run its app with runc, as rkt would: "
        "ARGs after -- are appended to the image's exec; --exec replaces the executable and drops its arguments.",
    )
    run_command.add_argument("--mounts-file", metavar="F", help="volumes as rkt flags, e.g. a thin image's .mounts")
    run_command.add_argument(
        "--volume", action="append", default=[], metavar="NAME,kind=host,source=PATH[,readOnly=true]",
        help="a host directory for the mountPoint NAME",
    )  # fmt: skip
    run_command.add_argument("--exec", metavar="PATH", help="run PATH instead of the image's exec")
    run_command.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set a variable")
    run_command.add_argument("--allow-setuid", action="store_true", help="run images with set-uid or set-gid files")
    insecure_help = "; ".join(f"{name}: {what}" for name, what in run.INSECURE_OPTIONS.items())
    run_command.add_argument(
        "--insecure-options", action="append", default=[], metavar="LIST",
        help=f"comma-separated protections to drop ({insecure_help}; all: every one)",
    )  # fmt: skip
    run_command.add_argument(
        "--caps-retain", metavar="CAP,...", help="the app's exact capability set, instead of the image's isolators"
    )
    run_command.add_argument("--caps-remove", metavar="CAP,...", help="capabilities taken away from the app's set")
    run_command.add_argument(
        "--net", choices=run.NETWORKS, default="none",
        help="none (default): a network namespace with only loopback; host: the host's network",
    )  # fmt: skip
    run_command.add_argument("image", metavar="IMAGE.aci")
    run_command.add_argument("args", nargs="*", metavar="ARG", help="appended to the app's exec (after --)")
    run_command.set_defaults(handler=_run)

    inspect_command = commands.add_parser(
        "inspect",
        help="show an ACI's manifest, image ID, sizes and file count",
        description="Check IMAGE.aci as validate does and print its manifest, image ID, sizes and file count as "
        "JSON, from one read of the file. Exit status: 0 shown, 1 invalid or not checkable, 2 IMAGE does not exist "
        "or is not a regular file.",
    )
    inspect_command.add_argument("image", metavar="IMAGE.aci")
    inspect_command.set_defaults(handler=_inspect)

    thin = commands.add_parser(
        "build-thin",
        help="build a thin ACI of packages with nix-build",
        description="Build a thin ACI named NAME of the packages PKG... of the package set, running the program "
        "BINARY found in their merged profile; leave OUTDIR/NAME.aci and OUTDIR/NAME.mounts.",
    )
    thin.add_argument("--file", "-f", help="nix2aci's default.nix (default: $NIX2ACI_FILE, else this checkout's)")
    thin.add_argument("--outdir", default="ACIs", help="where the links go (default: ./ACIs)")
    thin.add_argument("--force", action="store_true", help="replace files or links of yours at NAME.aci, NAME.mounts")
    thin.add_argument("name", metavar="NAME")
    thin.add_argument("binary", metavar="BINARY")
    thin.add_argument("packages", nargs="+", metavar="PKG")
    thin.set_defaults(handler=_build_thin)

    # --- Signing (issue 5)
    sign = commands.add_parser("sign", help="sign an ACI with the dedicated key (IMAGE.aci.asc)")
    sign.add_argument("--key", help="fingerprint or user id (default: $NIX2ACI_SIGNING_KEY)")
    sign.add_argument("image", metavar="IMAGE.aci")
    sign.set_defaults(handler=_sign)

    verify = commands.add_parser("verify", help="verify IMAGE.aci.asc with only a public key, as a consumer would")
    verify.add_argument("--keyring", metavar="pubkeys.gpg", help="armored public keys (default: the key home's)")
    verify.add_argument("--signature", metavar="SIG.asc", help="default: IMAGE.aci.asc")
    verify.add_argument("image", metavar="IMAGE.aci")
    verify.set_defaults(handler=_verify)

    prepare = commands.add_parser(
        "prepare-signing-key", help="create the dedicated GnuPG key nix2aci signs images with"
    )
    prepare.add_argument("--home", help="the GnuPG home (default: $NIX2ACI_GNUPGHOME or ~/.config/nix2aci/gnupg)")
    prepare.add_argument("--name", help="the key's user id name")
    prepare.add_argument("--email", help="the key's user id email")
    prepare.add_argument("--bits", type=int, choices=(3072, 4096), default=3072, help="RSA key size")
    prepare.add_argument(
        "--no-protection", action="store_true", help="no passphrase (CI, tests): whoever reads the home can sign"
    )
    prepare.add_argument("--force", action="store_true", help="replace an existing key (the old home is moved aside)")
    prepare.set_defaults(handler=_prepare_signing_key)

    post = commands.add_parser("postprocess", help="link, GC-root, sign and verify a build's images (postprocess.sh)")
    post.add_argument("--no-sign", dest="sign", action="store_false", help="only link (mkACI sign = false)")
    post.add_argument("--force", action="store_true", help="replace files or links of yours at the images' names")
    post.add_argument("--build-output", dest="store_output", metavar="STORE_DIR", required=True, help="a build output")
    post.add_argument("outdir", nargs="?", metavar="OUTDIR", help="where the links go (default: ./ACIs)")
    post.set_defaults(handler=_postprocess)

    trust_command = commands.add_parser(
        "trust",
        help="trust the public keys in PUBKEYS to sign images (rkt's trust store)",
        description="Store each public key of PUBKEYS (armored) as trusted to sign images named NAME or NAME/... "
        "(--prefix) or every image (--root), in /etc/nix2aci/trustedkeys (as root) or "
        "${XDG_CONFIG_HOME:-~/.config}/nix2aci/trustedkeys; $NIX2ACI_TRUSTED_KEYS replaces both.",
    )
    scope = trust_command.add_mutually_exclusive_group(required=True)
    scope.add_argument("--prefix", metavar="NAME", help="an image name (AC identifier) or a parent of image names")
    scope.add_argument("--root", dest="prefix", action="store_const", const=None, help="trust for every image")
    where = trust_command.add_mutually_exclusive_group()
    where.add_argument("--system", dest="system", action="store_const", const=True, help="/etc/nix2aci/trustedkeys")
    where.add_argument("--user", dest="system", action="store_const", const=False, help="the per-user store")
    trust_command.add_argument("pubkeys", nargs="+", metavar="PUBKEYS")
    trust_command.set_defaults(handler=_trust, system=None)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    # Paths and member names need not be UTF-8: show such bytes escaped rather than fail.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    options = parser().parse_args(argv)
    try:
        return options.handler(options)
    except (UsageError, inputs.InputError) as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 2
    except Nix2AciError as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``nix2aci inspect X | head``): not an error of ours.
        sys.stderr.close()
        return 0
    except OSError as error:
        # The last resort for a file operation that failed where no step said what it was doing: one line.
        where = f": {inputs.shown(error.filename)}" if isinstance(error.filename, str) else ""
        print(f"nix2aci: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1

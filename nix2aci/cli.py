"""The ``nix2aci`` command: thin wrappers over the modules, one clear line per error.

Exit status: 0 success; 1 invalid input or a failed step (``run`` passes the
app's status through); 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys

from . import aci, run
from .errors import Nix2AciError


def _validate(options: argparse.Namespace) -> int:
    """Print one line per problem of each image; 0 when all are valid."""
    status = 0
    for path in options.images:
        _manifest, problems = aci.validate_archive(path)
        for problem in problems:
            print(f"{path}: {problem}" if not str(problem).startswith(path) else str(problem))
        if problems:
            status = 1
        else:
            print(f"{path}: valid ACI")
    return status


def _run(options: argparse.Namespace) -> int:
    env = {}
    for assignment in options.env:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise Nix2AciError(f"--env {assignment!r}: write NAME=VALUE")
        env[name] = value
    return run.run(options.image, options.args, env)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="nix2aci", description="Container images from Nix store closures.")
    commands = top.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check ACIs against the appc spec")
    validate.add_argument("images", nargs="+", metavar="IMAGE.aci")
    validate.set_defaults(handler=_validate)

    run_command = commands.add_parser("run", help="run an ACI's app with runc (as root)")
    run_command.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set a variable")
    run_command.add_argument("image", metavar="IMAGE.aci")
    run_command.add_argument("args", nargs="*", metavar="ARG", help="appended to the app's exec (after --)")
    run_command.set_defaults(handler=_run)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    options = parser().parse_args(argv)
    try:
        return options.handler(options)
    except Nix2AciError as error:
        print(f"nix2aci: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

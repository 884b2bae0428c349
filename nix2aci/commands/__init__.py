"""The ``nix2aci`` command: thin wrappers over the modules, one clear line per error.

Exit status, for every command:

- 0: success.
- 1: invalid input or a failed step (``run`` passes the app's status through).
- 2: a usage error: a bad option, or a file named on the command line (an image,
  manifest, keyring, signature) that does not exist or is not a regular file (a
  directory, FIFO, socket or device: refused at once, never read).
- 3: (``validate`` only) an input that could not be checked.

Each subcommand is one module of this package, which adds its own parser
(``add_parser``) and handles its options (``handle``); :func:`parser` is a loop
over :data:`COMMANDS`. The command line runs outside Nix: the builder
(:mod:`nix2aci.build`) never imports it.

Startup loads only what the command given needs: the command modules import
their heavy modules inside ``handle``, and a parser whose options need one (a
list of choices) adds them only when it is used (``arguments=``), so that
``nix2aci push`` does not load the image checkers of ``validate``.
"""

from __future__ import annotations

import argparse
import sys

from .. import inputs
from ..errors import Nix2AciError, UsageError
from . import (
    build_thin,
    inspect,
    policy,
    postprocess,
    prepare_signing_key,
    push,
    run,
    sbom,
    sign,
    trust,
    validate,
    verify,
)

# The subcommands, in the order ``nix2aci --help`` lists them.
COMMANDS = (
    validate,
    run,
    inspect,
    sbom,
    build_thin,
    sign,
    verify,
    prepare_signing_key,
    postprocess,
    trust,
    push,
    policy,
)


class OneLineErrors(argparse.ArgumentParser):
    """argparse, with a bad option or operand told in one line, as every other error (``--help`` for the usage).

    ``arguments``: a function adding the parser's options, called when the parser is first used rather than
    when it is made (the options of one subcommand may need modules the others do not load).
    """

    def __init__(self, *args, arguments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._arguments = arguments

    def parse_known_args(self, args=None, namespace=None):
        """Add the deferred options, once, then parse as argparse does."""
        if self._arguments is not None:
            arguments, self._arguments = self._arguments, None
            arguments(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        """Print ``PROG: error: MESSAGE (PROG --help)`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    """The command line: each module of :data:`COMMANDS` adds its subcommand."""
    top = OneLineErrors(
        prog="nix2aci",
        description="Container images from Nix store closures.",
        epilog="Exit status: 0 success; 1 invalid input or a failed step (run: the app's status); 2 usage error, "
        "including a file argument that does not exist or is not a regular file (a directory, FIFO, socket or "
        "device is refused at once, never read); 3 (validate) an input that could not be checked.",
    )
    subparsers = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
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

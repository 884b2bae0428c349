"""``nix2aci validate PATH...``: check images against the appc and OCI specs (see :mod:`nix2aci.validate`).

``validate`` judges what it is given: a missing PATH is a usage error (2, before
anything is checked); a directory given as a file kind, or a file given as a
directory kind, is invalid (1); a FIFO, socket or device is not checked (3). Of
several PATHs, the worst verdict decides: any invalid gives 1, else any not
checked gives 3.
"""

from __future__ import annotations

import argparse
import os

from .. import inputs
from ..errors import UsageError

# The exit status of each verdict of ``validate``, and which wins when several paths are checked.
_VALID, _INVALID, _NOT_CHECKED = 0, 1, 3
_WORST_FIRST = (_INVALID, _NOT_CHECKED, _VALID)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the command line's ``subparsers``; its options when it is used (:func:`add_arguments`)."""
    subparsers.add_parser("validate", help="check images against the appc and OCI specs", arguments=add_arguments)


def add_arguments(command: argparse.ArgumentParser) -> None:
    """Add ``validate``'s description and options to its parser ``command``: they name the checkers' kinds."""
    from .. import validate
    from ..aci.members import COMPRESSIONS

    command.description = (
        f"Check each PATH: an ACI (tar, {COMPRESSIONS.listed()}), an ACI manifest, "
        "an unpacked image layout, an OCI runtime bundle, an OCI image layout or a docker-archive "
        "(an uncompressed tar not named .aci, or a directory holding exactly one). Exit status: 0 all valid, "
        "1 any invalid, 2 usage error (a PATH does not exist: nothing is checked), "
        "3 an input could not be checked and none is invalid (a FIFO, socket or device is not read: not checked)."
    )
    command.add_argument("--type", choices=validate.KINDS, help="the kind of every PATH (default: detected)")
    command.add_argument("paths", nargs="+", metavar="PATH")
    command.set_defaults(handler=handle)


def _stat_problem(path: str) -> str | None:
    """Why ``path`` (links followed) names nothing to check ("X: No such file or directory"), or None."""
    try:
        os.stat(path)
    except OSError as error:
        return f"{inputs.shown(path)}: {error.strerror or error}"
    return None


def handle(options: argparse.Namespace) -> int:
    """One line per problem, warning or verdict; the exit status of the worst input (invalid before not checked)."""
    from .. import validate

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

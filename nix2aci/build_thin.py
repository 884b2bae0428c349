"""``nix2aci build-thin``: the original's buildThinACI workflow from the command line.

Input: an image name, the name of the program to run, and attribute names of
packages in the active package set (``pkgs`` of a nix2aci ``default.nix``).
Output: ``OUTDIR/NAME.aci`` and ``OUTDIR/NAME.mounts``, links into the build
output, which ``OUTDIR/.NAME-result`` (made by ``nix-build -o``) keeps from the
garbage collector. It replaces only what it made (:mod:`nix2aci.signing.atomic`):
anything else at those names is the user's, replaced with ``--force`` only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

from .errors import Nix2AciError
from .signing import atomic

# The thin image of the named packages, running /bin/BINARY or /sbin/BINARY.
EXPRESSION = """
{ file, name, packages, program }:
let n = import file { };
in n.lib.mkACI {
  packages = map (attribute: n.pkgs.${attribute}) (builtins.filter builtins.isString (builtins.split " " packages));
  inherit name;
  thin = true;
  exec = [ program ];
}
"""

# What each named attribute of the package set is: "derivation", "missing", or its type ("set", "string"...).
KINDS = """
{ file, packages }:
let
  pkgs = (import file { }).pkgs;
  kind = attribute:
    if !(pkgs ? ${attribute}) then "missing"
    else if (pkgs.${attribute}.type or null) == "derivation" then "derivation"
    else builtins.typeOf pkgs.${attribute};
in map kind (builtins.filter builtins.isString (builtins.split " " packages))
"""
# A Nix attribute name that needs no quoting (what the expressions above can look up).
ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")


def default_file() -> str:
    """The ``default.nix`` of ``$NIX2ACI_FILE``, else of the nix2aci checkout this module is in."""
    file = os.environ.get("NIX2ACI_FILE") or str(Path(__file__).resolve().parent.parent / "default.nix")
    if not os.path.exists(file):
        raise Nix2AciError(f"{file} does not exist: pass --file with nix2aci's default.nix")
    return file


def _nix_build(arguments: list[str]) -> list[str]:
    """Run nix-build; return the output paths it prints, or raise with its last error line."""
    result = subprocess.run(["nix-build", *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
        raise Nix2AciError(f"nix-build failed: {errors[-1] if errors else 'no output'}")
    return result.stdout.split()


def find_program(binary: str, package_paths: dict[str, str]) -> str:
    """``/bin/BINARY`` or ``/sbin/BINARY``: where the merged profile has the program."""
    for directory in ("bin", "sbin"):
        for path in package_paths.values():
            if os.path.exists(os.path.join(path, directory, binary)):
                return f"/{directory}/{binary}"
    raise Nix2AciError(f"none of the packages {', '.join(package_paths)} has bin/{binary} or sbin/{binary}")


def check_packages(packages: list[str], file: str) -> None:
    """Raise one line unless every name of ``packages`` is a derivation (a package) of ``file``'s package set."""
    for package in packages:
        if not ATTRIBUTE.fullmatch(package):
            raise Nix2AciError(f"PKG {package!r} is not an attribute name of the package set (letters, digits, _ ' -)")
    command = ["nix-instantiate", "--eval", "--strict", "--json", "-E", KINDS, "--argstr", "file", file]
    result = subprocess.run([*command, "--argstr", "packages", " ".join(packages)], capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
        raise Nix2AciError(f"cannot evaluate the package set of {file}: {errors[-1] if errors else 'no output'}")
    for package, kind in zip(packages, json.loads(result.stdout), strict=True):
        if kind == "missing":
            raise Nix2AciError(f"PKG {package!r} is not in the package set (pkgs of {file})")
        if kind != "derivation":
            raise Nix2AciError(f"PKG {package!r} is a {kind}, not a package (a derivation) of the package set")


def _prepare_result_link(result: str, force: bool) -> None:
    """Make way for ``nix-build -o RESULT``: it may replace only its own link (a link into the store).

    With ``force``, a file or foreign link of the user's there is removed (nix-build would refuse it).
    """
    if force and os.path.lexists(result) and not atomic.made_by_nix2aci(result) and not os.path.isdir(result):
        os.unlink(result)


def build_thin(
    name: str, binary: str, packages: list[str], file: str, outdir: str, force: bool = False
) -> tuple[str, str]:
    """Build the thin image; return the paths of ``OUTDIR/NAME.aci`` and ``OUTDIR/NAME.mounts``.

    Refuses, before building, to replace anything at those names (or at
    ``OUTDIR/.NAME-result``) that nix2aci did not make, unless ``force``. When
    the image changes, the ``NAME.aci.asc`` next to the old link goes (it signed
    that image).
    """
    if not packages:
        raise Nix2AciError("name at least one package")
    if "/" in name or name.startswith(".") or not name:
        raise Nix2AciError(f"NAME {name!r} names files in {outdir}: use no '/' and no leading '.'")
    file = os.path.abspath(file)
    result = os.path.join(outdir, f".{name}-result")
    links = (os.path.join(outdir, f"{name}.aci"), os.path.join(outdir, f"{name}.mounts"))
    atomic.refuse_foreign([result, *links], force)
    check_packages(packages, file)
    built = _nix_build([file, "--no-out-link", *(argument for p in packages for argument in ("-A", f"pkgs.{p}"))])
    if len(built) != len(packages):
        # A package with several outputs (out, dev, ...) gives several paths.
        raise Nix2AciError(f"nix-build gave {len(built)} paths for {len(packages)} packages: name one-output packages")
    program = find_program(binary, dict(zip(packages, built, strict=True)))
    os.makedirs(outdir, exist_ok=True)
    previous_image = os.path.realpath(links[0]) if atomic.made_by_nix2aci(links[0]) else None
    _prepare_result_link(result, force)
    arguments = {"file": file, "name": name, "packages": " ".join(packages), "program": program}
    (output,) = _nix_build(
        ["-E", EXPRESSION, "-o", result, *(x for key, value in arguments.items() for x in ("--argstr", key, value))]
    )
    (image,) = [entry for entry in os.listdir(output) if entry.endswith(".aci")]
    atomic.replace_symlink(links[0], os.path.join(f".{name}-result", image))
    atomic.replace_symlink(links[1], os.path.join(f".{name}-result", image.removesuffix(".aci") + ".mounts"))
    if previous_image is not None and previous_image != os.path.realpath(links[0]):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(links[0] + ".asc")
    return links

"""``nix2aci build-thin``: the original's buildThinACI workflow from the command line.

Input: an image name, the name of the program to run, and attribute names of
packages in the active package set (``pkgs`` of a nix2aci ``default.nix``).
Output: ``OUTDIR/NAME.aci`` and ``OUTDIR/NAME.mounts``, links into the build
output, which ``OUTDIR/.NAME-result`` (made by ``nix-build -o``) keeps from the
garbage collector.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import Nix2AciError

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


def _link(target: str, link: str) -> None:
    """Make ``link`` point at ``target``, replacing an older link in one rename."""
    temporary = f"{link}.tmp-{os.getpid()}"
    os.symlink(target, temporary)
    os.replace(temporary, link)


def build_thin(name: str, binary: str, packages: list[str], file: str, outdir: str) -> tuple[str, str]:
    """Build the thin image; return the paths of ``OUTDIR/NAME.aci`` and ``OUTDIR/NAME.mounts``."""
    if not packages:
        raise Nix2AciError("name at least one package")
    if "/" in name or name.startswith("."):
        raise Nix2AciError(f"NAME {name!r} names files in {outdir}: use no '/' and no leading '.'")
    file = os.path.abspath(file)
    built = _nix_build([file, "--no-out-link", *(argument for p in packages for argument in ("-A", f"pkgs.{p}"))])
    program = find_program(binary, dict(zip(packages, built, strict=True)))
    os.makedirs(outdir, exist_ok=True)
    result = os.path.join(outdir, f".{name}-result")
    arguments = {"file": file, "name": name, "packages": " ".join(packages), "program": program}
    (output,) = _nix_build(
        ["-E", EXPRESSION, "-o", result, *(x for key, value in arguments.items() for x in ("--argstr", key, value))]
    )
    (image,) = [entry for entry in os.listdir(output) if entry.endswith(".aci")]
    links = (os.path.join(outdir, f"{name}.aci"), os.path.join(outdir, f"{name}.mounts"))
    _link(os.path.join(f".{name}-result", image), links[0])
    _link(os.path.join(f".{name}-result", image.removesuffix(".aci") + ".mounts"), links[1])
    return links

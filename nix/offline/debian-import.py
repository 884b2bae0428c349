"""Builder of nix/offline/debian.nix: the host files of Debian packages -> one store path.

Runs as a derivation's builder, with the host's /usr/bin/python3 and patchelf reached
through the sandbox's /usr. The environment variable ``NIX2ACI_IMPORT_SPEC`` (JSON) says:

- kind: "program" (the packages' trees, /usr stripped) or "library" (only the shared
  libraries, flat in $out/lib, as nixpkgs lays out a library);
- sources: store paths of the packages' host files, each a copy of the host's tree
  (usr/..., and lib/... on a host without merged /usr);
- dependencies: the library store paths whose lib/ may go into an rpath;
- loader: the dynamic loader that executables get as interpreter (a library package
  that ships the loader, libc6, uses its own);
- loaderName, triplet: the platform's loader file name and multiarch directory.

Nothing in the output may point at the host: the interpreter and rpath of every ELF
file are rewritten, absolute symlinks are redirected into $out or dropped, and
``#!`` lines that name a program of $out are rewritten to its store path.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys

SHARED_LIBRARY = re.compile(r".*\.so(\.[^/]*)?$")


class ImportProblem(Exception):
    """A problem that is reported as the build's error message."""


def patchelf(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["patchelf", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ImportProblem(f"patchelf {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def walk(top: str):
    """Every path under top, sorted, directories before their contents; links not followed."""
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        yield path
        if os.path.isdir(path) and not os.path.islink(path):
            yield from walk(path)


def copy_entry(source: str, target: str) -> None:
    """Copy one file or symlink; a second package may ship the same file, not a different one."""
    if os.path.lexists(target):
        if os.path.islink(source) and os.path.islink(target) and os.readlink(source) == os.readlink(target):
            return
        if (
            os.path.isfile(source)
            and os.path.isfile(target)
            and not os.path.islink(target)
            and filecmp.cmp(source, target, shallow=False)
        ):
            return
        raise ImportProblem(f"two packages ship different files at {target}")
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    else:
        shutil.copyfile(source, target)
        executable = os.stat(source).st_mode & 0o111
        os.chmod(target, 0o755 if executable else 0o644)


def merge_tree(source: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    for path in walk(source):
        destination = os.path.join(target, os.path.relpath(path, source))
        if os.path.isdir(path) and not os.path.islink(path):
            os.makedirs(destination, exist_ok=True)
        else:
            copy_entry(path, destination)


def copy_program(sources: list[str], out: str) -> None:
    """The packages' trees with /usr stripped: usr/bin/x -> bin/x, lib/y (no merged /usr) -> lib/y."""
    for source in sources:
        for top in sorted(os.listdir(source)):
            path = os.path.join(source, top)
            merge_tree(path, out if top == "usr" else os.path.join(out, top))


def library_entries(sources: list[str], triplet: str) -> dict[str, list[tuple[str, str]]]:
    """file name -> [(path in a source, its path on the host)] of the shared libraries in
    the loader's default directories."""
    entries: dict[str, list[tuple[str, str]]] = {}
    for source in sources:
        for prefix in ("usr", ""):
            for directory in ("lib", f"lib/{triplet}", "lib64"):
                relative = os.path.join(prefix, directory) if prefix else directory
                found = os.path.join(source, relative)
                if not os.path.isdir(found) or os.path.islink(found):
                    continue
                for name in sorted(os.listdir(found)):
                    path = os.path.join(found, name)
                    if SHARED_LIBRARY.match(name) and not (os.path.isdir(path) and not os.path.islink(path)):
                        entries.setdefault(name, []).append((path, "/" + os.path.join(relative, name)))
    return entries


def copy_library(sources: list[str], out: str, triplet: str) -> None:
    """The shared libraries flat in $out/lib. A real file wins over a link of the same
    name (Debian's /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/...); a link to
    another library becomes a relative link to its flat name; any other link goes."""
    lib = os.path.join(out, "lib")
    os.makedirs(lib)
    entries = library_entries(sources, triplet)
    for name, found in sorted(entries.items()):
        files = [path for path, _host in found if not os.path.islink(path)]
        if files:
            for path in files:
                copy_entry(path, os.path.join(lib, name))
            continue
        path, host = found[0]
        target = os.readlink(path)
        resolved = target if target.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(host), target))
        base = os.path.basename(resolved)
        if base != name and base in entries:
            os.symlink(base, os.path.join(lib, name))


def in_output(out: str, host_path: str) -> str:
    """Where a host path lands in $out: /usr/x and /x (merged /usr) -> $out/x."""
    relative = host_path[len("/usr/") :] if host_path.startswith("/usr/") else host_path.lstrip("/")
    return os.path.join(out, relative)


def inside(out: str, path: str) -> bool:
    return path == out or path.startswith(out + "/")


def fix_symlinks(out: str) -> list[str]:
    """Absolute links point into $out (relative links), or go when their target is not
    imported; links that dangle or leave $out go too. Returns what was dropped."""
    dropped = []
    for path in walk(out):
        if os.path.islink(path):
            target = os.readlink(path)
            if target.startswith("/"):
                os.unlink(path)
                os.symlink(os.path.relpath(in_output(out, target), os.path.dirname(path)), path)
    # realpath follows whole chains, so one sweep finds every link that ends outside.
    for path in walk(out):
        if os.path.islink(path):
            resolved = os.path.realpath(path)
            if not inside(out, resolved) or not os.path.exists(resolved):
                dropped.append(os.path.relpath(path, out))
                os.unlink(path)
    return dropped


def is_elf(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"\x7fELF"


def library_dirs(out: str, kind: str, triplet: str) -> list[str]:
    """The package's own directories of shared libraries, searched before the dependencies."""
    candidates = ["lib"] if kind == "library" else ["lib", f"lib/{triplet}", "lib64"]
    return [os.path.join(out, directory) for directory in candidates if os.path.isdir(os.path.join(out, directory))]


def expand_origin(entry: str, path: str) -> str:
    return entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", os.path.dirname(path))


def patch_elf(path: str, out: str, spec: dict, own_dirs: list[str]) -> list[str]:
    """Rewrite interpreter and rpath of one ELF file; return the needed libraries that no
    rpath directory provides."""
    kind, loader_name = spec["kind"], spec["loaderName"]
    needed_result = patchelf("--print-needed", path, check=False)
    if needed_result.returncode != 0:
        return []  # static: no dynamic section, nothing to rewrite
    if patchelf("--print-interpreter", path, check=False).returncode == 0:
        # Executables, and the libraries that can be run too (libc.so.6 prints its version).
        loader = spec["loader"]
        if kind == "library" and os.path.exists(os.path.join(out, "lib", loader_name)):
            loader = os.path.join(out, "lib", loader_name)  # libc6 ships the loader itself
        if loader is None:
            raise ImportProblem(f"{os.path.relpath(path, out)} has an interpreter, but no loader was given")
        patchelf("--set-interpreter", loader, path)
    # The loader is always loaded already (it is the program's interpreter), so it is
    # not looked up: libc.so.6, which needs only the loader, gets no rpath.
    needed = [name for name in needed_result.stdout.split() if name != loader_name]
    old = [entry for entry in patchelf("--print-rpath", path).stdout.strip().split(":") if entry]
    kept = []
    for entry in old:
        if "$ORIGIN" in entry or "${ORIGIN}" in entry:
            kept.append(entry)
        elif entry.startswith("/") and kind == "program" and os.path.isdir(in_output(out, entry)):
            kept.append(in_output(out, entry))  # a private directory of the package itself
    if not needed:
        if old:
            patchelf("--remove-rpath", path)
        return []
    candidates = kept + own_dirs + [os.path.join(dependency, "lib") for dependency in spec["dependencies"]]
    patchelf("--set-rpath", ":".join(candidates), path)
    patchelf("--shrink-rpath", path)
    final = [entry for entry in patchelf("--print-rpath", path).stdout.strip().split(":") if entry]
    if not final:
        patchelf("--remove-rpath", path)
    directories = [expand_origin(entry, path) for entry in final]
    return [name for name in needed if not any(os.path.exists(os.path.join(d, name)) for d in directories)]


def patch_shebang(path: str, out: str) -> None:
    """#!/usr/bin/python3 -> #!$out/bin/python3 when $out has that program."""
    with open(path, "rb") as file:
        content = file.read()
    if not content.startswith(b"#!"):
        return
    line, newline, rest = content.partition(b"\n")
    match = re.match(rb"#!\s*(/\S+)(.*)", line)
    if match is None:
        return
    interpreter = match.group(1).decode(errors="surrogateescape")
    candidate = in_output(out, interpreter)
    if os.path.exists(candidate) and inside(out, os.path.realpath(candidate)):
        with open(path, "wb") as file:
            file.write(b"#!" + candidate.encode() + match.group(2) + newline + rest)


def remove_empty_directories(out: str) -> None:
    for path in reversed(list(walk(out))):
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            os.rmdir(path)


def build(spec: dict, out: str) -> None:
    kind = spec["kind"]
    if kind == "program":
        copy_program(spec["sources"], out)
    else:
        copy_library(spec["sources"], out, spec["triplet"])
    for link in fix_symlinks(out):
        print(f"debian-import: dropped {link}: its target is not imported", file=sys.stderr)
    own_dirs = library_dirs(out, kind, spec["triplet"])
    unresolved = []
    for path in walk(out):
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        if is_elf(path):
            if os.path.basename(path) == spec["loaderName"]:
                continue  # ld.so itself is never touched
            missing = patch_elf(path, out, spec, own_dirs)
            unresolved += [f"{os.path.relpath(path, out)} needs {name}" for name in missing]
        elif kind == "program" and os.stat(path).st_mode & 0o111:
            patch_shebang(path, out)
    remove_empty_directories(out)
    if unresolved and kind == "program":
        raise ImportProblem(
            "no dependency provides: "
            + "; ".join(unresolved)
            + ". Install the Debian package that ships it and list it in the program's Depends"
        )
    # A library may need one that it cannot refer to (libgcc-s1 and libc6 need each
    # other): the loader finds it by soname, already loaded by the program.
    for problem in unresolved:
        print(f"debian-import: {problem}, left to the program that loads it", file=sys.stderr)


def main() -> int:
    try:
        # $out is the name Nix gives the output path.
        build(json.loads(os.environ["NIX2ACI_IMPORT_SPEC"]), os.environ["out"])  # noqa: SIM112
    except ImportProblem as error:
        print(f"debian-import: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

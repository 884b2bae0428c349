"""The package's rooms and their walls: what the Nix sandbox loads, which packages may import which,
and the command line made of one module per subcommand (README "Layout")."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, nix2aci, run

PACKAGE = REPO / "nix2aci"
# The entry point the derivations run (nix/builder.nix): all it loads runs inside the sandbox.
SANDBOX_ENTRY = "nix2aci.build.main"
# What a build may load from nix2aci: the builder, the archive and format packages, the shared modules.
SANDBOX_ROOMS = ("nix2aci.build", "nix2aci.archive", "nix2aci.aci", "nix2aci.oci", "nix2aci.appc")
SHARED = ("nix2aci", "nix2aci.errors", "nix2aci.schema", "nix2aci.inputs")
# What runs only outside Nix: a build never loads it.
USER_SIDE = (
    "nix2aci.commands",
    "nix2aci.signing",
    "nix2aci.distribution",
    "nix2aci.run",
    "nix2aci.validate",
    "nix2aci.inspect",
    "nix2aci.build_thin",
    "nix2aci.aci.unpack",
)
# The third-party packages the sandbox has (Debian's python3-attr and python3-jsonschema).
SANDBOX_LIBRARIES = ("attr", "attrs", "jsonschema")
# The third-party packages a build loads only when it uses them, each imported by one module, inside a
# function: zstd's (python3-zstandard), for zstd layers.
LAZY_LIBRARIES = {"zstandard": "nix2aci.archive.compression"}
# The output formats: none imports another.
FORMATS = {"nix2aci.aci": ("nix2aci.oci",), "nix2aci.oci": ("nix2aci.aci", "nix2aci.appc")}

# Loads the entry point in a fresh isolated interpreter with this checkout first on sys.path, after
# attrs and jsonschema, so that what it adds is the builder's own imports whatever those libraries need.
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import attrs, jsonschema
libraries = set(sys.modules)
import nix2aci, importlib
importlib.import_module(sys.argv[2])
print(json.dumps({"package": nix2aci.__file__, "libraries": sorted(libraries), "loaded": sorted(sys.modules)}))
"""


def within(module: str, rooms: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``rooms`` or inside one of them."""
    return any(module == room or module.startswith(room + ".") for room in rooms)


def module_name(path: Path) -> str:
    """The dotted name of a source file of the package (``nix2aci/aci/build.py`` -> ``nix2aci.aci.build``)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[str]:
    """Every module a source file names in an import, at any depth (lazy imports in functions too).

    ``from X import y`` yields X and X.y (y may be a submodule); relative imports are resolved.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imported_at_import_time(path: Path) -> Iterator[str]:
    """The top-level names of the modules a source file imports when it is loaded: outside its functions."""
    pending: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield (node.module or "").split(".")[0]
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """{module of nix2aci: the modules it imports}, read from the source files."""
    return {module_name(path): set(imported(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def test_a_build_loads_only_the_standard_library_attrs_and_jsonschema() -> None:
    probe = run([sys.executable, "-I", "-c", PROBE, str(REPO), SANDBOX_ENTRY]).stdout
    report = json.loads(probe)
    assert report["package"] == str(PACKAGE / "__init__.py")  # this checkout, not an installed copy
    loaded = report["loaded"]
    added = sorted(set(loaded) - set(report["libraries"]))
    foreign = [
        module
        for module in added
        if module.split(".")[0] not in sys.stdlib_module_names and not within(module, SANDBOX_ROOMS + SHARED)
    ]
    assert foreign == [], "the builder loads modules other than the standard library, attrs and jsonschema"
    assert [module for module in loaded if within(module, USER_SIDE) or module.split(".")[0] == "gnupg"] == []
    assert SANDBOX_ENTRY in loaded


def test_the_builder_reaches_no_user_side_code_even_through_lazy_imports() -> None:
    graph = import_graph()
    reached, todo = set(), [SANDBOX_ENTRY]
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        # Importing a module runs its packages' __init__ first.
        parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
        todo += [name for name in [*graph[module], *parents] if name in graph]
    assert sorted(module for module in reached if within(module, USER_SIDE)) == []
    third_party = {
        name.split(".")[0]
        for module in reached
        for name in graph[module]
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != "nix2aci"
    }
    assert third_party <= {*SANDBOX_LIBRARIES, *LAZY_LIBRARIES}


@pytest.mark.parametrize("library", sorted(LAZY_LIBRARIES))
def test_a_lazy_library_is_imported_by_its_one_module_and_only_inside_a_function(library: str) -> None:
    graph = import_graph()
    importers = sorted(module for module, names in graph.items() if library in {name.split(".")[0] for name in names})
    assert importers == [LAZY_LIBRARIES[library]]
    path = PACKAGE.parent / (LAZY_LIBRARIES[library].replace(".", "/") + ".py")
    assert library not in set(imported_at_import_time(path))


@pytest.mark.parametrize("package", sorted(FORMATS))
def test_a_format_package_imports_no_other_format(package: str) -> None:
    graph = import_graph()
    crossings = sorted(
        f"{module} imports {name}"
        for module, names in graph.items()
        if within(module, (package,))
        for name in names
        if within(name, FORMATS[package])
    )
    assert crossings == []


@pytest.mark.parametrize("room", ["nix2aci.build", "nix2aci.archive", "nix2aci.appc"])
def test_the_sandbox_rooms_import_no_command_or_signing_code(room: str) -> None:
    graph = import_graph()
    crossings = sorted(
        f"{module} imports {name}"
        for module, names in graph.items()
        if within(module, (room,))
        for name in names
        if within(name, USER_SIDE)
    )
    assert crossings == []


def test_help_lists_the_command_of_every_command_module() -> None:
    modules = sorted(path.stem for path in (PACKAGE / "commands").glob("*.py") if path.stem != "__init__")
    usage = nix2aci("--help").stdout
    listed = re.search(r"\{([a-z,-]+)\}", usage)
    assert listed is not None, usage
    assert sorted(listed.group(1).split(",")) == sorted(module.replace("_", "-") for module in modules)


def readme_layout() -> dict[str, set[str]]:
    """The file names the README's "Layout" block gives each room of the package: {room: names}.

    A room is ``nix2aci`` (the lines of the package itself) or one of its
    directories (an indented ``name/`` line); names are the ``*.py`` and
    ``*.json`` words of its lines.
    """
    text = (REPO / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    rooms: dict[str, set[str]] = {}
    room = None
    for line in block.splitlines():
        top = re.match(r"(\S+)", line)
        if top:
            room = "nix2aci" if top.group(1) == "nix2aci/" else None
        elif room is not None and (inner := re.match(r"  ([a-z]+)/ ", line)):
            room = inner.group(1)
        elif room is not None and re.match(r"  \S", line):
            room = "nix2aci"
        if room is not None:
            rooms.setdefault(room, set()).update(re.findall(r"(?<![\w/.-])\w[\w.-]*\.(?:py|json)\b", line))
    return rooms


def test_the_readme_layout_names_the_modules_that_exist() -> None:
    """Every file the README's Layout gives a room exists in it; every module of the rooms it describes is named."""
    package = REPO / "nix2aci"
    described = readme_layout()
    assert {"build", "archive", "aci", "oci", "signing", "commands"} <= set(described)
    for room, names in described.items():
        directory = package if room == "nix2aci" else package / room
        present = {path.name for path in directory.rglob("*") if path.suffix in (".py", ".json")}
        assert names <= present, f"README's Layout names {sorted(names - present)} in {directory}, which has none"
    for room in ("build", "archive", "aci", "oci", "signing", "distribution"):
        modules = {path.name for path in (package / room).glob("*.py") if path.name != "__init__.py"}
        missing = sorted(modules - described[room])
        assert not missing, f"README's Layout does not name {missing} of {room}/"
    top = {path.name for path in package.glob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    assert top <= described["nix2aci"], f"README's Layout does not name {sorted(top - described['nix2aci'])}"


# Loads the command line in a fresh interpreter and parses ARGV (``--help``: argparse prints it and exits);
# the modules then loaded go to stderr.
COMMAND_PROBE = """
import contextlib, json, sys
sys.path.insert(0, sys.argv[1])
from nix2aci.commands import main
with contextlib.suppress(SystemExit):
    main(sys.argv[2:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["push", "--help"], ["sign", "--help"]])
def test_the_command_line_loads_only_what_the_command_given_needs(argv: list[str]) -> None:
    """Startup is not the import of every command's modules: none of the image checkers, builders or
    schemas (and so neither attrs nor jsonschema) is loaded to parse ``push`` or list the commands."""
    probe = run([sys.executable, "-I", "-c", COMMAND_PROBE, str(REPO), *argv])
    assert probe.stdout.startswith("usage: nix2aci")
    loaded = json.loads(probe.stderr)
    heavy = ("nix2aci.validate", "nix2aci.inspect", "nix2aci.run", "nix2aci.sbom", "nix2aci.build_thin")
    assert [module for module in loaded if within(module, (*heavy, *SANDBOX_ROOMS, *SANDBOX_LIBRARIES))] == []
    assert "nix2aci.commands.push" in loaded

"""README's argument tables name exactly the arguments the Nix functions take.

The functions' records document every argument (nix/types.nix: ``required type doc``,
``optional type default doc``); ``lib.arguments`` lists them. Each function's README
table, plus the table of the rootfs basics every function takes, must name the same
arguments, and mark the same ones required.
"""

from __future__ import annotations

import re

import pytest
from conftest import REPO, nix_eval_json

# The README section of each function's table (a heading's text), and of the rootfs basics.
SECTIONS = {
    "mkACI": "`mkACI` arguments",
    "buildContainer": "`buildContainer` arguments",
    "buildOCIImage": "`buildOCIImage` arguments",
    "buildOCIIndex": "`buildOCIIndex` arguments",
}
# Functions that make no file tree, and so take no rootfs basics.
WITHOUT_ROOTFS = {"buildOCIIndex"}
ROOTFS_SECTION = "Rootfs basics (every function)"


def section_table(markdown: str, heading: str) -> dict[str, bool]:
    """The arguments of the first table under the heading ``heading`` (any level), up to the next heading.

    Returns {argument: whether its default column says "(required)"}; a row may name several
    arguments (`user`, `group`); a row naming none (a pointer to another table) is skipped.
    """
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {heading!r}"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    assert rows, f"README's section {heading!r} has no table"
    arguments = {}
    for row in rows[2:]:  # after the header and its |---| line
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            assert name not in arguments, f"{heading}: {name} has two rows"
            arguments[name] = cells[1] == "(required)"
    return arguments


@pytest.fixture(scope="module")
def documented() -> dict[str, dict[str, dict]]:
    """lib.arguments: {function or "rootfs": {argument: {doc, required}}}."""
    return nix_eval_json("n.lib.arguments")


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def required_of(arguments: dict[str, dict]) -> dict[str, bool]:
    return {name: field["required"] for name, field in arguments.items()}


def test_every_argument_has_its_documentation(documented):
    for function, arguments in documented.items():
        for name, field in arguments.items():
            assert isinstance(field["doc"], str) and field["doc"].strip(), f"{function}: {name} has no doc"


def test_the_rootfs_table_names_the_rootfs_basics(documented, readme):
    assert section_table(readme, ROOTFS_SECTION) == required_of(documented["rootfs"])


@pytest.mark.parametrize("function", SECTIONS)
def test_a_functions_table_and_the_rootfs_table_name_its_arguments(function, documented, readme):
    table = section_table(readme, SECTIONS[function])
    rootfs = {} if function in WITHOUT_ROOTFS else section_table(readme, ROOTFS_SECTION)
    assert not set(table) & set(rootfs), f"{function}: rootfs basics belong in their own table"
    assert {**table, **rootfs} == required_of(documented[function])

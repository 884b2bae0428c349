"""The manifest schema and its tables, the generic schema module, and the small appc types."""

import json
import re
import subprocess

import pytest
from conftest import require

from nix2aci.appc import (
    CAPABILITIES,
    KNOWN_ISOLATORS,
    MANIFEST_SCHEMA,
    VALID_OS_ARCH,
    ImageID,
    is_ac_identifier,
    is_ac_name,
)
from nix2aci.errors import SpecError
from nix2aci.schema import Schema, compile_pattern, join_path, json_path, load_schema


def _subschemas(node):
    """Every object in a schema document."""
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            yield from _subschemas(child)


PATTERNS = sorted({s["pattern"] for s in _subschemas(MANIFEST_SCHEMA.document) if "pattern" in s})


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_are_anchored_eres(pattern):
    """Every pattern is anchored and POSIX ERE syntax (Nix reads them with builtins.match)."""
    assert pattern.startswith("^") and pattern.endswith("$")
    assert not re.search(r"\\[dDwWsSbB]|\(\?|[*+?}]\?", pattern), "not a POSIX ERE"


def test_definitions_are_described():
    """Every definition has a description, the rule in words."""
    for name, definition in MANIFEST_SCHEMA.document["definitions"].items():
        assert definition.get("description"), name
    assert "AC Identifier" in MANIFEST_SCHEMA.definition("acIdentifier")["description"]
    assert "AC Name" in MANIFEST_SCHEMA.definition("acName")["description"]


IDENTIFIERS = {
    "example.com/app": True,
    "a-b.c_d~e/f0": True,
    "a": True,
    "0": True,
    "": False,
    "Example.com": False,
    "example.com/": False,
    "/example.com": False,
    "example.com//x": False,
    "example..com": False,
    "a-.b": False,
    "a\nb": False,
    "app\n": False,
}
NAMES = {"http": True, "http-alt": True, "a1-2b": True, "a--b": False, "-a": False, "a.b": False, "A": False}


@pytest.mark.parametrize(("value", "valid"), IDENTIFIERS.items())
def test_ac_identifier(value, valid):
    """AC Identifiers follow the spec regex, with no trailing newline allowed."""
    assert is_ac_identifier(value) is valid


@pytest.mark.parametrize(("value", "valid"), NAMES.items())
def test_ac_name(value, valid):
    """AC Names follow the spec regex."""
    assert is_ac_name(value) is valid


def test_nix_reads_the_patterns_the_same_way():
    """builtins.match and the Python models agree on the shared patterns."""
    require("nix-instantiate")
    cases = [("acIdentifier", value) for value in IDENTIFIERS] + [("acName", value) for value in NAMES]
    pattern = {name: MANIFEST_SCHEMA.definition(name)["pattern"] for name in ("acIdentifier", "acName")}
    expression = "[ {} ]".format(
        " ".join(f"(builtins.match {json.dumps(pattern[name])} {json.dumps(value)} != null)" for name, value in cases)
    )
    output = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--expr", expression], capture_output=True, text=True, check=True
    ).stdout
    python = [compile_pattern(pattern[name]).search(value) is not None for name, value in cases]
    assert output.split()[1:-1] == [json.dumps(result) for result in python]


def test_os_arch_is_appc_valid_os_arch():
    """os-arch.json is appc v0.8.11's types.ValidOSArch."""
    assert VALID_OS_ARCH == {
        "linux": ["amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b", "ppc64", "ppc64le", "s390x"],
        "freebsd": ["amd64", "i386", "arm"],
        "darwin": ["x86_64", "i386"],
    }


def test_known_isolators_and_capabilities():
    """The known isolators are those of spec/ace.md; the capabilities all of Linux's."""
    assert sorted(KNOWN_ISOLATORS) == [
        "os/linux/capabilities-remove-set",
        "os/linux/capabilities-retain-set",
        "os/linux/cpu-shares",
        "os/linux/no-new-privileges",
        "os/linux/oom-score-adj",
        "os/linux/seccomp-remove-set",
        "os/linux/seccomp-retain-set",
        "os/linux/selinux-context",
        "os/unix/sysctl",
        "resource/block-bandwidth",
        "resource/block-iops",
        "resource/cpu",
        "resource/memory",
        "resource/network-bandwidth",
    ]
    assert (len(CAPABILITIES), CAPABILITIES[0], CAPABILITIES[-1]) == (41, "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE")


def test_image_id():
    """An Image ID is the sha512 of the uncompressed tar, in full."""
    assert str(ImageID.of(b"")) == (
        "sha512-cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    )
    with pytest.raises(SpecError, match=r"^imageID: must be an Image ID: sha512- followed by the 128"):
        ImageID("sha512-abc")


def test_json_path():
    """Paths read as a user would write them."""
    assert json_path([]) == ""
    assert json_path(["app", "ports", 0, "port"]) == "app.ports[0].port"
    assert json_path(["x-build"]) == "x-build"
    assert json_path(["app", "userLabels", "a.b"]) == 'app.userLabels["a.b"]'
    assert json_path([0, ""]) == '[0][""]'
    assert join_path("app", "ports[0]") == "app.ports[0]"
    assert join_path("app.ports", "[0].count") == "app.ports[0].count"
    assert join_path("acVersion", "") == "acVersion"
    assert join_path("", "name") == "name"


TOY = Schema(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["size", "mode"],
        "properties": {
            "size": {"description": "a size: an integer of at least 0", "type": "integer", "minimum": 0},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
)


def test_schema_rules_come_from_descriptions():
    """Rules come from descriptions, else from jsonschema's message."""
    (error,) = TOY.check({"size": -1, "mode": "fast"}).errors
    assert (error.field, error.rule) == ("size", "must be a size: an integer of at least 0; got -1")
    (error,) = TOY.check({"size": 1, "mode": "medium"}).errors
    assert (error.field, error.rule) == ("mode", "'medium' is not one of ['fast', 'slow']")
    (error,) = TOY.check({"mode": "fast"}).errors
    assert (error.field, error.rule) == ("size", "is required; must be a size: an integer of at least 0")


@pytest.mark.parametrize("number", [1.0, True, "1"])
def test_schema_integers_are_json_integers(number):
    """A float, a bool or a string is not an integer."""
    (error,) = TOY.check({"size": number, "mode": "fast"}).errors
    assert error.field == "size"


def test_schema_keys():
    """Miscased keys are errors; unknown keys warnings, except under additionalProperties."""
    findings = TOY.check({"Size": 1, "mode": "fast", "colour": "red", "tags": {"Any.Key": "x"}})
    assert [str(error) for error in findings.errors] == [
        "size: must be spelled 'size': keys are case-sensitive; got 'Size'"
    ]
    assert findings.warnings == ("colour: unknown key, ignored",)


def test_load_schema_is_cached():
    """A schema file is loaded once."""
    assert load_schema("nix2aci.appc", "image-manifest.schema.json") is MANIFEST_SCHEMA

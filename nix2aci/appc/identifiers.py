"""AC Identifier and AC Name (spec/types.md), read from the manifest schema.

The schema file holds the one copy of each pattern; the Nix side reads the same
file, so the three cannot drift apart.
"""

from __future__ import annotations

from ..schema import compile_pattern, load_schema

MANIFEST_SCHEMA = load_schema(__package__, "image-manifest.schema.json")

AC_IDENTIFIER = compile_pattern(MANIFEST_SCHEMA.definition("acIdentifier")["pattern"])
AC_NAME = compile_pattern(MANIFEST_SCHEMA.definition("acName")["pattern"])


def is_ac_identifier(value: object) -> bool:
    """Whether ``value`` is an AC Identifier (image, label, annotation and isolator names)."""
    return isinstance(value, str) and AC_IDENTIFIER.search(value) is not None


def is_ac_name(value: object) -> bool:
    """Whether ``value`` is an AC Name (mount point and port names)."""
    return isinstance(value, str) and AC_NAME.search(value) is not None

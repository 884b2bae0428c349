"""acVersion: the appc spec version a manifest follows (spec/types.md, AC Version)."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import SpecError

AC_VERSION = "0.8.11"

# The tagged releases of appc/spec up to AC_VERSION; there never was a v0.1.0 tag.
RELEASES = (
    "0.1.1",
    "0.2.0",
    "0.3.0",
    "0.4.0",
    "0.4.1",
    "0.5.0",
    "0.5.1",
    "0.5.2",
    "0.6.0",
    "0.6.1",
    "0.7.0",
    "0.7.1",
    "0.7.2",
    "0.7.3",
    "0.7.4",
    "0.8.0",
    "0.8.1",
    "0.8.2",
    "0.8.3",
    "0.8.4",
    "0.8.5",
    "0.8.6",
    "0.8.7",
    "0.8.8",
    "0.8.9",
    "0.8.10",
    "0.8.11",
)


def version_problems(version: str) -> Iterator[SpecError]:
    """The problem with a SemVer ``version`` string, if it is not a tagged release up to AC_VERSION."""
    if version not in RELEASES:
        yield SpecError(
            "",
            f"must be a tagged appc spec release no newer than {AC_VERSION}, without pre-release or build suffix"
            f" ({', '.join(RELEASES)}); got {version!r}",
        )

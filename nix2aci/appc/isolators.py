"""Isolators: resource and security settings for the app (spec/ace.md, Isolators).

The schema checks each known isolator's value; this module checks what spans
isolators or needs a table: capability names, single-instance isolators and the
pairs that exclude each other. An unknown name is valid (executors MAY ignore
it), so it is only a warning, although actool and rkt reject it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import SpecError
from .identifiers import MANIFEST_SCHEMA

# The schema's isolator definition has one if/then per known isolator, keyed on its name.
KNOWN_ISOLATORS = frozenset(
    rule["if"]["properties"]["name"]["const"] for rule in MANIFEST_SCHEMA.definition("isolator")["allOf"]
)

CAPABILITY_SETS = ("os/linux/capabilities-retain-set", "os/linux/capabilities-remove-set")
SECCOMP_SETS = ("os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set")

# At most one of each per app (ace.md notes; appc's multipleAllowed() for the rest).
SINGLE_INSTANCE = frozenset(
    {*SECCOMP_SETS, "os/linux/selinux-context", "os/linux/oom-score-adj", "os/linux/cpu-shares", "os/unix/sysctl"}
)

# Isolator name -> the one it may not appear with in one app.
EXCLUDES = {name: other for pair in (CAPABILITY_SETS, SECCOMP_SETS) for name, other in (pair, pair[::-1])}

# Linux capabilities in kernel order (capability.h), 0 to CAP_LAST_CAP.
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)


@attrs.frozen
class Isolator:
    """An isolator: ``name`` (an AC Identifier) and ``value``, any JSON as the manifest has it."""

    name: str
    value: Any

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Isolator:
        """The isolator of a schema-valid JSON object."""
        return cls(obj["name"], obj["value"])

    def to_json(self) -> dict[str, Any]:
        """The isolator as a JSON object."""
        return {"name": self.name, "value": self.value}


def isolator_problems(isolators: Sequence[Isolator]) -> Iterator[SpecError]:
    """The rules ``isolators`` (schema-valid) break; fields are relative to the list."""
    first: dict[str, int] = {}
    for index, isolator in enumerate(isolators):
        if isolator.name in SINGLE_INSTANCE and isolator.name in first:
            yield SpecError(
                f"[{index}].name",
                f"must not repeat {isolator.name!r} (already at index {first[isolator.name]}):"
                " an app may have only one",
            )
        other = EXCLUDES.get(isolator.name)
        if other in first:
            yield SpecError(
                f"[{index}].name",
                f"must not be {isolator.name!r} when {other!r} is used (index {first[other]}):"
                " an app may have only one of the two",
            )
        if isolator.name in CAPABILITY_SETS:
            for position, capability in enumerate(isolator.value["set"]):
                if capability not in CAPABILITIES:
                    yield SpecError(
                        f"[{index}].value.set[{position}]",
                        f"must be a Linux capability name ({', '.join(CAPABILITIES)}); got {capability!r}",
                    )
        first.setdefault(isolator.name, index)


def isolator_warnings(isolators: Sequence[Isolator], field: str) -> Iterator[str]:
    """A warning for each isolator of unknown name; ``field`` is the path of the list."""
    for index, isolator in enumerate(isolators):
        if isolator.name not in KNOWN_ISOLATORS:
            yield (
                f"{field}[{index}].name: unknown isolator {isolator.name!r}; the spec allows it and executors"
                " may ignore it, but actool and rkt reject it"
            )

"""Isolators: resource and security settings for the app (spec/ace.md, Isolators).

The schema checks each known isolator's value; this module checks what spans
isolators or needs a table: capability names, single-instance isolators, the
pairs that exclude each other, and resource quantities (:func:`memory_bytes`
and :func:`cpu_millicores` are the one rule both the validator and ``nix2aci
run`` use). An unknown name is valid (executors MAY ignore it), so it is only a
warning, although actool and rkt reject it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
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

# Kubernetes' resource quantity grammar, which appc's Go code parses quantities with: a decimal number, then a
# binary suffix (Ki .. Ei), a decimal one (n u m k M G T P E; "K" is not one: actool rejects "2K") or a decimal
# exponent (e3, E-2). No sign: a limit is never negative.
QUANTITY = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(?P<suffix>[KMGTPE]i|[numkMGTPE])|[eE](?P<exponent>[-+]?[0-9]+))?"
)
QUANTITY_SUFFIXES = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}  # fmt: skip
QUANTITY_FORM = (
    "digits with an optional fraction, then Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or e<exponent>"
)
# Beyond this exponent no quantity is in any resource's range; bounding it keeps the arithmetic small.
MAX_EXPONENT = 100
# A memory limit is a cgroup's byte count, a signed 64-bit number in the kernel. Below Docker's minimum of 6 MiB
# runc cannot start the app at all (its own init uses about 2 MiB of the cgroup before the app runs).
MIN_MEMORY_BYTES = 6 * 2**20
MAX_MEMORY_BYTES = 2**63 - 1
# A CPU limit becomes a CFS quota over a 1 s period (nix2aci run): 1m is 1 ms, the kernel's smallest quota, and the
# largest quota the kernel takes is 2^44 - 1 microseconds (max_cfs_runtime).
MAX_CPU_MILLICORES = (2**44 - 1) // 1000


class QuantityError(ValueError):
    """A quantity that is not in the grammar or not in its resource's range; the message says which."""


def quantity(text: Any) -> Fraction:
    """The exact value of the resource quantity ``text`` (``"500m"``, ``"1.5Gi"``, ``"2e3"``).

    Raises :class:`QuantityError` for anything outside the grammar, and for an
    exponent beyond ``MAX_EXPONENT`` (no resource takes such a value).
    """
    match = QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"must be a resource quantity ({QUANTITY_FORM}); got {text!r}")
    exponent = int(match["exponent"] or 0) if len((match["exponent"] or "").lstrip("+-0")) <= 3 else None
    if exponent is None or abs(exponent) > MAX_EXPONENT:
        raise QuantityError(
            f"must be a resource quantity with an exponent from -{MAX_EXPONENT} to {MAX_EXPONENT}; got {text!r}"
        )
    return Fraction(match["number"]) * QUANTITY_SUFFIXES[match["suffix"] or ""] * Fraction(10) ** exponent


def memory_bytes(text: Any) -> int:
    """A memory quantity as bytes: a whole number from 6Mi to 2^63 - 1, else :class:`QuantityError`."""
    value = quantity(text)
    if value.denominator != 1 or not MIN_MEMORY_BYTES <= value <= MAX_MEMORY_BYTES:
        raise QuantityError(f"must be a whole number of bytes from 6Mi to 2^63 - 1 (e.g. 512Mi, 1G); got {text!r}")
    return int(value)


def cpu_millicores(text: Any) -> int:
    """A CPU quantity as millicores: a whole number from 1m to MAX_CPU_MILLICORES, else :class:`QuantityError`."""
    value = quantity(text) * 1000
    if value.denominator != 1 or not 1 <= value <= MAX_CPU_MILLICORES:
        raise QuantityError(
            f"must be a whole number of millicores from 1m to {MAX_CPU_MILLICORES}m (e.g. 500m, 2); got {text!r}"
        )
    return int(value)


# Resource isolator -> how its request and limit are read (the others only need the grammar).
RESOURCE_UNITS: dict[str, Callable[[Any], Any]] = {
    "resource/memory": memory_bytes,
    "resource/cpu": cpu_millicores,
    "resource/block-bandwidth": quantity,
    "resource/block-iops": quantity,
    "resource/network-bandwidth": quantity,
}

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
        yield from _quantity_problems(isolator, index)
        first.setdefault(isolator.name, index)


def _quantity_problems(isolator: Isolator, index: int) -> Iterator[SpecError]:
    """The problems of a resource isolator's ``request`` and ``limit`` (strings, as the schema checked)."""
    read = RESOURCE_UNITS.get(isolator.name)
    if read is None or not isinstance(isolator.value, Mapping):
        return
    for key in ("request", "limit"):
        if key in isolator.value:
            try:
                read(isolator.value[key])
            except QuantityError as error:
                yield SpecError(f"[{index}].value.{key}", str(error))


def isolator_warnings(isolators: Sequence[Isolator], field: str) -> Iterator[str]:
    """A warning for each isolator of unknown name; ``field`` is the path of the list."""
    for index, isolator in enumerate(isolators):
        if isolator.name not in KNOWN_ISOLATORS:
            yield (
                f"{field}[{index}].name: unknown isolator {isolator.name!r}; the spec allows it and executors"
                " may ignore it, but actool and rkt reject it"
            )

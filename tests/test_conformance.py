"""Conformance: `nix2aci validate` against the specs and against actool 0.8.11, one hand-made input a row.

Every row is an input written here (a manifest mutation, an archive shape, an
image layout, an OCI bundle or image layout) with the verdict the SPEC gives it.
Each row runs the real `nix2aci validate` and, for appc inputs, the real actool;
nix2aci must give the spec's verdict and say why (the field path and the rule),
and actool must give the verdict docs/spec-notes.md measured. Where the two
differ, the row names the spec rule that decides (spec-notes §5.1 gaps G1-G18,
§5.2 where actool is stricter, §5.3 where it crashes), and the last test checks
that the rows that differ are exactly DIFFERENCES, so no new one slips in.

Verdicts: "valid", "invalid", "not checked" (nix2aci exit 3: the spec allows
the input but it cannot be read, as an encrypted ACI), "crash" (actool exit 2).

Decisions where the spec is silent or ambiguous, taken here and documented by
the rows (see each row's ``note``):

* an archive without an explicit ``rootfs`` directory entry is invalid: the
  spec's ``rootfs`` is "a directory" with its own mode and times (rule 4),
  which only an entry carries; actool agrees (R10);
* a tar must end with its end-of-archive marker (POSIX: two zero blocks), and a
  compressed file must be whole to its last byte: otherwise a cut download
  would pass for a smaller image (actool accepts both, rkt fails on the second);
* duplicate environment names are invalid: names are the keys of the
  environment, as mount and port names are keys (G18); actool agrees;
* a repeated JSON key is valid JSON (RFC 4627: names SHOULD be unique), so it is
  a warning, and the last value is checked (actool checks every value);
* in an OCI image layout a missing ``org.opencontainers.image.ref.name`` is
  valid: it only names a tag for tools that look one up; a missing blob is
  valid with a warning (image-layout.md: blobs MAY be missing).
"""

from __future__ import annotations

import bz2
import copy
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import re
import struct
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import nix2aci, require, run_guarded

pytestmark = pytest.mark.slow

VALID, INVALID, NOT_CHECKED, CRASH = "valid", "invalid", "not checked", "crash"
NIX2ACI_VERDICTS = {0: VALID, 1: INVALID, 3: NOT_CHECKED}
ACTOOL_VERDICTS = {0: VALID, 1: INVALID, 2: CRASH}
# Generous: each run takes well under a second; this only turns a hang into a failure.
TIMEOUT = 120

BASE: dict[str, Any] = {
    "acKind": "ImageManifest",
    "acVersion": "0.8.11",
    "name": "example.com/hello",
    "labels": [
        {"name": "version", "value": "1.0.0"},
        {"name": "os", "value": "linux"},
        {"name": "arch", "value": "amd64"},
    ],
    "app": {"exec": ["/bin/hello"], "user": "0", "group": "0"},
}
SHA512 = "sha512-" + "0123456789abcdef" * 8
FULL: dict[str, Any] = {
    **BASE,
    "app": {
        "exec": ["/bin/hello", "--quiet"],
        "user": "100",
        "group": "300",
        "supplementaryGIDs": [400, 500],
        "eventHandlers": [
            {"name": "pre-start", "exec": ["/bin/prepare"]},
            {"name": "post-stop", "exec": ["/bin/cleanup", "--all"]},
        ],
        "workingDirectory": "/opt/work",
        "environment": [{"name": "DEBUG", "value": "true"}, {"name": "_x.y-z", "value": ""}],
        "isolators": [
            {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
            {"name": "resource/memory", "value": {"request": "1G", "limit": "2Gi"}},
            {"name": "resource/block-bandwidth", "value": {"default": True, "limit": "2M"}},
            {"name": "resource/network-bandwidth", "value": {"default": True, "limit": "1G"}},
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]}},
            {"name": "os/linux/seccomp-remove-set", "value": {"errno": "ENOTSUP", "set": ["reboot"]}},
            {"name": "os/linux/no-new-privileges", "value": True},
            {"name": "os/linux/oom-score-adj", "value": -500},
            {"name": "os/linux/cpu-shares", "value": 1024},
            {"name": "os/unix/sysctl", "value": {"net.ipv4.tcp_mtu_probing": "1"}},
        ],
        "mountPoints": [{"name": "work", "path": "/var/lib/work", "readOnly": True}],
        "ports": [
            {"name": "health", "protocol": "tcp", "port": 4000, "socketActivated": True},
            {"name": "ftp-data", "protocol": "tcp", "port": 20000, "count": 1000},
        ],
        "userAnnotations": {"team": "hello"},
        "userLabels": {"tier": "backend"},
    },
    "dependencies": [
        {"imageName": "example.com/base", "imageID": SHA512, "labels": [{"name": "os", "value": "linux"}], "size": 1}
    ],
    "pathWhitelist": ["/etc/hello.conf", "/bin/hello"],
    "annotations": [
        {"name": "authors", "value": "Carly Container <carly@example.com>"},
        {"name": "created", "value": "2014-10-27T19:32:27.67021798Z"},
        {"name": "homepage", "value": "https://example.com"},
        {"name": "appc.io/executor/supports-systemd-notify", "value": "true"},
    ],
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One input of the table.

    ``make`` writes the input into an empty directory and returns its path.
    ``spec``: the spec's verdict, which nix2aci must give; ``actool``: actool's
    measured verdict (None: actool does not read this kind of input);
    ``says``: regexes that nix2aci's output lines (the input's path cut off)
    must each match, naming the field and the rule; ``rule``: where actool and
    the spec differ, the spec rule that decides; ``note``: a decision or the
    spec-notes measurement the row repeats.
    """

    id: str
    make: Callable[[Path], Path]
    spec: str
    actool: str | None
    says: tuple[str, ...] = ()
    rule: str = ""
    note: str = ""
    nix2aci_args: tuple[str, ...] = ()
    actool_args: tuple[str, ...] = ()
    actool_says: str = ""


# --- Manifest inputs ---------------------------------------------------------------


# A value for edited() and the object helpers below: remove the key.
DROP = object()


def edited(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at ``path`` (``app.ports``, ``labels.1.name``) set, or removed if DROP."""
    result = copy.deepcopy(document)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    container = result
    for part in parents:
        container = container[part]
    if value is DROP:
        del container[last]
    elif isinstance(container, list) and last == len(container):
        container.append(value)
    else:
        container[last] = value
    return result


def manifest_text(document: dict[str, Any] | bytes) -> bytes:
    """The bytes of a manifest file: ``document`` as JSON, or given as bytes."""
    return document if isinstance(document, bytes) else json.dumps(document, indent=1).encode()


def manifest_file(document: dict[str, Any] | bytes, name: str = "manifest.json") -> Callable[[Path], Path]:
    """``make`` for a manifest file holding ``document``."""

    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(manifest_text(document))
        return path

    return make


def manifest_row(
    id: str,
    document: dict[str, Any] | bytes,
    spec: str,
    actool: str | None = None,
    says: tuple[str, ...] = (),
    rule: str = "",
    note: str = "",
    actool_says: str = "",
) -> Row:
    """A row for a manifest file, checked as ``--type manifest`` by both tools; actool defaults to the spec."""
    return Row(
        id,
        manifest_file(document),
        spec,
        spec if actool is None else actool,
        says,
        rule,
        note,
        ("--type", "manifest"),
        ("--type=manifest",),
        actool_says,
    )


def app_edit(key: str, value: Any) -> dict[str, Any]:
    """BASE with ``app.<key>`` set to ``value`` (or removed if DROP)."""
    return edited(BASE, f"app.{key}", value)


def label(name: str | None, value: str | None) -> dict[str, Any]:
    """BASE with one more label, without the key given as None."""
    item = {key: part for key, part in (("name", name), ("value", value)) if part is not None}
    return edited(BASE, "labels.3", item)


def port(**fields: Any) -> dict[str, Any]:
    """A port object: name http, tcp, port 80, changed by ``fields`` (DROP removes one)."""
    item = {"name": "http", "protocol": "tcp", "port": 80, **fields}
    return {key: value for key, value in item.items() if value is not DROP}


def mount(**fields: Any) -> dict[str, Any]:
    """A mount point object: name data, path /data, changed by ``fields`` (DROP removes one)."""
    item = {"name": "data", "path": "/data", **fields}
    return {key: value for key, value in item.items() if value is not DROP}


def isolator(name: str, value: Any = DROP) -> dict[str, Any]:
    """An isolator object, without a value when none is given."""
    return {"name": name} if value is DROP else {"name": name, "value": value}


def annotation(name: str, value: str) -> dict[str, Any]:
    """BASE with one annotation."""
    return edited(BASE, "annotations", [{"name": name, "value": value}])


def renamed_key(document: dict[str, Any], path: str, old: str, new: str) -> dict[str, Any]:
    """A copy of ``document`` whose object at ``path`` ("" for the top) has key ``old`` renamed ``new``, in place."""
    result = copy.deepcopy(document)
    container = result
    for part in filter(None, path.split(".")):
        container = container[part]
    items = [(new if key == old else key, value) for key, value in container.items()]
    container.clear()
    container.update(items)
    return result


AC_IDENTIFIER = "must be an AC Identifier"
AC_NAME = "must be an AC Name"
VERSION_RULE = "must be a tagged appc spec release no newer than 0.8.11"
G4 = "G4: acVersion is a tagged spec release not newer than the consumer's (0.8.11), in valid SemVer"

MANIFEST_ROWS = [
    manifest_row("M00-base", BASE, VALID, says=(r"^valid manifest$",)),
    manifest_row("M01-full", FULL, VALID, says=(r"^valid manifest$",)),
    # G1: AC Identifier, spec regex ^[a-z0-9]+([-._~/][a-z0-9]+)*$; actool checks charset and ends only.
    *[
        manifest_row(
            id,
            edited(BASE, "name", name),
            INVALID,
            VALID,
            (rf"^name: {AC_IDENTIFIER}.*got '{re.escape(name)}'",),
            "G1: AC Identifier regex ^[a-z0-9]+([-._~/][a-z0-9]+)*$ (spec/types.md)",
        )
        for id, name in (
            ("M08-name-double-slash", "example.com//x"),
            ("M09-name-double-dot", "example..com/x"),
            ("M10-name-dash-dot", "a-.b"),
        )
    ],
    manifest_row(
        "G1-label-name",
        label("a..b", "x"),
        INVALID,
        VALID,
        (rf"^labels\[3\]\.name: {AC_IDENTIFIER}",),
        "G1: label names are AC Identifiers",
    ),
    manifest_row(
        "G1-annotation-name",
        annotation("a//b", "x"),
        INVALID,
        VALID,
        (rf"^annotations\[0\]\.name: {AC_IDENTIFIER}",),
        "G1: annotation names are AC Identifiers",
    ),
    manifest_row(
        "G1-dependency-image-name",
        edited(BASE, "dependencies", [{"imageName": "example.com//base"}]),
        INVALID,
        VALID,
        (rf"^dependencies\[0\]\.imageName: {AC_IDENTIFIER}",),
        "G1: a dependency's imageName is an AC Identifier",
    ),
    manifest_row(
        "M-name-uppercase", edited(BASE, "name", "Example.com/x"), INVALID, says=(rf"^name: {AC_IDENTIFIER}",)
    ),
    manifest_row("M-name-empty", edited(BASE, "name", ""), INVALID, says=(rf"^name: {AC_IDENTIFIER}",)),
    manifest_row("M-name-leading-dash", edited(BASE, "name", "-a"), INVALID, says=(rf"^name: {AC_IDENTIFIER}",)),
    manifest_row("M-name-missing", edited(BASE, "name", DROP), INVALID, says=(r"^name: is required",)),
    # G2: AC Name, spec regex ^[a-z0-9]+([-][a-z0-9]+)*$; actool checks charset and ends only.
    manifest_row(
        "P13-mount-name-double-dash",
        app_edit("mountPoints", [mount(name="a--b")]),
        INVALID,
        VALID,
        (rf"^app\.mountPoints\[0\]\.name: {AC_NAME}",),
        "G2: AC Name regex ^[a-z0-9]+([-][a-z0-9]+)*$ (spec/types.md)",
    ),
    manifest_row(
        "G2-port-name-double-dash",
        app_edit("ports", [port(name="a--b")]),
        INVALID,
        VALID,
        (rf"^app\.ports\[0\]\.name: {AC_NAME}",),
        "G2: port names are AC Names",
    ),
    manifest_row(
        "M-mount-name-uppercase",
        app_edit("mountPoints", [mount(name="Data")]),
        INVALID,
        says=(rf"^app\.mountPoints\[0\]\.name: {AC_NAME}",),
    ),
    # G3: label objects need both keys.
    manifest_row(
        "L30-label-without-name",
        label(None, "x"),
        INVALID,
        VALID,
        (r"^labels\[3\]\.name: is required",),
        "G3: a label object has both name and value",
    ),
    manifest_row(
        "L31-label-without-value",
        label("x", None),
        INVALID,
        VALID,
        (r"^labels\[3\]\.value: is required",),
        "G3: a label object has both name and value",
    ),
    manifest_row(
        "M-label-named-name",
        label("name", "x"),
        INVALID,
        says=(r"^labels\[3\]\.name: must be a label name",),
    ),
    manifest_row(
        "M-label-repeated",
        label("version", "2.0.0"),
        INVALID,
        says=(r"^labels\[3\]\.name: must be unique",),
    ),
    manifest_row(
        "M-os-linux-arch-x86_64",
        edited(BASE, "labels.2.value", "x86_64"),
        INVALID,
        says=(r"^labels\[2\]\.value: must be an appc arch of os 'linux'",),
    ),
    manifest_row(
        "M-os-windows",
        edited(BASE, "labels.1.value", "windows"),
        INVALID,
        says=(r"^labels\[1\]\.value: must be an appc os",),
    ),
    # G4: acVersion.
    *[
        manifest_row(
            id,
            edited(BASE, "acVersion", version),
            INVALID,
            VALID,
            (rf"^acVersion: {VERSION_RULE}.*got '{re.escape(version)}'",),
            G4,
        )
        for id, version in (
            ("V06-version-0.1.0", "0.1.0"),
            ("V09-version-0.8.12", "0.8.12"),
            ("V10-version-1.0.0", "1.0.0"),
            ("V11-version-99.0.0", "99.0.0"),
            ("V12-version-build", "0.8.11+git"),
            ("V13-version-prerelease", "0.8.11-rc1"),
        )
    ],
    manifest_row(
        "V16-version-leading-zero",
        edited(BASE, "acVersion", "00.8.11"),
        INVALID,
        VALID,
        (r"^acVersion: must be a SemVer 2\.0\.0 version",),
        G4,
    ),
    *[
        manifest_row(f"V-version-{version}", edited(BASE, "acVersion", version), VALID, says=(r"^valid manifest$",))
        for version in ("0.8.10", "0.5.1", "0.1.1")
    ],
    *[
        manifest_row(id, edited(BASE, "acVersion", version), INVALID, says=(r"^acVersion: must be a SemVer",))
        for id, version in (("V-version-short", "0.8"), ("V-version-v", "v0.8.11"), ("V-version-empty", ""))
    ],
    manifest_row("V-version-zero", edited(BASE, "acVersion", "0.0.0"), INVALID, says=(rf"^acVersion: {VERSION_RULE}",)),
    manifest_row(
        "V-version-number", edited(BASE, "acVersion", 0.8), INVALID, says=(r"^acVersion: must be a SemVer.*got 0\.8",)
    ),
    # G5
    manifest_row(
        "A17-negative-gid",
        app_edit("supplementaryGIDs", [-1]),
        INVALID,
        VALID,
        (r"^app\.supplementaryGIDs\[0\]: must be a group ID: an integer from 0",),
        "G5: supplementaryGIDs are unsigned",
    ),
    # G6: mount points
    *[
        manifest_row(id, app_edit("mountPoints", [item]), INVALID, VALID, (says,), "G6: mountPoints need name and path")
        for id, item, says in (
            ("P08-mount-without-name", mount(name=DROP), r"^app\.mountPoints\[0\]\.name: is required"),
            ("P09-mount-without-path", mount(path=DROP), r"^app\.mountPoints\[0\]\.path: is required"),
            ("P10-mount-empty-path", mount(path=""), r"^app\.mountPoints\[0\]\.path: must be an absolute path"),
        )
    ],
    # G7: ports
    *[
        manifest_row(id, app_edit("ports", [item]), INVALID, VALID, (says,), rule)
        for id, item, says, rule in (
            (
                "T07-port-without-name",
                port(name=DROP),
                r"^app\.ports\[0\]\.name: is required",
                "G7: ports need a name (the PodManifest's key)",
            ),
            (
                "T10-port-without-protocol",
                port(protocol=DROP),
                r"^app\.ports\[0\]\.protocol: is required",
                "G7: ports need a protocol",
            ),
            (
                "T15-port-count-0",
                port(count=0),
                r"^app\.ports\[0\]\.count: must be a number of ports.*got 0",
                "G7: count >= 1",
            ),
        )
    ],
    manifest_row(
        "T-port-range-past-65535",
        app_edit("ports", [port(port=65535, count=2)]),
        INVALID,
        says=(r"^app\.ports\[0\]\.count: must keep the range within 65535",),
        actool_says="end of port range must be in 1-65535 range",
    ),
    *[
        manifest_row(id, app_edit("ports", [port(port=number)]), INVALID, says=(r"^app\.ports\[0\]\.port: must be",))
        for id, number in (("T-port-0", 0), ("T-port-65536", 65536))
    ],
    # G8, G9: capabilities
    manifest_row(
        "I08-capability-unknown",
        app_edit("isolators", [isolator("os/linux/capabilities-retain-set", {"set": ["FOO"]})]),
        INVALID,
        VALID,
        (r"^app\.isolators\[0\]\.value\.set\[0\]: must be a Linux capability name.*got 'FOO'",),
        "G8: capabilities are real capability names",
    ),
    manifest_row(
        "I10-capability-retain-and-remove",
        app_edit(
            "isolators",
            [
                isolator("os/linux/capabilities-retain-set", {"set": ["CAP_CHOWN"]}),
                isolator("os/linux/capabilities-remove-set", {"set": ["CAP_KILL"]}),
            ],
        ),
        INVALID,
        VALID,
        (r"^app\.isolators\[1\]\.name: must not be 'os/linux/capabilities-remove-set' when",),
        "G9: capability retain-set and remove-set exclude each other (ace.md)",
    ),
    manifest_row(
        "I-seccomp-retain-and-remove",
        app_edit(
            "isolators",
            [
                isolator("os/linux/seccomp-retain-set", {"set": ["read"]}),
                isolator("os/linux/seccomp-remove-set", {"set": ["reboot"]}),
            ],
        ),
        INVALID,
        says=(r"^app\.isolators\[1\]\.name: must not be 'os/linux/seccomp-remove-set' when",),
    ),
    manifest_row(
        "I-cpu-shares-1",
        app_edit("isolators", [isolator("os/linux/cpu-shares", 1)]),
        INVALID,
        says=(r"^app\.isolators\[0\]\.value: must be a CPU shares weight",),
    ),
    manifest_row(
        "I-oom-score-adj-2000",
        app_edit("isolators", [isolator("os/linux/oom-score-adj", 2000)]),
        INVALID,
        says=(r"^app\.isolators\[0\]\.value: must be an OOM score adjustment",),
    ),
    manifest_row(
        "I-cpu-bad-quantity",
        app_edit("isolators", [isolator("resource/cpu", {"limit": "abc"})]),
        INVALID,
        says=(r"^app\.isolators\[0\]\.value\.limit: must be a resource quantity",),
    ),
    manifest_row(
        "I-isolator-name-double-dot",
        app_edit("isolators", [isolator("x..y", {})]),
        INVALID,
        says=(rf"^app\.isolators\[0\]\.name: {AC_IDENTIFIER}",),
    ),
    # §5.2: actool rejects isolators it does not know; the spec allows any (executors MAY ignore them).
    manifest_row(
        "I05-isolator-unknown",
        app_edit("isolators", [isolator("example.com/my-isolator", {"any": ["json"]})]),
        VALID,
        INVALID,
        (r"^warning: app\.isolators\[0\]\.name: unknown isolator 'example\.com/my-isolator'", r"^valid manifest$"),
        "5.2 unknown isolator: spec-valid (an isolator's value is any JSON; executors MAY ignore unknown ones)",
        actool_says="invalid isolator",
    ),
    # §5.3: actool panics on an isolator without a value.
    manifest_row(
        "I18-isolator-without-value",
        app_edit("isolators", [isolator("resource/cpu")]),
        INVALID,
        CRASH,
        (r"^app\.isolators\[0\]\.value: is required",),
        "5.3 actool crash: an isolator is {name, value}; without a value it is invalid",
        actool_says="panic",
    ),
    # G10: image IDs
    *[
        manifest_row(
            id,
            edited(BASE, "dependencies", [{"imageName": "example.com/base", "imageID": image_id}]),
            INVALID,
            VALID,
            (r"^dependencies\[0\]\.imageID: must be an Image ID: sha512- followed by the 128",),
            "G10: an Image ID is sha512- and the 128 hex digits of the digest",
        )
        for id, image_id in (("D06-image-id-not-hex", "sha512-xyz"), ("D10-image-id-short", SHA512[:71]))
    ],
    manifest_row(
        "D-image-id-sha256",
        edited(BASE, "dependencies", [{"imageName": "a", "imageID": "sha256-" + "0" * 64}]),
        INVALID,
        says=(r"^dependencies\[0\]\.imageID: must be an Image ID",),
    ),
    manifest_row(
        "D-dependency-without-name",
        edited(BASE, "dependencies", [{"imageID": SHA512}]),
        INVALID,
        says=(r"^dependencies\[0\]\.imageName: is required",),
    ),
    # G11: pathWhitelist
    *[
        manifest_row(
            id,
            edited(BASE, "pathWhitelist", [entry]),
            INVALID,
            VALID,
            (r"^pathWhitelist\[0\]: must be an absolute path",),
            "G11: pathWhitelist entries are absolute paths",
        )
        for id, entry in (("W02-whitelist-relative", "bin/sh"), ("W04-whitelist-empty", ""))
    ],
    # G12
    manifest_row(
        "N11-systemd-notify-maybe",
        annotation("appc.io/executor/supports-systemd-notify", "maybe"),
        INVALID,
        VALID,
        (r'^annotations\[0\]\.value: must be "true" or "false"; got \'maybe\'',),
        'G12: supports-systemd-notify is "true" or "false"',
    ),
    manifest_row(
        "N-created-date-only",
        annotation("created", "2024-01-02"),
        INVALID,
        says=(r"^annotations\[0\]\.value: must be an RFC 3339 date-time",),
    ),
    manifest_row(
        "N-homepage-ftp",
        annotation("homepage", "ftp://example.com"),
        INVALID,
        says=(r"^annotations\[0\]\.value: must be an http or https URL",),
    ),
    manifest_row("N-annotation-named-name", annotation("name", "x"), VALID, says=(r"^valid manifest$",)),
    # G13: keys are case-sensitive (Go's decoder is not).
    *[
        manifest_row(
            id,
            renamed_key(document, path, old, new),
            INVALID,
            VALID,
            (rf"^{re.escape(field)}: must be spelled '{old}': keys are case-sensitive",),
            "G13: JSON keys are case-sensitive",
        )
        for id, document, path, old, new, field in (
            ("J05-key-ACKIND", BASE, "", "acKind", "ACKIND", "acKind"),
            ("J05-key-Name", BASE, "", "name", "Name", "name"),
            ("J05-key-acversion", BASE, "", "acVersion", "acversion", "acVersion"),
            (
                "J05-key-supplementaryGids",
                app_edit("supplementaryGIDs", [100]),
                "app",
                "supplementaryGIDs",
                "supplementaryGids",
                "app.supplementaryGIDs",
            ),
        )
    ],
    # G18: mount and port names are keys.
    manifest_row(
        "P02-mount-names-repeated",
        app_edit("mountPoints", [mount(), mount(path="/other")]),
        INVALID,
        VALID,
        (r"^app\.mountPoints\[1\]\.name: must be unique within the list; 'data' is already used at index 0",),
        "G18: mount names resolve the PodManifest's volumes, so they are unique",
    ),
    manifest_row(
        "T11-port-names-repeated",
        app_edit("ports", [port(), port(port=81)]),
        INVALID,
        VALID,
        (r"^app\.ports\[1\]\.name: must be unique within the list; 'http' is already used",),
        "G18: port names are keys of the PodManifest, so they are unique",
    ),
    manifest_row(
        "E-environment-names-repeated",
        app_edit("environment", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        INVALID,
        says=(r"^app\.environment\[1\]\.name: must be unique within the list",),
        note="unspecified: names are the environment's keys (as G18); actool agrees",
    ),
    manifest_row(
        "E-environment-name-digit",
        app_edit("environment", [{"name": "1X", "value": ""}]),
        INVALID,
        says=(r"^app\.environment\[0\]\.name: must be an environment variable name",),
    ),
    # Other app rules, where both agree.
    manifest_row(
        "A-working-directory-relative",
        app_edit("workingDirectory", "work"),
        INVALID,
        says=(r"^app\.workingDirectory: must be an absolute path",),
    ),
    manifest_row(
        "A-event-handler-name",
        app_edit("eventHandlers", [{"name": "pre-stop", "exec": ["/x"]}]),
        INVALID,
        says=(r"^app\.eventHandlers\[0\]\.name: must be an event name",),
    ),
    manifest_row(
        "A-event-handlers-repeated",
        app_edit("eventHandlers", [{"name": "pre-start", "exec": ["/x"]}, {"name": "pre-start", "exec": ["/y"]}]),
        INVALID,
        says=(r"^app\.eventHandlers\[1\]\.name: must be unique",),
    ),
    manifest_row("A-user-empty", app_edit("user", ""), INVALID, says=(r"^app\.user: must be a non-empty string",)),
    manifest_row("A-group-missing", app_edit("group", DROP), INVALID, says=(r"^app\.group: is required",)),
    manifest_row(
        "A-exec-relative",
        app_edit("exec", ["hello"]),
        VALID,
        says=(r"^valid manifest$",),
        note="since spec v0.7.2 exec[0] may be relative (looked up in PATH)",
    ),
    manifest_row("A-app-null", edited(BASE, "app", None), VALID, says=(r"^valid manifest$",)),
    manifest_row(
        "A-unknown-key",
        edited(BASE, "x-build", {"by": "me"}),
        VALID,
        says=(r"^warning: x-build: unknown key, ignored$", r"^valid manifest$"),
    ),
    # acKind
    manifest_row(
        "K03-without-acKind",
        edited(BASE, "acKind", DROP),
        INVALID,
        CRASH,
        (r'^acKind: is required; must be the string "ImageManifest"',),
        '5.3 actool crash: acKind is required (it must be "ImageManifest")',
        actool_says="panic: bad ACKind",
    ),
    manifest_row(
        "K-acKind-PodManifest",
        {"acKind": "PodManifest", "acVersion": "0.8.11", "apps": []},
        INVALID,
        VALID,
        (r'^acKind: must be the string "ImageManifest"; got \'PodManifest\'',),
        "a manifest here is an ImageManifest (spec/aci.md); actool --type=manifest also takes a PodManifest",
    ),
    manifest_row("K-not-an-object", b"[]", INVALID, says=(r"^must be an appc ImageManifest",)),
    # JSON text (RFC 4627, which spec/aci.md names)
    manifest_row(
        "J-nan",
        manifest_text(BASE)[:-1] + b', "x": NaN}',
        INVALID,
        says=(r"^must be JSON \(RFC 4627\): NaN is not a JSON value",),
        note="Python's json reads NaN; Go's does not",
    ),
    manifest_row(
        "J-byte-order-mark",
        b"\xef\xbb\xbf" + manifest_text(BASE),
        INVALID,
        says=(r"^must be JSON \(RFC 4627\): it starts with a byte order mark",),
    ),
    manifest_row(
        "J-trailing-comma", manifest_text(BASE)[:-1] + b",}", INVALID, says=(r"^must be JSON \(RFC 4627\): Expecting",)
    ),
    manifest_row(
        "J-trailing-data", manifest_text(BASE) + b"{}", INVALID, says=(r"^must be JSON \(RFC 4627\): Extra data",)
    ),
    manifest_row(
        "J-invalid-utf8",
        manifest_text(edited(BASE, "labels.0.value", "1.0.0-XX")).replace(b"XX", b"\xff\xfe"),
        INVALID,
        VALID,
        (r"^must be JSON \(RFC 4627\): 'utf-8' codec can't decode byte 0xff",),
        "RFC 4627 §3: JSON text is Unicode (Go replaces invalid UTF-8 with U+FFFD)",
    ),
    manifest_row(
        "J-repeated-key",
        manifest_text(BASE).replace(b'"name": "example.com/hello"', b'"name": "Bad Name", "name": "example.com/x"'),
        VALID,
        INVALID,
        (r"^warning: name: the key is repeated in its object; the last value is the one checked", r"^valid manifest$"),
        "RFC 4627 §2.2: object names SHOULD be unique (a SHOULD: a warning; the last value counts, as in Go)",
        note="actool decodes every occurrence, so a bad first name fails even when a good one follows",
    ),
]


# --- Archive inputs ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Member:
    """One tar member to write: ``kind`` a tarfile type, ``data`` a file's bytes, ``link`` a link target."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    link: str = ""
    mode: int = 0o644


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    """A regular file member."""
    return Member(name, tarfile.REGTYPE, data, mode=mode)


def directory(name: str) -> Member:
    """A directory member."""
    return Member(name, tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Member:
    """A symbolic link member."""
    return Member(name, tarfile.SYMTYPE, link=target, mode=0o777)


MANIFEST = file("manifest", manifest_text(BASE))
ROOTFS = [directory("rootfs"), directory("rootfs/bin"), file("rootfs/bin/hello", b"#!/bin/sh\necho hello\n", 0o755)]
STANDARD = [MANIFEST, *ROOTFS]


def tar_bytes(members: list[Member], format: int = tarfile.USTAR_FORMAT) -> bytes:
    """An uncompressed tar of ``members``, in order, names written as given (raw bytes for surrogates)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format, encoding="utf-8", errors="surrogateescape") as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type, info.mode, info.mtime, info.linkname = member.kind, member.mode, 1, member.link
            info.uname = info.gname = "root"
            info.size = len(member.data) if member.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(member.data) if info.size else None)
    return buffer.getvalue()


def members_end(raw: bytes) -> int:
    """The offset where the members of an uncompressed tar end (its end-of-archive marker starts)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def v7(raw: bytes) -> bytes:
    """A ustar archive made a v7 one: no magic, version, owner names or prefix; checksums redone."""
    blocks = bytearray(raw)
    offset, end = 0, members_end(raw)
    while offset < end:
        header = blocks[offset : offset + tarfile.BLOCKSIZE]
        size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        header[257:500] = bytes(243)
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        blocks[offset : offset + tarfile.BLOCKSIZE] = header
        offset += tarfile.BLOCKSIZE + -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return bytes(blocks)


def zstd_frame(data: bytes) -> bytes:
    """A real zstd frame of ``data`` in one raw block (RFC 8878), as `zstd -d` reads it."""
    assert len(data) < 1 << 17
    header = b"\x28\xb5\x2f\xfd" + b"\xa0" + struct.pack("<I", len(data))  # single segment, 4-byte content size
    return header + ((len(data) << 3) | 1).to_bytes(3, "little") + data  # last block, raw


def gzipped(raw: bytes) -> bytes:
    """``raw`` compressed as gzip -n does."""
    return gzip.compress(raw, mtime=0)


def encrypted(raw: bytes, directory: Path, armor: bool = False) -> bytes:
    """``raw`` encrypted by gpg with a passphrase and AES256, as the spec allows."""
    home = directory / "gnupg"
    home.mkdir(mode=0o700)
    plain, secret = directory / "plain", directory / "secret"
    plain.write_bytes(raw)
    command = [require("gpg"), "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "x"]
    command += [
        "--symmetric",
        "--cipher-algo",
        "AES256",
        *(["--armor"] if armor else []),
        "-o",
        str(secret),
        str(plain),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=TIMEOUT)
    return secret.read_bytes()


def encrypted_archive(armor: bool) -> Callable[[Path], Path]:
    """``make`` for the STANDARD archive, gzipped, then encrypted (and ASCII-armored if ``armor``)."""

    def make(directory: Path) -> Path:
        path = directory / "image.aci"
        path.write_bytes(encrypted(gzipped(tar_bytes(STANDARD)), directory, armor))
        return path

    return make


def archive(
    members: list[Member] = STANDARD,
    compress: Callable[[bytes], bytes] = gzipped,
    name: str = "image.aci",
    format: int = tarfile.USTAR_FORMAT,
    edit: Callable[[bytes], bytes] = lambda raw: raw,
) -> Callable[[Path], Path]:
    """``make`` for an archive: the tar of ``members``, changed by ``edit``, compressed, written as ``name``."""

    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(compress(edit(tar_bytes(members, format))))
        return path

    return make


def archive_row(
    id: str,
    make: Callable[[Path], Path],
    spec: str,
    actool: str | None = None,
    says: tuple[str, ...] = (),
    rule: str = "",
    note: str = "",
    nix2aci_args: tuple[str, ...] = (),
    actool_args: tuple[str, ...] = ("--type=appimage",),
    actool_says: str = "",
) -> Row:
    """A row for an archive, type detected by nix2aci, --type=appimage for actool; actool defaults to the spec."""
    return Row(
        id, make, spec, spec if actool is None else actool, says, rule, note, nix2aci_args, actool_args, actool_says
    )


def with_manifest(document: dict[str, Any]) -> list[Member]:
    """STANDARD with another manifest."""
    return [file("manifest", manifest_text(document)), *ROOTFS]


def cut(size: int | Callable[[bytes], int]) -> Callable[[bytes], bytes]:
    """An ``edit`` keeping the first ``size`` bytes (or ``size(raw)``)."""
    return lambda raw: raw[: size(raw) if callable(size) else size]


G14 = "G14: only manifest and rootfs at the top level (a rootfs look-alike is neither)"
ONLY_TWO = r": only manifest and rootfs/\.\.\. may be in an ACI$"
DUPLICATE = r": duplicate entry \(the archive must have each name once\)$"
NOT_INSIDE = r": member names must be relative and stay inside the archive$"
CUT_SHORT = r"it is cut short$"
VALID_ACI = r"^valid aci$"
BIG_FILE = b"#!/bin/sh\n" + b"echo hello\n" * 300  # several blocks, to cut into

ARCHIVE_ROWS = [
    archive_row("R00-gzip", archive(), VALID, says=(VALID_ACI,)),
    archive_row("R01-bzip2", archive(compress=bz2.compress), VALID, says=(VALID_ACI,)),
    archive_row("R02-xz", archive(compress=lambda raw: lzma.compress(raw, format=lzma.FORMAT_XZ)), VALID),
    archive_row("R03-plain-tar", archive(compress=lambda raw: raw), VALID, says=(VALID_ACI,)),
    archive_row("R04-gnu-format", archive(format=tarfile.GNU_FORMAT), VALID, says=(VALID_ACI,)),
    archive_row(
        "R05-pax-long-names",
        archive(
            [*STANDARD, directory("rootfs/" + "d" * 150), file("rootfs/" + "d" * 150 + "/é")], format=tarfile.PAX_FORMAT
        ),
        VALID,
        says=(VALID_ACI,),
    ),
    archive_row("R06-manifest-last", archive([*ROOTFS, MANIFEST]), VALID, says=(VALID_ACI,)),
    archive_row(
        "R07-dot-slash-names",
        archive([Member("./" + member.name, member.kind, member.data, mode=member.mode) for member in STANDARD]),
        VALID,
        says=(VALID_ACI,),
    ),
    archive_row("R08-dot-entry", archive([directory("."), *STANDARD]), VALID, says=(VALID_ACI,)),
    archive_row("R09-only-manifest-and-rootfs", archive([MANIFEST, directory("rootfs")]), VALID, says=(VALID_ACI,)),
    archive_row(
        "R-rootfs-special-members",
        archive(
            [
                *STANDARD,
                Member("rootfs/bin/link", tarfile.LNKTYPE, link="rootfs/bin/hello"),
                Member("rootfs/fifo", tarfile.FIFOTYPE),
                Member("rootfs/null", tarfile.CHRTYPE),
                symlink("rootfs/passwd", "/etc/passwd"),
                symlink("rootfs/up", "../../.."),
                file("rootfs/bin/su", b"x", 0o4755),
            ]
        ),
        VALID,
        says=(VALID_ACI,),
        note="the spec puts no rule on what rootfs holds (a safe extractor checks links itself)",
    ),
    archive_row(
        "R-non-utf8-name",
        archive([*STANDARD, file("rootfs/caf\udce9")]),
        VALID,
        says=(VALID_ACI,),
        note="names are bytes; Latin-1 'café' is fine",
    ),
    archive_row(
        "R10-no-rootfs-entry",
        archive([MANIFEST, *ROOTFS[1:]]),
        INVALID,
        says=(r"^an ACI must contain rootfs$",),
        note="ambiguous in the spec; decided invalid: rootfs is 'a directory' whose properties (rule 4) need an entry",
        actool_says="no rootfs found",
    ),
    archive_row("R-no-rootfs-at-all", archive([MANIFEST]), INVALID, says=(r"^an ACI must contain rootfs$",)),
    archive_row("R-no-manifest", archive(ROOTFS), INVALID, says=(r"^an ACI must contain manifest$",)),
    archive_row(
        "R-double-slash-duplicate",
        archive([*STANDARD, file("rootfs/bin//hello")]),
        INVALID,
        says=(r"^member 'rootfs/bin//hello'" + DUPLICATE,),
    ),
    archive_row(
        "R-trailing-slash-duplicate",
        archive([*STANDARD, Member("rootfs/bin/", tarfile.DIRTYPE, mode=0o755)]),
        INVALID,
        says=(r"^member 'rootfs/bin'" + DUPLICATE,),
    ),
    *[
        archive_row(
            f"R-name-{id}",
            archive([*STANDARD, file(name)]),
            INVALID,
            says=(rf"^member '{re.escape(name)}'{NOT_INSIDE}",),
        )
        for id, name in (
            ("absolute-manifest", "/manifest"),
            ("absolute-rootfs", "/rootfs/x"),
            ("absolute-etc", "/etc/passwd"),
            ("dot-dot", "../evil"),
            ("rootfs-dot-dot-dot-dot", "rootfs/../../evil"),
        )
    ],
    archive_row(
        "R-name-rootfs-dot-dot-etc",
        archive([*STANDARD, file("rootfs/../etc/passwd")]),
        INVALID,
        says=(r"^member 'rootfs/\.\./etc/passwd'" + ONLY_TWO,),
    ),
    *[
        archive_row(id, archive([*STANDARD, member]), INVALID, VALID, (rf"^member '{name}'{ONLY_TWO}",), G14)
        for id, member, name in (
            ("R14-rootfs2", file("rootfs2/x"), "rootfs2/x"),
            ("R15-rootfs-bak", file("rootfs.bak"), r"rootfs\.bak"),
            ("X10-rootfsfoo", directory("rootfsfoo"), "rootfsfoo"),
        )
    ],
    *[
        archive_row(
            f"R-top-level-{name}",
            archive([*STANDARD, file(name)]),
            INVALID,
            says=(rf"^member '{re.escape(name)}'{ONLY_TWO}",),
        )
        for name in ("README", "manifest.asc")
    ],
    archive_row(
        "R-uppercase-Manifest",
        archive([file("Manifest", MANIFEST.data), *ROOTFS]),
        INVALID,
        says=(r"^member 'Manifest'" + ONLY_TWO, r"^an ACI must contain manifest$"),
    ),
    archive_row(
        "R23-manifest-twice",
        archive([*STANDARD, MANIFEST]),
        INVALID,
        says=(r"^member 'manifest'" + DUPLICATE,),
        note="actool rejects it only because the two copies concatenated are not JSON",
    ),
    archive_row(
        "R-manifest-twice-second-empty",
        archive([*STANDARD, file("manifest")]),
        INVALID,
        VALID,
        (r"^member 'manifest'" + DUPLICATE,),
        "G15: no duplicate entries (actool appends the copies, and an empty one leaves valid JSON)",
    ),
    archive_row(
        "R24-rootfs-twice",
        archive([*STANDARD, directory("rootfs")]),
        INVALID,
        VALID,
        (r"^member 'rootfs'" + DUPLICATE,),
        "G15: no duplicate entries",
    ),
    archive_row(
        "R25-manifest-directory",
        archive([directory("manifest"), *ROOTFS]),
        INVALID,
        says=(r"^member 'manifest': manifest must be a regular file$",),
        note="actool rejects it only because a directory's content reads as empty JSON",
    ),
    archive_row(
        "R26-manifest-symlink",
        archive([symlink("manifest", "rootfs/manifest"), *ROOTFS]),
        INVALID,
        says=(r"^member 'manifest': manifest must be a regular file$",),
    ),
    archive_row(
        "R-manifest-hardlink",
        archive([*ROOTFS, file("rootfs/m", MANIFEST.data), Member("manifest", tarfile.LNKTYPE, link="rootfs/m")]),
        INVALID,
        says=(r"^member 'manifest': manifest must be a regular file$",),
    ),
    archive_row(
        "R-manifest-directory-then-file",
        archive([directory("manifest"), *STANDARD]),
        INVALID,
        VALID,
        (r"^member 'manifest': manifest must be a regular file$", r"^member 'manifest'" + DUPLICATE),
        "G17: manifest is a regular file (actool reads a directory as empty content) and G15: no duplicates",
    ),
    archive_row(
        "R-rootfs-file",
        archive([MANIFEST, file("rootfs")]),
        INVALID,
        says=(r"^member 'rootfs': rootfs must be a directory$",),
    ),
    archive_row(
        "R-rootfs-symlink",
        archive([MANIFEST, symlink("rootfs", "/")]),
        INVALID,
        says=(r"^member 'rootfs': rootfs must be a directory$",),
    ),
    archive_row(
        "R42-no-aci-suffix",
        archive(name="image.tar.gz"),
        INVALID,
        VALID,
        (r"^an ACI's file name must end in \.aci$",),
        "G16: an ACI's name ends in .aci (actool sniffs the content)",
    ),
    # Compression
    archive_row(
        "R-zstd",
        archive(compress=zstd_frame),
        INVALID,
        says=(r"^is compressed with zstd; images may only be compressed with gzip, bzip2 or xz$",),
    ),
    archive_row(
        "R-lzma-alone",
        archive(compress=lambda raw: lzma.compress(raw, format=lzma.FORMAT_ALONE)),
        INVALID,
        says=(r"^is compressed with lzma \(the legacy \.lzma format, not xz\)",),
    ),
    archive_row(
        "R-gzip-twice",
        archive(compress=lambda raw: gzipped(gzipped(raw))),
        INVALID,
        says=(r"^is compressed twice \(gzip inside gzip\)",),
    ),
    archive_row(
        "R-gzip-concatenated",
        archive(compress=lambda raw: gzipped(raw[:1000]) + gzipped(raw[1000:])),
        VALID,
        says=(VALID_ACI,),
        note="a gzip file may hold several members (RFC 1952)",
    ),
    archive_row(
        "R-gzip-trailing-garbage",
        archive(compress=lambda raw: gzipped(raw) + b"garbage!"),
        INVALID,
        VALID,
        (r"^has bytes after the end of its gzip data that are not gzip data$",),
        "1.5 gzip: a gzip file is a series of whole members (RFC 1952); rkt reads it all for the image ID",
    ),
    archive_row(
        "R-gzip-without-trailer",
        archive(compress=lambda raw: gzipped(raw)[:-8]),
        INVALID,
        VALID,
        (r"^has gzip data that ends early: it is cut short$",),
        "1.5 gzip: a member ends with its CRC and size (RFC 1952); rkt reads it all for the image ID",
        note="actool stops reading at the tar's end-of-archive marker",
    ),
    archive_row(
        "R-gzip-cut",
        archive(compress=lambda raw: gzipped(raw)[:200]),
        INVALID,
        says=(r"^has gzip data that ends early: it is cut short$",),
    ),
    archive_row(
        "R-gzip-damaged",
        archive(compress=lambda raw: gzipped(raw)[:30] + b"\xff" * 20 + gzipped(raw)[50:]),
        INVALID,
        says=(r"^has damaged gzip data: ",),
    ),
    archive_row(
        "R-bzip2-trailing-garbage",
        archive(compress=lambda raw: bz2.compress(raw) + b"garbage!"),
        INVALID,
        VALID,
        (r"^has bytes after the end of its bzip2 data that are not bzip2 data$",),
        "1.5 bzip2: a bzip2 file is a series of whole streams; rkt reads it all for the image ID",
    ),
    archive_row(
        "R-xz-without-index",
        archive(compress=lambda raw: lzma.compress(raw)[:-20]),
        INVALID,
        VALID,
        (r"^has xz data that ends early: it is cut short$",),
        "1.5 xz: an .xz file ends with its index and footer; rkt reads it all for the image ID",
        note="actool stops reading at the tar's end-of-archive marker, before the cut",
    ),
    archive_row(
        "R-xz-cut",
        archive(compress=lambda raw: lzma.compress(raw)[:100]),
        INVALID,
        says=(r"^has xz data that ends early: it is cut short$",),
    ),
    # §5.2: actool wants ustar magic; the spec wants a tar.
    archive_row(
        "R45-v7-tar",
        archive(compress=lambda raw: raw, edit=v7),
        VALID,
        INVALID,
        (r"^warning: is a v7 tar \(its headers have no ustar magic\)", VALID_ACI),
        "5.2 v7 tar: spec-valid (it MUST be a tar; v7 is the original tar format)",
        actool_says="unknown image filetype",
    ),
    archive_row(
        "R46-v7-tar-detected",
        archive(compress=lambda raw: raw, edit=v7),
        VALID,
        INVALID,
        (r"^warning: is a v7 tar", VALID_ACI),
        "5.2 v7 tar: spec-valid",
        actool_args=(),
        actool_says="unable to detect filetype",
    ),
    archive_row("R-v7-tar-gzip", archive(edit=v7), VALID, says=(VALID_ACI,), note="actool finds gzip by its magic"),
    # §5.2: an encrypted ACI is allowed and cannot be read without its key.
    *[
        Row(
            id,
            encrypted_archive(armor),
            NOT_CHECKED,
            INVALID,
            (r"^not checked: it is PGP-encrypted, which the spec allows; decrypt it to check it$",),
            "5.2 encrypted: spec-valid (PGP, AES), neither valid nor invalid without its key",
            actool_args=("--type=appimage",),
        )
        for id, armor in (("R48-encrypted", False), ("R48-encrypted-armored", True))
    ],
    # Cut and damaged tars, uncompressed to cut at exact offsets: the headers of STANDARD + rootfs/big are at
    # 0, 1024, 1536, 2048 and 3072, and rootfs/big's contents at 3584.
    *[
        archive_row(
            id,
            archive([*STANDARD, file("rootfs/big", BIG_FILE)], compress=lambda raw: raw, edit=edit),
            INVALID,
            says=(says,),
        )
        for id, edit, says in (
            ("R-cut-in-header", cut(1700), rf"^ends in the middle of the tar header at offset 1536: {CUT_SHORT}"),
            ("R-cut-in-contents", cut(3584 + 1000), r"^ends in the middle of a member's contents: it is cut short$"),
            ("R-cut-in-first-header", cut(300), r"^must be a tar archive.*: truncated header$"),
            ("R-empty-file", cut(0), r"^must be a tar archive.*: empty file$"),
            (
                "R-damaged-header",
                lambda raw: raw[:1536] + b"x" * 512 + raw[2048:],
                r"^has an unreadable tar header at offset 1536 \(bad checksum\)$",
            ),
        )
    ],
    archive_row(
        "R-no-end-of-archive",
        archive(compress=lambda raw: raw, edit=cut(members_end)),
        INVALID,
        VALID,
        (rf"^ends after 4 members without the tar end-of-archive marker \(two zero blocks\): {CUT_SHORT}",),
        "1.2 a tar file: POSIX ustar ends with two zero blocks (else a cut archive passes for a smaller one)",
    ),
    archive_row(
        "R-one-zero-block",
        archive(compress=lambda raw: raw, edit=lambda raw: raw[: members_end(raw) + 512]),
        INVALID,
        VALID,
        (rf"^ends after one zero block: a tar archive ends with two \({CUT_SHORT[:-1]}\)",),
        "1.2 a tar file: POSIX ustar ends with two zero blocks",
    ),
    archive_row(
        "R-trailing-bytes-after-end",
        archive(compress=lambda raw: raw + b"garbage" * 100),
        VALID,
        says=(VALID_ACI,),
        note="bytes after the end-of-archive marker are not part of the tar",
    ),
    archive_row(
        "R-garbage",
        archive(compress=lambda raw: bytes(range(256)) * 8),
        INVALID,
        says=(r"^must be a tar archive, plain or compressed with gzip, bzip2 or xz: invalid header$",),
    ),
    # The manifest rules apply inside an archive, with the field path under manifest.
    archive_row(
        "R-manifest-name-double-slash",
        archive(with_manifest(edited(BASE, "name", "example.com//x"))),
        INVALID,
        VALID,
        (rf"^manifest\.name: {AC_IDENTIFIER}",),
        "G1: AC Identifier regex",
    ),
    archive_row(
        "R-manifest-not-json",
        archive([file("manifest", b"{nope"), *ROOTFS]),
        INVALID,
        says=(r"^manifest: must be JSON \(RFC 4627\): Expecting property name",),
    ),
    archive_row(
        "K03-without-acKind-in-aci",
        archive(with_manifest(edited(BASE, "acKind", DROP))),
        INVALID,
        says=(r"^manifest\.acKind: is required",),
        note="actool crashes on it only with --type=manifest",
        actool_says='missing or bad ACKind (must be "ImageManifest")',
    ),
    archive_row(
        "I18-isolator-without-value-in-aci",
        archive(with_manifest(app_edit("isolators", [isolator("resource/cpu")]))),
        INVALID,
        CRASH,
        (r"^manifest\.app\.isolators\[0\]\.value: is required",),
        "5.3 actool crash: an isolator is {name, value}",
        actool_says="panic",
    ),
    archive_row(
        "I05-isolator-unknown-in-aci",
        archive(with_manifest(app_edit("isolators", [isolator("example.com/my-isolator", 1)]))),
        VALID,
        INVALID,
        (r"^warning: manifest\.app\.isolators\[0\]\.name: unknown isolator", VALID_ACI),
        "5.2 unknown isolator: spec-valid",
    ),
]


# --- Image layouts (unpacked ACIs) --------------------------------------------------


def image_layout(entries: dict[str, bytes | None], document: dict[str, Any] = BASE) -> Callable[[Path], Path]:
    """``make`` for an image layout directory: manifest, rootfs/bin/hello, and ``entries`` (None: a directory)."""

    def make(directory: Path) -> Path:
        root = directory / "layout"
        (root / "rootfs" / "bin").mkdir(parents=True)
        (root / "rootfs" / "bin" / "hello").write_bytes(b"#!/bin/sh\n")
        (root / "manifest").write_bytes(manifest_text(document))
        for name, content in entries.items():
            path = root / name
            if content is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.write_bytes(content)
        return root

    return make


def layout_row(id: str, make: Callable[[Path], Path], spec: str, actool: str | None = None, **fields: Any) -> Row:
    """A row for an image layout directory: nix2aci detects it, actool reads it as --type=layout."""
    return Row(id, make, spec, spec if actool is None else actool, actool_args=("--type=layout",), **fields)


def without_rootfs(directory: Path) -> Path:
    """An image layout with only its manifest."""
    root = directory / "layout"
    root.mkdir()
    (root / "manifest").write_bytes(manifest_text(BASE))
    return root


def manifest_directory(directory: Path) -> Path:
    """An image layout whose manifest is a directory."""
    root = directory / "layout"
    (root / "rootfs").mkdir(parents=True)
    (root / "manifest").mkdir()
    return root


LAYOUT_ROWS = [
    layout_row("Y00-layout", image_layout({}), VALID, says=(r"^valid layout$",)),
    layout_row(
        "Y04-layout-rootfs2",
        image_layout({"rootfs2": None}),
        INVALID,
        VALID,
        says=(r"^rootfs2: only manifest and rootfs may be in an image layout$",),
        rule=G14,
    ),
    layout_row(
        "Y-layout-readme",
        image_layout({"README": b"hi"}),
        INVALID,
        says=(r"^README: only manifest and rootfs may be in an image layout$",),
    ),
    layout_row("Y-layout-no-rootfs", without_rootfs, INVALID, says=(r"^rootfs: must be a directory$",)),
    layout_row(
        "Y-layout-manifest-directory", manifest_directory, INVALID, says=(r"^manifest: must be a regular file$",)
    ),
    layout_row(
        "Y-layout-manifest-name",
        image_layout({}, edited(BASE, "name", "a-.b")),
        INVALID,
        VALID,
        says=(rf"^manifest\.name: {AC_IDENTIFIER}",),
        rule="G1: AC Identifier regex",
    ),
]


# --- OCI runtime bundles and image layouts (runtime-spec v1.0.2, image-spec v1.0.2) ----

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def oci_json(document: Any) -> bytes:
    """A JSON blob as the tests write them."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type: str, content: bytes) -> dict[str, Any]:
    """The descriptor of a blob."""
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(content).hexdigest(), "size": len(content)}


def oci_layout(
    layer: Callable[[bytes], bytes] = lambda blob: blob,
    config: Callable[[dict[str, Any]], Any] = lambda document: document,
    manifest: Callable[[dict[str, Any]], Any] = lambda document: document,
    index: Callable[[dict[str, Any]], Any] = lambda document: document,
    layout_file: bytes | None = b'{"imageLayoutVersion":"1.0.0"}',
    after: Callable[[Path, dict[str, str]], None] = lambda root, digests: None,
) -> Callable[[Path], Path]:
    """``make`` for an OCI image layout with one gzip layer (bin/hello).

    The layer blob and each document are changed by their function before they
    are hashed (so the descriptors pointing at them stay right); ``after(root, digests)`` changes the
    written layout (``digests``: layer, config, manifest -> hex digest).
    """

    def make(parent: Path) -> Path:
        root = parent / "oci"
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_tar = tar_bytes([directory("bin"), file("bin/hello", b"#!/bin/sh\n", 0o755)])
        layer_blob = layer(gzipped(layer_tar))
        config_document = config(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": ["/bin/hello"]},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
            }
        )
        config_blob = oci_json(config_document)
        manifest_blob = oci_json(
            manifest(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", config_blob),
                    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer_blob)],
                }
            )
        )
        index_document = index(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        **descriptor(OCI_MANIFEST, manifest_blob),
                        "platform": {"architecture": "amd64", "os": "linux"},
                        "annotations": {REF_NAME: "latest"},
                    }
                ],
            }
        )
        digests = {}
        for name, blob in (("layer", layer_blob), ("config", config_blob), ("manifest", manifest_blob)):
            digests[name] = hashlib.sha256(blob).hexdigest()
            (blobs / digests[name]).write_bytes(blob)
        (root / "index.json").write_bytes(oci_json(index_document))
        if layout_file is not None:
            (root / "oci-layout").write_bytes(layout_file)
        after(root, digests)
        return root

    return make


def blob_path(root: Path, digests: dict[str, str], name: str) -> Path:
    """The path of the blob called ``name`` (layer, config, manifest)."""
    return root / "blobs" / "sha256" / digests[name]


def corrupt(name: str) -> Callable[[Path, dict[str, str]], None]:
    """An ``after`` flipping the last byte of a blob (same size, other digest)."""

    def after(root: Path, digests: dict[str, str]) -> None:
        path = blob_path(root, digests, name)
        content = path.read_bytes()
        path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))

    return after


def oci_layout_row(id: str, make: Callable[[Path], Path], spec: str, says: tuple[str, ...], note: str = "") -> Row:
    """A row for an OCI image layout (no actool; the note names the image-spec rule)."""
    return Row(id, make, spec, None, says, note=note, nix2aci_args=("--type", "oci-layout"))


LAYER_0 = r"^index\.json\.manifests\[0\] layers\[0\]"
OCI_LAYOUT_ROWS = [
    oci_layout_row("I00-oci-layout", oci_layout(), VALID, (r"^valid oci-layout$",)),
    oci_layout_row(
        "I12-oci-no-ref-name",
        oci_layout(index=lambda document: edited(document, "manifests.0.annotations", {})),
        VALID,
        (r"^valid oci-layout$",),
        "decided valid: ref.name only names a tag for tools that look one up (skopeo, umoci then fail to find it)",
    ),
    oci_layout_row(
        "I19-oci-no-manifests",
        oci_layout(index=lambda document: edited(document, "manifests", [])),
        VALID,
        (r"^valid oci-layout$",),
        "image-index.md: manifests is REQUIRED and may be empty",
    ),
    oci_layout_row(
        "I02-oci-wrong-diff-ids",
        oci_layout(config=lambda document: edited(document, "rootfs.diff_ids.0", "sha256:" + "0" * 64)),
        INVALID,
        (r"^index\.json\.manifests\[0\] config\.rootfs\.diff_ids: must be the uncompressed layers' digests",),
        "config.md: diff_ids are the digests of the uncompressed layers",
    ),
    oci_layout_row(
        "I16-oci-two-diff-ids-one-layer",
        oci_layout(config=lambda document: edited(document, "rootfs.diff_ids.1", "sha256:" + "0" * 64)),
        INVALID,
        (r"config\.rootfs\.diff_ids: must have one entry per layer \(1\), has 2$",),
        "config.md: one diff_id per layer, in order",
    ),
    oci_layout_row(
        "I10-oci-layer-size-plus-one",
        oci_layout(manifest=lambda document: edited(document, "layers.0.size", document["layers"][0]["size"] + 1)),
        INVALID,
        (LAYER_0 + r"\.size: must be the blob's size \d+, got \d+$",),
        "descriptor.md: size is the blob's size in bytes",
    ),
    oci_layout_row(
        "I11-oci-index-size-plus-one",
        oci_layout(index=lambda document: edited(document, "manifests.0.size", document["manifests"][0]["size"] + 1)),
        INVALID,
        (r"^index\.json\.manifests\[0\]\.size: must be the blob's size",),
        "descriptor.md: size is the blob's size in bytes",
    ),
    oci_layout_row(
        "I05-oci-layer-corrupted",
        oci_layout(after=corrupt("layer")),
        INVALID,
        (LAYER_0 + r"\.digest: must be the blob's digest sha256:",),
        "image-layout.md: a blob's content hashes to its digest",
    ),
    oci_layout_row(
        "I-oci-layer-damaged-gzip",
        oci_layout(layer=lambda blob: blob[:20] + b"\xff" * 20 + blob[40:]),
        INVALID,
        (LAYER_0 + r": must be a readable layer: it has damaged gzip data: ",),
        "layer.md: a +gzip layer is a gzip of a tar (its digest and size are right here)",
    ),
    oci_layout_row(
        "I24-oci-manifest-altered",
        oci_layout(
            after=lambda root, digests: blob_path(root, digests, "manifest").write_bytes(b'{"schemaVersion":2}')
        ),
        INVALID,
        (r"^index\.json\.manifests\[0\]\.size: must be the blob's size 19", r"^index\.json\.manifests\[0\]\.digest:"),
        "image-layout.md: a blob's content hashes to its digest",
    ),
    oci_layout_row(
        "I06-oci-layer-missing",
        oci_layout(after=lambda root, digests: blob_path(root, digests, "layer").unlink()),
        VALID,
        (r"^warning: index\.json\.manifests\[0\] layers\[0\]: blob sha256:[0-9a-f]{64} is not in blobs/", r"^valid"),
        "image-layout.md: blobs/ MAY lack a referenced blob (fetched from elsewhere): valid, with a warning",
    ),
    oci_layout_row(
        "I07-oci-no-oci-layout",
        oci_layout(layout_file=None),
        INVALID,
        (r"^oci-layout: must be a regular file holding a JSON layout$",),
        "image-layout.md: oci-layout MUST exist",
    ),
    oci_layout_row(
        "I08-oci-layout-version-2",
        oci_layout(layout_file=b'{"imageLayoutVersion":"2.0.0"}'),
        INVALID,
        (r"^oci-layout\.imageLayoutVersion: must be \"1\.0\.0\"",),
        "image-layout.md v1.0.2: the version is 1.0.0",
    ),
    oci_layout_row(
        "I09-oci-schema-version-1",
        oci_layout(manifest=lambda document: edited(document, "schemaVersion", 1)),
        INVALID,
        (r"\(manifest blob\)\.schemaVersion: must be 2",),
        "manifest.md: schemaVersion 2",
    ),
    oci_layout_row(
        "I03-oci-rootfs-type-layer",
        oci_layout(config=lambda document: edited(document, "rootfs.type", "layer")),
        INVALID,
        (r"\(config blob\)\.rootfs\.type: must be \"layers\"",),
        "config.md: rootfs.type MUST be layers",
    ),
    oci_layout_row(
        "I04-oci-config-without-os",
        oci_layout(config=lambda document: edited(document, "os", DROP)),
        INVALID,
        (r"\(config blob\)\.os: is required",),
        "config.md: os is REQUIRED",
    ),
    oci_layout_row(
        "I22-oci-descriptor-without-media-type",
        oci_layout(index=lambda document: edited(document, "manifests.0.mediaType", DROP)),
        INVALID,
        (r"^index\.json\.manifests\[0\]\.mediaType: is required",),
        "descriptor.md: mediaType is REQUIRED",
    ),
    oci_layout_row(
        "I-oci-index-nan",
        oci_layout(after=lambda root, digests: (root / "index.json").write_bytes(b'{"a":NaN}')),
        INVALID,
        (r"^index\.json: must be JSON \(RFC 4627\): NaN",),
        "image-spec documents are JSON",
    ),
]

MINIMAL_FOR_START = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
}


def bundle(config: dict[str, Any] | None, rootfs: bool = True) -> Callable[[Path], Path]:
    """``make`` for a runtime bundle with ``config`` as config.json (None: none) and a rootfs directory."""

    def make(directory: Path) -> Path:
        root = directory / "bundle"
        root.mkdir()
        if rootfs:
            (root / "rootfs").mkdir()
        if config is not None:
            (root / "config.json").write_bytes(json.dumps(config).encode())
        return root

    return make


def bundle_row(id: str, config: dict[str, Any] | None, spec: str, says: tuple[str, ...], note: str = "") -> Row:
    """A row for a runtime bundle (no actool; the note names the runtime-spec rule or runc's measurement)."""
    return Row(id, bundle(config), spec, None, says, note=note, nix2aci_args=("--type", "oci-bundle"))


def config_edit(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL_FOR_START with ``path`` set (DROP removes)."""
    return edited(MINIMAL_FOR_START, path, value)


OCI_BUNDLE_ROWS = [
    bundle_row("O00-bundle", MINIMAL_FOR_START, VALID, (r"^valid oci-bundle$",), "runtime-spec good/minimal-for-start"),
    bundle_row(
        "O-bundle-without-config",
        None,
        INVALID,
        (r"^config\.json: must be a regular file",),
        "bundle.md: config.json is REQUIRED",
    ),
    bundle_row(
        "O01-oci-version-missing",
        config_edit("ociVersion", DROP),
        INVALID,
        (r"^config\.json\.ociVersion: is required",),
        "config.md: ociVersion is REQUIRED (runc runs it anyway)",
    ),
    bundle_row(
        "O03-oci-version-garbage",
        config_edit("ociVersion", "garbage"),
        INVALID,
        (r"^config\.json\.ociVersion: must be a SemVer",),
        "config.md: ociVersion is SemVer (runc runs it anyway)",
    ),
    bundle_row(
        "O04-root-missing",
        config_edit("root", DROP),
        INVALID,
        (r"^config\.json\.root: is required",),
        "config.md: root is REQUIRED on Linux",
    ),
    bundle_row(
        "O05-root-path-nonexistent",
        config_edit("root.path", "nope"),
        INVALID,
        (r"^config\.json\.root\.path: must name a directory of the bundle$",),
        "config.md: the root path MUST exist",
    ),
    bundle_row(
        "O07-cwd-relative",
        config_edit("process.cwd", "tmp"),
        INVALID,
        (r"^config\.json\.process\.cwd: must be an absolute",),
        "config.md: cwd MUST be absolute",
    ),
    bundle_row(
        "O09-args-empty",
        config_edit("process.args", []),
        INVALID,
        (r"^config\.json\.process\.args: must be a non-empty",),
        "config.md: at least one arg is REQUIRED on POSIX",
    ),
    bundle_row(
        "O14-env-without-equals",
        config_edit("process.env", ["NOEQUALS"]),
        INVALID,
        (r"^config\.json\.process\.env\[0\]: must be a NAME=VALUE string",),
        "config.md: env is in environ form",
    ),
    bundle_row(
        "O16-mount-destination-relative",
        config_edit("mounts", [{"destination": "proc", "type": "proc"}]),
        INVALID,
        (r"^config\.json\.mounts\[0\]\.destination: must be an absolute",),
        "config.md: destination MUST be absolute",
    ),
    bundle_row(
        "O18-namespace-twice",
        config_edit("linux", {"namespaces": [{"type": "pid"}, {"type": "pid"}]}),
        INVALID,
        (r"^config\.json\.linux\.namespaces: must name each type once, 'pid' is there 2 times$",),
        "config-linux.md: a duplicate namespace type MUST be an error",
    ),
    bundle_row(
        "O19-namespace-bogus",
        config_edit("linux", {"namespaces": [{"type": "bogus"}]}),
        INVALID,
        (r"^config\.json\.linux\.namespaces\[0\]\.type: must be one of pid",),
        "config-linux.md: the namespace types",
    ),
    bundle_row(
        "O25-rlimits-twice",
        config_edit("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2),
        INVALID,
        (r"^config\.json\.process\.rlimits: must set each type once, RLIMIT_NOFILE is there 2 times$",),
        "config.md: duplicate rlimit types MUST be an error (runc runs it anyway)",
    ),
    bundle_row(
        "O29-hostname-without-uts",
        {**MINIMAL_FOR_START, "hostname": "x"},
        INVALID,
        (r"^config\.json\.hostname: needs a uts namespace",),
        "config.md: a hostname needs a private uts namespace",
    ),
]

ROWS = MANIFEST_ROWS + ARCHIVE_ROWS + LAYOUT_ROWS + OCI_LAYOUT_ROWS + OCI_BUNDLE_ROWS

# Every row where actool's verdict is not the spec's (and so not nix2aci's), by id.
DIFFERENCES = [
    "M08-name-double-slash",
    "M09-name-double-dot",
    "M10-name-dash-dot",
    "G1-label-name",
    "G1-annotation-name",
    "G1-dependency-image-name",
    "P13-mount-name-double-dash",
    "G2-port-name-double-dash",
    "L30-label-without-name",
    "L31-label-without-value",
    "V06-version-0.1.0",
    "V09-version-0.8.12",
    "V10-version-1.0.0",
    "V11-version-99.0.0",
    "V12-version-build",
    "V13-version-prerelease",
    "V16-version-leading-zero",
    "A17-negative-gid",
    "P08-mount-without-name",
    "P09-mount-without-path",
    "P10-mount-empty-path",
    "T07-port-without-name",
    "T10-port-without-protocol",
    "T15-port-count-0",
    "I08-capability-unknown",
    "I10-capability-retain-and-remove",
    "I05-isolator-unknown",
    "I18-isolator-without-value",
    "D06-image-id-not-hex",
    "D10-image-id-short",
    "W02-whitelist-relative",
    "W04-whitelist-empty",
    "N11-systemd-notify-maybe",
    "J05-key-ACKIND",
    "J05-key-Name",
    "J05-key-acversion",
    "J05-key-supplementaryGids",
    "P02-mount-names-repeated",
    "T11-port-names-repeated",
    "K03-without-acKind",
    "K-acKind-PodManifest",
    "J-invalid-utf8",
    "J-repeated-key",
    "R14-rootfs2",
    "R15-rootfs-bak",
    "X10-rootfsfoo",
    "R-manifest-twice-second-empty",
    "R24-rootfs-twice",
    "R-manifest-directory-then-file",
    "R42-no-aci-suffix",
    "R-gzip-trailing-garbage",
    "R-gzip-without-trailer",
    "R-bzip2-trailing-garbage",
    "R-xz-without-index",
    "R45-v7-tar",
    "R46-v7-tar-detected",
    "R48-encrypted",
    "R48-encrypted-armored",
    "R-no-end-of-archive",
    "R-one-zero-block",
    "R-manifest-name-double-slash",
    "I18-isolator-without-value-in-aci",
    "I05-isolator-unknown-in-aci",
    "Y04-layout-rootfs2",
    "Y-layout-manifest-name",
]


def verdict_of(status: int, table: dict[int, str], command: str, output: str) -> str:
    """The verdict an exit status stands for; any other status fails the test."""
    if status not in table:
        pytest.fail(f"{command} exited {status}:\n{output}")
    return table[status]


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the checkers made of a row's input: ``path``, the input as written; nix2aci's
    verdict and output; actool's verdict (None where it does not read the input) and output."""

    path: Path
    nix2aci: str
    nix2aci_result: subprocess.CompletedProcess
    actool: str | None
    actool_output: str


def observe_row(row: Row, directory: Path) -> Observation:
    """Write ``row``'s input into the empty ``directory``; run nix2aci validate and, for appc inputs, actool on it."""
    path = row.make(directory)
    result = nix2aci("validate", *row.nix2aci_args, str(path), check=False, timeout=TIMEOUT)
    verdict = verdict_of(result.returncode, NIX2ACI_VERDICTS, "nix2aci validate", result.stdout + result.stderr)
    actool, actool_output = None, ""
    if row.actool is not None:
        checked = run_guarded(
            [require("actool"), "--debug", "validate", *row.actool_args, str(path)], check=False, timeout=TIMEOUT
        )
        actool_output = checked.stdout + checked.stderr
        actool = verdict_of(checked.returncode, ACTOOL_VERDICTS, "actool validate", actool_output)
    return Observation(path, verdict, result, actool, actool_output)


@pytest.fixture(scope="session")
def observe(tmp_path_factory) -> Callable[[Row], Observation]:
    """``observe(row)``: the row's Observation, made once per session whichever test asks
    first, so each test holds alone and the whole file runs each checker once a row."""
    made: dict[str, Observation] = {}

    def observation(row: Row) -> Observation:
        if row.id not in made:
            made[row.id] = observe_row(row, tmp_path_factory.mktemp("row", numbered=True))
        return made[row.id]

    return observation


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_row(row: Row, observe: Callable[[Row], Observation]) -> None:
    """nix2aci gives the spec's verdict with the expected lines; actool gives the verdict spec-notes measured."""
    seen = observe(row)
    path, result = seen.path, seen.nix2aci_result
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    lines = result.stdout.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), output
    said = [line.removeprefix(f"{path}: ") for line in lines]
    for pattern in row.says:
        assert any(re.search(pattern, line) for line in said), f"no line matches {pattern!r}:\n{output}"
    if seen.nix2aci != VALID:
        assert not any(line.startswith("valid ") for line in said), output
    if not any(pattern.startswith("^warning: ") for pattern in row.says):
        assert not any(line.startswith("warning: ") for line in said), output
    if row.actool is not None:
        assert row.actool_says in seen.actool_output
    assert seen.nix2aci == row.spec, output
    assert seen.actool == row.actool, (
        f"actool said {seen.actool}, spec-notes measured {row.actool}:\n{seen.actool_output}"
    )


def test_rows_are_well_formed() -> None:
    """Unique ids; a rule exactly where actool's verdict is not the spec's; a nix2aci line to check for each row."""
    ids = [row.id for row in ROWS]
    assert len(set(ids)) == len(ids)
    for row in ROWS:
        differs = row.actool is not None and row.actool != row.spec
        assert bool(row.rule) == differs, row.id
        assert row.says or row.spec == VALID, row.id


def test_differences_are_exactly_the_documented_ones(observe: Callable[[Row], Observation]) -> None:
    """The rows where actool and nix2aci differ, declared and as observed on every row actool reads, are DIFFERENCES."""
    declared = [row.id for row in ROWS if row.actool is not None and row.actool != row.spec]
    assert declared == DIFFERENCES
    appc_rows = [row for row in ROWS if row.actool is not None]
    observed = [row.id for row in appc_rows if observe(row).actool != observe(row).nix2aci]
    assert observed == DIFFERENCES

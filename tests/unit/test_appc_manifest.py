"""ImageManifest: a full valid manifest, and one invalid mutation per spec rule.

The rule ids are those of docs/spec-notes.md: §9 items 6-16 and the actool gaps
G1-G13 and G18 of §5.1 (rules the spec has and actool 0.8.11 does not check).
"""

import copy
import operator
import re

import pytest
from manifests import FULL

from nix2aci.appc import App, ImageManifest, Label, Port
from nix2aci.errors import SpecError


def full():
    """A fresh copy of the full manifest."""
    return copy.deepcopy(FULL)


def _steps(path):
    """``app.ports[0].port`` -> ["app", "ports", 0, "port"]."""
    return [int(part[1:-1]) if part.startswith("[") else part for part in re.findall(r"\[\d+\]|[^.\[\]]+", path)]


def _locate(document, path):
    """The container holding the last step of ``path``, and that step."""
    *parents, last = _steps(path)
    for step in parents:
        document = document[step]
    return document, last


def put(path, value):
    """A mutation setting ``path`` to ``value``."""
    return lambda document: operator.setitem(*_locate(document, path), value)


def drop(path):
    """A mutation deleting ``path``."""
    return lambda document: operator.delitem(*_locate(document, path))


def append(path, value):
    """A mutation appending ``value`` to the list at ``path``."""
    return lambda document: operator.getitem(*_locate(document, path)).append(value)


def rename(path, key):
    """A mutation renaming the key at ``path`` to ``key`` (moving it last)."""

    def mutate(document):
        """Rename the key in ``document``."""
        container, last = _locate(document, path)
        container[key] = container.pop(last)

    return mutate


def mutated(*mutations):
    """The full manifest changed by ``mutations``."""
    document = full()
    for mutation in mutations:
        mutation(document)
    return document


CPU, MEMORY, BLOCK_BANDWIDTH, BLOCK_IOPS, NETWORK, CAPS, SECCOMP, NNP, OOM, SHARES, SELINUX, SYSCTL = range(12)
ISOLATOR = "app.isolators[{}]".format

# (id, mutations, field of the first error, text the rule must contain to say what is allowed)
INVALID = [
    # 6: acKind and acVersion (G4: only tagged releases up to 0.8.11)
    ("6-ackind-pod", [put("acKind", "PodManifest")], "acKind", '"ImageManifest"'),
    ("6-ackind-missing", [drop("acKind")], "acKind", '"ImageManifest"'),
    ("6-acversion-missing", [drop("acVersion")], "acVersion", "SemVer 2.0.0"),
    ("6-G4-acversion-newer", [put("acVersion", "0.8.12")], "acVersion", "no newer than 0.8.11"),
    ("6-G4-acversion-major", [put("acVersion", "1.0.0")], "acVersion", "no newer than 0.8.11"),
    ("6-G4-acversion-huge", [put("acVersion", "99.0.0")], "acVersion", "no newer than 0.8.11"),
    ("6-G4-acversion-untagged", [put("acVersion", "0.1.0")], "acVersion", "0.1.1, 0.2.0"),
    ("6-G4-acversion-prerelease", [put("acVersion", "0.8.11-rc1")], "acVersion", "without pre-release"),
    ("6-G4-acversion-build", [put("acVersion", "0.8.11+git")], "acVersion", "or build suffix"),
    ("6-G4-acversion-leading-zero", [put("acVersion", "00.8.11")], "acVersion", "without leading zeros"),
    ("6-acversion-short", [put("acVersion", "0.8")], "acVersion", "MAJOR.MINOR.PATCH"),
    ("6-acversion-v", [put("acVersion", "v0.8.11")], "acVersion", "MAJOR.MINOR.PATCH"),
    ("6-acversion-number", [put("acVersion", 0.8)], "acVersion", "SemVer 2.0.0"),
    # 7: name (G1: the full AC Identifier regex)
    ("7-name-missing", [drop("name")], "name", "AC Identifier"),
    ("7-name-uppercase", [put("name", "Example.com/app")], "name", "lowercase letters and digits"),
    ("7-G1-name-double-slash", [put("name", "example.com//x")], "name", "single -, ., _, ~ or /"),
    ("7-G1-name-double-dot", [put("name", "example..com/x")], "name", "single -, ., _, ~ or /"),
    ("7-G1-name-mixed-separators", [put("name", "a-.b")], "name", "single -, ., _, ~ or /"),
    ("7-name-trailing-slash", [put("name", "example.com/")], "name", "ending with a letter or digit"),
    ("7-name-trailing-newline", [put("name", "example.com/x\n")], "name", "AC Identifier"),
    ("7-name-empty", [put("name", "")], "name", "AC Identifier"),
    # 8: labels (G3: both keys required)
    ("8-label-duplicate", [append("labels", {"name": "version", "value": "2"})], "labels[3].name", "unique"),
    ("8-label-called-name", [append("labels", {"name": "name", "value": "x"})], "labels[3].name", 'other than "name"'),
    ("8-label-name-not-identifier", [put("labels[0].name", "Version")], "labels[0].name", "AC Identifier"),
    ("8-G3-label-without-value", [drop("labels[0].value")], "labels[0].value", "is required; must be a string"),
    ("8-G3-label-without-name", [drop("labels[0].name")], "labels[0].name", "is required; must be a label name"),
    ("8-label-value-number", [put("labels[0].value", 1)], "labels[0].value", "a string"),
    ("8-os-windows", [put("labels[1].value", "windows")], "labels[1].value", "linux, freebsd, darwin"),
    ("8-os-capitalised", [put("labels[1].value", "Linux")], "labels[1].value", "linux, freebsd, darwin"),
    ("8-linux-x86_64", [put("labels[2].value", "x86_64")], "labels[2].value", "amd64, i386, aarch64"),
    ("8-linux-arm64", [put("labels[2].value", "arm64")], "labels[2].value", "aarch64"),
    ("8-linux-arm", [put("labels[2].value", "arm")], "labels[2].value", "armv6l"),
    ("8-darwin-amd64", [put("labels[1].value", "darwin")], "labels[2].value", "x86_64, i386"),
    (
        "8-freebsd-aarch64",
        [put("labels[1].value", "freebsd"), put("labels[2].value", "aarch64")],
        "labels[2].value",
        "amd64, i386, arm",
    ),
    # 9: app (G5: supplementaryGIDs are unsigned)
    ("9-user-empty", [put("app.user", "")], "app.user", "non-empty string"),
    ("9-group-missing", [drop("app.group")], "app.group", "is required; must be a non-empty string"),
    ("9-user-number", [put("app.user", 0)], "app.user", "a user or group name, a numeric ID"),
    ("9-working-directory-relative", [put("app.workingDirectory", "opt/work")], "app.workingDirectory", "absolute"),
    ("9-env-name-digit", [put("app.environment[0].name", "1X")], "app.environment[0].name", "starting with a letter"),
    ("9-env-name-equals", [put("app.environment[0].name", "A=B")], "app.environment[0].name", "letters, digits, _"),
    (
        "9-env-name-duplicate",
        [append("app.environment", {"name": "REDUCE_WORKER_DEBUG", "value": "false"})],
        "app.environment[1].name",
        "unique",
    ),
    ("9-env-without-value", [drop("app.environment[0].value")], "app.environment[0].value", "a string"),
    ("9-exec-string", [put("app.exec", "/bin/sh -c x")], "app.exec", "a list of strings"),
    ("9-event-name", [put("app.eventHandlers[0].name", "start")], "app.eventHandlers[0].name", '"pre-start" or'),
    (
        "9-event-duplicate",
        [put("app.eventHandlers[1].name", "pre-start")],
        "app.eventHandlers[1].name",
        "unique",
    ),
    ("9-event-without-exec", [drop("app.eventHandlers[0].exec")], "app.eventHandlers[0].exec", "a list of strings"),
    (
        "9-G5-supplementary-gid-negative",
        [put("app.supplementaryGIDs[0]", -1)],
        "app.supplementaryGIDs[0]",
        "from 0 to 4294967295",
    ),
    ("9-supplementary-gid-float", [put("app.supplementaryGIDs[0]", 400.0)], "app.supplementaryGIDs[0]", "integer"),
    ("9-supplementary-gid-bool", [put("app.supplementaryGIDs[0]", True)], "app.supplementaryGIDs[0]", "integer"),
    ("9-user-labels-number", [put("app.userLabels.tier", 1)], "app.userLabels.tier", "a string"),
    (
        "9-user-annotations-number",
        [put("app.userAnnotations", {"a.b": 2})],
        'app.userAnnotations["a.b"]',
        "a string",
    ),
    # 10: mountPoints (G2: AC Name regex; G6: name and path required; G18: unique names)
    ("10-G2-mount-name-double-dash", [put("app.mountPoints[0].name", "a--b")], "app.mountPoints[0].name", "AC Name"),
    ("10-mount-name-dot", [put("app.mountPoints[0].name", "a.b")], "app.mountPoints[0].name", "single - characters"),
    ("10-G6-mount-without-name", [drop("app.mountPoints[0].name")], "app.mountPoints[0].name", "AC Name"),
    ("10-G6-mount-without-path", [drop("app.mountPoints[0].path")], "app.mountPoints[0].path", "absolute path"),
    ("10-G6-mount-path-empty", [put("app.mountPoints[0].path", "")], "app.mountPoints[0].path", "absolute path"),
    ("10-mount-path-relative", [put("app.mountPoints[0].path", "var/x")], "app.mountPoints[0].path", "starting with /"),
    (
        "10-G18-mount-name-duplicate",
        [append("app.mountPoints", {"name": "work", "path": "/srv"})],
        "app.mountPoints[1].name",
        "unique",
    ),
    ("10-mount-read-only-string", [put("app.mountPoints[0].readOnly", "yes")], "app.mountPoints[0].readOnly", "true"),
    # 11: ports (G7: name and protocol required, count >= 1; G18: unique names)
    ("11-G7-port-without-name", [drop("app.ports[0].name")], "app.ports[0].name", "AC Name"),
    ("11-port-name-underscore", [put("app.ports[0].name", "ftp_data")], "app.ports[0].name", "AC Name"),
    ("11-G7-port-without-protocol", [drop("app.ports[0].protocol")], "app.ports[0].protocol", '"tcp" or "udp"'),
    ("11-port-protocol-empty", [put("app.ports[0].protocol", "")], "app.ports[0].protocol", "non-empty"),
    ("11-port-without-number", [drop("app.ports[0].port")], "app.ports[0].port", "from 1 to 65535"),
    ("11-port-zero", [put("app.ports[0].port", 0)], "app.ports[0].port", "from 1 to 65535"),
    ("11-port-too-big", [put("app.ports[0].port", 65536)], "app.ports[0].port", "from 1 to 65535"),
    ("11-port-string", [put("app.ports[0].port", "80")], "app.ports[0].port", "an integer"),
    ("11-G7-port-count-zero", [put("app.ports[1].count", 0)], "app.ports[1].count", "from 1 to 65535"),
    ("11-port-range-overflow", [put("app.ports[1].port", 65000)], "app.ports[1].count", "port + count - 1 <= 65535"),
    ("11-G18-port-name-duplicate", [put("app.ports[1].name", "health")], "app.ports[1].name", "unique"),
    ("11-port-socket-string", [put("app.ports[0].socketActivated", 1)], "app.ports[0].socketActivated", "true"),
    # 12: isolators (G8: real capability names; G9: no capability retain+remove)
    ("12-isolator-without-value", [drop(ISOLATOR(NNP) + ".value")], ISOLATOR(NNP) + ".value", "any JSON value"),
    ("12-isolator-name", [put(ISOLATOR(CPU) + ".name", "Resource/CPU")], ISOLATOR(CPU) + ".name", "AC Identifier"),
    (
        "12-G8-capability-unknown",
        [put(ISOLATOR(CAPS) + ".value.set[1]", "FOO")],
        ISOLATOR(CAPS) + ".value.set[1]",
        "CAP_CHOWN, CAP_DAC_OVERRIDE",
    ),
    (
        "12-G8-capability-lowercase",
        [put(ISOLATOR(CAPS) + ".value.set[0]", "cap_chown")],
        ISOLATOR(CAPS) + ".value.set[0]",
        "CAP_CHECKPOINT_RESTORE",
    ),
    (
        "12-G9-capabilities-retain-and-remove",
        [append("app.isolators", {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_CHOWN"]}})],
        ISOLATOR(12) + ".name",
        "only one of the two",
    ),
    ("12-capability-set-empty", [put(ISOLATOR(CAPS) + ".value.set", [])], ISOLATOR(CAPS) + ".value.set", "non-empty"),
    ("12-capability-set-missing", [put(ISOLATOR(CAPS) + ".value", {})], ISOLATOR(CAPS) + ".value.set", "non-empty"),
    (
        "12-seccomp-retain-and-remove",
        [append("app.isolators", {"name": "os/linux/seccomp-retain-set", "value": {"set": ["read"]}})],
        ISOLATOR(12) + ".name",
        "only one of the two",
    ),
    (
        "12-seccomp-twice",
        [append("app.isolators", {"name": "os/linux/seccomp-remove-set", "value": {"set": ["read"]}})],
        ISOLATOR(12) + ".name",
        "may have only one",
    ),
    (
        "12-seccomp-errno-lowercase",
        [put(ISOLATOR(SECCOMP) + ".value.errno", "enotsup")],
        ISOLATOR(SECCOMP) + ".value.errno",
        "E followed by uppercase letters or digits",
    ),
    ("12-oom-score-adj-range", [put(ISOLATOR(OOM) + ".value", 5000)], ISOLATOR(OOM) + ".value", "-1000 to 1000"),
    ("12-cpu-shares-range", [put(ISOLATOR(SHARES) + ".value", 1)], ISOLATOR(SHARES) + ".value", "2 to 262144"),
    (
        "12-cpu-shares-twice",
        [append("app.isolators", {"name": "os/linux/cpu-shares", "value": 2})],
        ISOLATOR(12) + ".name",
        "may have only one",
    ),
    (
        "12-sysctl-twice",
        [append("app.isolators", {"name": "os/unix/sysctl", "value": {}})],
        ISOLATOR(12) + ".name",
        "may have only one",
    ),
    (
        "12-sysctl-value-number",
        [put(ISOLATOR(SYSCTL) + ".value", {"net.core.somaxconn": 1024})],
        ISOLATOR(SYSCTL) + '.value["net.core.somaxconn"]',
        "a string",
    ),
    ("12-no-new-privileges-string", [put(ISOLATOR(NNP) + ".value", "true")], ISOLATOR(NNP) + ".value", "true or"),
    (
        "12-cpu-default-true",
        [put(ISOLATOR(CPU) + ".value.default", True)],
        ISOLATOR(CPU) + ".value.default",
        "false (or absent)",
    ),
    (
        "12-block-default-false",
        [put(ISOLATOR(BLOCK_IOPS) + ".value.default", False)],
        ISOLATOR(BLOCK_IOPS) + ".value.default",
        "true: the limit applies",
    ),
    (
        "12-network-request",
        [put(ISOLATOR(NETWORK) + ".value.request", "1M")],
        ISOLATOR(NETWORK) + ".value.request",
        "absent",
    ),
    (
        "12-memory-quantity",
        [put(ISOLATOR(MEMORY) + ".value.limit", "lots")],
        ISOLATOR(MEMORY) + ".value.limit",
        "resource quantity",
    ),
    ("12-memory-without-limit", [drop(ISOLATOR(MEMORY) + ".value.limit")], ISOLATOR(MEMORY) + ".value.limit", "Gi"),
    (
        "12-selinux-colon",
        [put(ISOLATOR(SELINUX) + ".value.user", "system_u:x")],
        ISOLATOR(SELINUX) + ".value.user",
        "without ':'",
    ),
    (
        "12-selinux-without-level",
        [drop(ISOLATOR(SELINUX) + ".value.level")],
        ISOLATOR(SELINUX) + ".value.level",
        "SELinux level",
    ),
    # 13: annotations (G12: supports-systemd-notify is "true" or "false")
    (
        "13-annotation-duplicate",
        [append("annotations", {"name": "homepage", "value": "https://example.org"})],
        "annotations[5].name",
        "unique",
    ),
    ("13-annotation-name", [put("annotations[0].name", "Authors")], "annotations[0].name", "AC Identifier"),
    (
        "13-created-space",
        [put("annotations[1].value", "2014-10-27 19:32:27Z")],
        "annotations[1].value",
        "RFC 3339 date-time with a T",
    ),
    ("13-created-date-only", [put("annotations[1].value", "2014-10-27")], "annotations[1].value", "RFC 3339"),
    ("13-created-no-zone", [put("annotations[1].value", "2014-10-27T19:32:27")], "annotations[1].value", "RFC 3339"),
    ("13-created-bad-day", [put("annotations[1].value", "2014-02-30T00:00:00Z")], "annotations[1].value", "RFC 3339"),
    ("13-documentation-ftp", [put("annotations[2].value", "ftp://example.com")], "annotations[2].value", "http or"),
    ("13-homepage-no-scheme", [put("annotations[3].value", "example.com")], "annotations[3].value", "https URL"),
    (
        "13-G12-systemd-notify-maybe",
        [put("annotations[4].value", "maybe")],
        "annotations[4].value",
        '"true" or "false"',
    ),
    # 14: dependencies (G10: full sha512 Image ID)
    ("14-dependency-without-name", [drop("dependencies[0].imageName")], "dependencies[0].imageName", "AC Identifier"),
    ("14-dependency-name", [put("dependencies[0].imageName", "Base")], "dependencies[0].imageName", "AC Identifier"),
    ("14-G10-image-id-xyz", [put("dependencies[0].imageID", "sha512-xyz")], "dependencies[0].imageID", "128 lowercase"),
    (
        "14-G10-image-id-short",
        [put("dependencies[0].imageID", "sha512-" + "a" * 64)],
        "dependencies[0].imageID",
        "128 lowercase hex digits",
    ),
    (
        "14-image-id-sha256",
        [put("dependencies[0].imageID", "sha256-" + "a" * 128)],
        "dependencies[0].imageID",
        "sha512-",
    ),
    (
        "14-image-id-uppercase",
        [put("dependencies[0].imageID", "sha512-" + "A" * 128)],
        "dependencies[0].imageID",
        "lowercase hex",
    ),
    ("14-dependency-os", [put("dependencies[0].labels[0].value", "plan9")], "dependencies[0].labels[0].value", "linux"),
    (
        "14-dependency-label-name",
        [put("dependencies[0].labels[1].name", "name")],
        "dependencies[0].labels[1].name",
        'other than "name"',
    ),
    (
        "14-dependency-label-duplicate",
        [put("dependencies[0].labels[1].name", "os")],
        "dependencies[0].labels[1].name",
        "unique",
    ),
    ("14-dependency-size-negative", [put("dependencies[0].size", -1)], "dependencies[0].size", "at least 0"),
    # 15: pathWhitelist (G11: absolute entries)
    ("15-G11-whitelist-relative", [put("pathWhitelist[0]", "bin/sh")], "pathWhitelist[0]", "absolute path"),
    ("15-G11-whitelist-empty-entry", [put("pathWhitelist[1]", "")], "pathWhitelist[1]", "starting with /"),
    ("15-whitelist-string", [put("pathWhitelist", "/bin/sh")], "pathWhitelist", "list of absolute paths"),
]


# 16: keys are case-sensitive (G13); (path of the key, the key as miswritten)
MISCASED = [
    ("acKind", "ACKind"),
    ("acKind", "ACKIND"),
    ("acVersion", "acversion"),
    ("name", "Name"),
    ("app.supplementaryGIDs", "supplementaryGids"),
    ("app.workingDirectory", "workingdirectory"),
    ("app.eventHandlers", "EventHandlers"),
    ("app.mountPoints[0].readOnly", "readonly"),
    ("app.ports[0].socketActivated", "socketactivated"),
    ("app.userAnnotations", "userannotations"),
    ("app.userLabels", "UserLabels"),
    ("dependencies[0].imageID", "imageId"),
    ("dependencies[0].imageName", "ImageName"),
    ("pathWhitelist", "pathwhitelist"),
    ("labels[0].value", "Value"),
    (ISOLATOR(CPU) + ".value", "Value"),
    (ISOLATOR(CPU) + ".value.limit", "Limit"),
]
INVALID += [
    (f"16-G13-{path}-{key}", [rename(path, key)], path, f"must be spelled {_steps(path)[-1]!r}")
    for path, key in MISCASED
]


def test_full_manifest_is_valid():
    """The full manifest (every field, 12 isolators) has no problems and no warnings."""
    manifest = ImageManifest.from_json(full())
    assert ImageManifest.problems(full()) == []
    assert manifest.warnings == []
    assert manifest.app.ports[1] == Port(name="ftp-data", protocol="tcp", port=20000, count=1000)


def test_round_trip():
    """to_json() gives back the canonical input, in spec key order, and reads back equal."""
    manifest = ImageManifest.from_json(full())
    assert manifest.to_json() == FULL
    assert list(manifest.to_json()) == list(FULL)
    assert ImageManifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    ("mutations", "field", "allowed"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid(mutations, field, allowed):
    """Each broken rule is reported first, at its field, saying what is allowed."""
    document = mutated(*mutations)
    with pytest.raises(SpecError) as raised:
        ImageManifest.from_json(document)
    assert raised.value.field == field
    assert allowed in raised.value.rule
    assert str(ImageManifest.problems(document)[0]) == str(raised.value)


def test_case_insensitive_key_names_the_right_spelling():
    """A miscased key is one error naming the right spelling (not also 'is required')."""
    (problem,) = ImageManifest.problems(mutated(rename("app.supplementaryGIDs", "supplementaryGids")))
    assert str(problem) == (
        "app.supplementaryGIDs: must be spelled 'supplementaryGIDs': keys are case-sensitive; got 'supplementaryGids'"
    )


def test_unknown_isolator_is_a_warning_not_an_error():
    """An unknown isolator is spec-valid: kept, with a warning that actool rejects it."""
    document = mutated(append("app.isolators", {"name": "example.com/gpu", "value": {"count": 1}}))
    manifest = ImageManifest.from_json(document)
    (warning,) = manifest.warnings
    assert warning.startswith("app.isolators[12].name: unknown isolator 'example.com/gpu'")
    assert "actool and rkt reject it" in warning
    assert manifest.to_json() == document


def test_unknown_keys_are_warnings_and_dropped():
    """Unknown keys anywhere are warnings, and the manifest equals the one without them."""
    document = mutated(put("x-build", 1), put("app.comment", "hi"), put("labels[0].note", "n"))
    manifest = ImageManifest.from_json(document)
    assert manifest.warnings == [
        "labels[0].note: unknown key, ignored",
        "app.comment: unknown key, ignored",
        "x-build: unknown key, ignored",
    ]
    assert manifest == ImageManifest.from_json(FULL)
    assert "x-build" not in manifest.to_json()


def test_error_message_states_rule_and_value():
    """A message is the field, the rule in words and the offending value."""
    with pytest.raises(SpecError) as raised:
        ImageManifest.from_json(mutated(put("name", "Foo")))
    assert str(raised.value) == (
        "name: must be an AC Identifier: lowercase letters and digits, optionally separated by single -, ., _, ~ or /"
        " characters, starting and ending with a letter or digit (e.g. example.com/my-app); got 'Foo'"
    )


def test_problems_lists_every_problem_schema_first():
    """problems() reports all problems: the schema's, then the rules beyond it."""
    document = mutated(
        put("name", "Bad"),
        put("labels[2].value", "arm64"),
        put("app.ports[1].port", 65000),
        put("annotations[4].value", "maybe"),
        put("pathWhitelist[0]", "relative"),
    )
    assert [problem.field for problem in ImageManifest.problems(document)] == [
        "name",
        "pathWhitelist[0]",
        "labels[2].value",
        "app.ports[1].count",
        "annotations[4].value",
    ]


@pytest.mark.parametrize(
    "document",
    [
        [],
        "x",
        None,
        3,
        {},
        {"app": 5},
        {"labels": [1]},
        {"labels": {"os": "linux"}},
        {"app": {"ports": "x", "isolators": [5, {"name": 5}, {"name": "os/linux/cpu-shares"}]}},
        {"app": {"isolators": [{"name": "os/linux/capabilities-retain-set", "value": [[[]]]}]}},
        {"dependencies": [{"imageName": "a", "labels": [{"name": "os"}]}], "annotations": [None]},
        {"acKind": {"ImageManifest": True}, "acVersion": ["0.8.11"], "name": {"": []}},
    ],
    ids=repr,
)
def test_problems_never_raises_on_odd_input(document):
    """problems() reports odd JSON as SpecErrors, the same way every time."""
    problems = ImageManifest.problems(document)
    assert problems
    assert all(isinstance(problem, SpecError) for problem in problems)
    assert [str(p) for p in problems] == [str(p) for p in ImageManifest.problems(document)]


def test_problems_survives_deeply_nested_junk():
    """Deeply nested values neither crash nor flood the messages."""
    junk = []
    for _ in range(100_000):
        junk = [{"a": junk}]
    document = mutated(put("app.isolators[0].value", junk), put("x", junk), append("labels", junk))
    assert [problem.field for problem in ImageManifest.problems(document)] == [
        "labels[3]",
        "app.isolators[0].value",
    ]


def test_first_problem_comes_from_the_schema_then_the_rules():
    """The first problem is a schema one when there is one."""
    document = mutated(put("labels[2].value", "arm64"), put("app.user", ""))
    assert [problem.field for problem in ImageManifest.problems(document)] == ["app.user", "labels[2].value"]


def test_absent_fields():
    """A null app and empty lists are the same as absent fields."""
    document = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/hello",
        "app": None,
        "pathWhitelist": [],
        "labels": [],
    }
    manifest = ImageManifest.from_json(document)
    assert manifest.app is None
    assert manifest.path_whitelist == ()
    assert manifest.to_json() == {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/hello"}


def test_defaults_are_left_out():
    """to_json() leaves out values equal to the spec defaults."""
    document = mutated(
        put("app.ports[0]", {"name": "http", "protocol": "tcp", "port": 80, "count": 1, "socketActivated": False}),
        put("app.mountPoints[0].readOnly", False),
        put("app.exec", []),
    )
    app = ImageManifest.from_json(document).to_json()["app"]
    assert app["ports"][0] == {"name": "http", "protocol": "tcp", "port": 80}
    assert app["mountPoints"][0] == {"name": "work", "path": "/var/lib/work"}
    assert "exec" not in app


@pytest.mark.parametrize(
    "mutation",
    [
        put("app.exec", ["reduce-worker"]),
        put("app.exec", [""]),
        drop("app.exec"),
        put("app.user", "/usr/bin/ping"),
        put("annotations[0].name", "name"),
        put("labels", [{"name": "arch", "value": "anything"}]),
        put("acVersion", "0.1.1"),
        put("acVersion", "0.7.2"),
        put("name", "a-b.c_d~e/f0"),
        put("app.ports[1].port", 64536),
        put("annotations[1].value", "2016-12-31T23:59:60+01:00"),
        put("annotations[2].value", "HTTPS://Example.com:8443/docs?x#y"),
        put(ISOLATOR(SECCOMP) + ".value.errno", ""),
        put(ISOLATOR(MEMORY) + ".value", {"limit": "1.5e9"}),
    ],
)
def test_valid_variations(mutation):
    """Values the spec allows (though some look odd) have no problems."""
    assert ImageManifest.problems(mutated(mutation)) == []


def test_accessors():
    """label() and annotation() look values up by name."""
    manifest = ImageManifest.from_json(full())
    assert manifest.label("os") == "linux"
    assert manifest.label("name") is None
    assert manifest.annotation("created") == "2014-10-27T19:32:27.67021798Z"
    assert manifest.annotation("nope") is None


def test_construction_checks_the_rules():
    """Building a manifest in Python checks the same rules, with full paths."""
    ImageManifest(name="example.com/ok", labels=[Label("os", "linux")])
    with pytest.raises(SpecError, match=r"^name: must be an AC Identifier"):
        ImageManifest(name="Foo")
    with pytest.raises(SpecError, match=r"^labels\[0\]\.value: must be an appc os"):
        ImageManifest(name="example.com/ok", labels=[Label("os", "windows")])
    app = App(user="0", group="0", ports=[Port(name="p", protocol="tcp", port=65535, count=2)])
    with pytest.raises(SpecError, match=r"^app\.ports\[0\]\.count: must keep the range within 65535"):
        ImageManifest(name="example.com/ok", app=app)

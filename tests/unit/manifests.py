"""What the ImageManifest tests share: a full valid manifest and the verdict every document must get.

A module of its own so that no test module imports another (test_appc_problems.py imported both of these
from test_appc_manifest.py and test_validate_fuzz.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event

from nix2aci.appc import ImageManifest
from nix2aci.errors import SpecError

# A valid manifest with every field of the spec set.
FULL = {
    "acKind": "ImageManifest",
    "acVersion": "0.8.11",
    "name": "example.com/reduce-worker",
    "labels": [
        {"name": "version", "value": "1.0.0"},
        {"name": "os", "value": "linux"},
        {"name": "arch", "value": "amd64"},
    ],
    "app": {
        "exec": ["/usr/bin/reduce-worker", "--quiet"],
        "user": "100",
        "group": "300",
        "supplementaryGIDs": [400, 500],
        "eventHandlers": [
            {"name": "pre-start", "exec": ["/usr/bin/data-downloader"]},
            {"name": "post-stop", "exec": ["/usr/bin/deregister-worker", "--verbose"]},
        ],
        "workingDirectory": "/opt/work",
        "environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
        "isolators": [
            {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
            {"name": "resource/memory", "value": {"request": "1G", "limit": "2Gi"}},
            {"name": "resource/block-bandwidth", "value": {"default": True, "limit": "2M"}},
            {"name": "resource/block-iops", "value": {"default": True, "limit": "1000"}},
            {"name": "resource/network-bandwidth", "value": {"default": True, "limit": "1G"}},
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]}},
            {"name": "os/linux/seccomp-remove-set", "value": {"errno": "ENOTSUP", "set": ["reboot", "@appc.io/empty"]}},
            {"name": "os/linux/no-new-privileges", "value": True},
            {"name": "os/linux/oom-score-adj", "value": -500},
            {"name": "os/linux/cpu-shares", "value": 1024},
            {
                "name": "os/linux/selinux-context",
                "value": {"user": "system_u", "role": "system_r", "type": "dhcpc_t", "level": "s0"},
            },
            {"name": "os/unix/sysctl", "value": {"net.ipv4.tcp_mtu_probing": "1"}},
        ],
        "mountPoints": [{"name": "work", "path": "/var/lib/work", "readOnly": True}],
        "ports": [
            {"name": "health", "protocol": "tcp", "port": 4000, "socketActivated": True},
            {"name": "ftp-data", "protocol": "tcp", "port": 20000, "count": 1000},
        ],
        "userAnnotations": {"team.example.com/owner": "reduce"},
        "userLabels": {"tier": "backend"},
    },
    "dependencies": [
        {
            "imageName": "example.com/reduce-worker-base",
            "imageID": "sha512-" + "0123456789abcdef" * 8,
            "labels": [{"name": "os", "value": "linux"}, {"name": "env", "value": "canary"}],
            "size": 22017258,
        }
    ],
    "pathWhitelist": ["/etc/ca/example.com/crt", "/usr/bin/map-reduce-worker"],
    "annotations": [
        {"name": "authors", "value": "Carly Container <carly@example.com>"},
        {"name": "created", "value": "2014-10-27T19:32:27.67021798Z"},
        {"name": "documentation", "value": "https://example.com/docs"},
        {"name": "homepage", "value": "http://example.com"},
        {"name": "appc.io/executor/supports-systemd-notify", "value": "true"},
    ],
}


def assert_one_line(message: str) -> None:
    """A message the CLI can print as one line: non-empty, no newline, encodable as UTF-8."""
    assert message and "\n" not in message
    message.encode("utf-8")


def check_document(document: Any) -> None:
    """problems() never raises; from_json raises its first problem or gives a model that round-trips."""
    problems = ImageManifest.problems(document)
    event("rejected" if problems else "accepted")
    assert all(isinstance(problem, SpecError) for problem in problems)
    for problem in problems:
        assert_one_line(str(problem))
    if problems:
        with pytest.raises(SpecError) as raised:
            ImageManifest.from_json(document)
        assert str(raised.value) == str(problems[0])
    else:
        manifest = ImageManifest.from_json(document)
        for warning in manifest.warnings:
            assert_one_line(warning)
        assert ImageManifest.from_json(manifest.to_json()) == manifest

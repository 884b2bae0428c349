"""What nix2aci run asks of runc, decided without runc: quantities (one rule for validator and run), isolators
given twice, capabilities, the seccomp filter, ids, volumes and the run flags."""

from __future__ import annotations

import pytest

from nix2aci import run
from nix2aci.appc import ImageManifest, isolators
from nix2aci.appc.isolators import MAX_CPU_MILLICORES
from nix2aci.commands import run as run_command
from nix2aci.errors import Nix2AciError, UsageError
from nix2aci.oci import runtime


def manifest(*isolators: dict) -> dict:
    return {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/app",
        "app": {"exec": ["/bin/app"], "user": "0", "group": "0", "isolators": list(isolators)},
    }


def applied(document: dict, request: run.RunRequest | None = None) -> dict:
    """The linux part of the runtime config run makes of ``document``'s isolators (seccomp included)."""
    image = ImageManifest.from_json(document)
    request = request or run.RunRequest(image="x.aci")
    _, linux, _ = run._isolator_settings(image)
    seccomp = run.seccomp_settings(image, request, run.capabilities(image, request))
    return {**linux, **({"seccomp": seccomp} if seccomp else {})}


# --- Quantities: the validator accepts exactly what run applies, and run applies the value the grammar means.

MEMORY = [
    ("512Mi", 512 * 2**20),
    ("1.5Gi", 3 * 2**29),
    ("6Mi", 6 * 2**20),  # the smallest: runc cannot start an app below it
    ("6291456", 6 * 2**20),
    ("7M", 7 * 10**6),
    ("2G", 2 * 10**9),
    ("2e9", 2 * 10**9),
    ("2E9", 2 * 10**9),
    ("1E", 10**18),
    ("7Ei", 7 * 2**60),
    ("8388608.", 2**23),
    ("6291455", None),
    ("1", None),
    ("2K", None),  # "K" is no suffix in the Kubernetes grammar (actool rejects it)
    ("500u", None),  # half a thousandth of a byte
    ("500m", None),
    ("1.5", None),
    ("0", None),
    ("8Ei", None),  # 2^63: beyond the kernel's signed 64-bit count
    ("100Ei", None),
    ("1e999", None),  # an OverflowError once
    ("1e99999999999999999999", None),
    ("-1Gi", None),
    ("1 Gi", None),
    ("", None),
    ("Gi", None),
    ("1Gi\n", None),
    ("\u0661Gi", None),  # ARABIC-INDIC DIGIT ONE: no ASCII digit
]
CPU = [
    ("1", 1000),
    ("500m", 500),
    ("0.5", 500),
    (".25", 250),
    ("1m", 1),
    ("2k", 2_000_000),
    ("1e-3", 1),
    (f"{MAX_CPU_MILLICORES}m", MAX_CPU_MILLICORES),
    (f"{MAX_CPU_MILLICORES + 1}m", None),
    ("500u", None),  # half a millicore: below the kernel's 1 ms quota
    ("1.5m", None),
    ("0", None),
    ("1Gi", None),
    ("1e999", None),
    ("2K", None),
]


@pytest.mark.parametrize(
    ("resource", "text", "expected"),
    [("resource/memory", *case) for case in MEMORY] + [("resource/cpu", *case) for case in CPU],
)
def test_validator_and_run_agree_on_every_quantity(resource, text, expected):
    for key in ("limit", "request"):
        document = manifest(
            {"name": resource, "value": {"limit": "1Gi" if resource == "resource/memory" else "1", key: text}}
        )
        problems = ImageManifest.problems(document)
        assert (problems == []) == (expected is not None), problems
        if problems:
            assert str(problems[0]).startswith(f"app.isolators[0].value.{key}: must be a ")
    document = manifest({"name": resource, "value": {"limit": text}})
    if expected is None:
        # An ImageManifest cannot hold it (the validator runs when one is made): run's own reading refuses it too.
        read = {"resource/memory": isolators.memory_bytes, "resource/cpu": isolators.cpu_millicores}[resource]
        with pytest.raises(Nix2AciError, match=f"^{resource}: limit must be a "):
            run._resource_value(read, isolators.Isolator(resource, {"limit": text}))
    else:
        resources = applied(document)["resources"]
        if resource == "resource/memory":
            assert resources == {"memory": {"limit": expected}}
        else:
            assert resources == {"cpu": {"quota": expected * run.CPU_PERIOD // 1000, "period": run.CPU_PERIOD}}


# --- Single-instance isolators


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("os/linux/oom-score-adj", -500),
        ("os/linux/selinux-context", {"user": "system_u", "role": "system_r", "type": "dhcpc_t", "level": "s0"}),
    ],
)
def test_a_single_instance_isolator_given_twice_is_invalid(name, value):
    problems = ImageManifest.problems(manifest({"name": name, "value": value}, {"name": name, "value": value}))
    assert [str(problem) for problem in problems] == [
        f"app.isolators[1].name: must not repeat {name!r} (already at index 0): an app may have only one"
    ]


# --- Capabilities


def test_an_images_retain_set_may_narrow_but_not_widen_the_default_set():
    narrow = ImageManifest.from_json(
        manifest({"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_KILL"]}})
    )
    assert run.capabilities(narrow, run.RunRequest(image="x")) == ["CAP_KILL"]
    wide = ImageManifest.from_json(
        manifest({"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_SYS_MODULE", "CAP_KILL"]}})
    )
    with pytest.raises(Nix2AciError, match=r"outside the default set \(CAP_SYS_MODULE\)"):
        run.capabilities(wide, run.RunRequest(image="x"))
    allowed = run.RunRequest(image="x", insecure=frozenset({"capabilities"}))
    assert run.capabilities(wide, allowed) == ["CAP_SYS_MODULE", "CAP_KILL"]
    chosen = run.RunRequest(image="x", caps_retain=("CAP_SYS_ADMIN", "CAP_CHOWN"), caps_remove=("CAP_CHOWN",))
    assert run.capabilities(wide, chosen) == ["CAP_SYS_ADMIN"]


def test_a_remove_set_narrows_the_default_set():
    image = ImageManifest.from_json(
        manifest({"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_KILL", "CAP_SYS_ADMIN"]}})
    )
    held = run.capabilities(image, run.RunRequest(image="x"))
    assert held == [name for name in runtime.DEFAULT_CAPABILITIES if name != "CAP_KILL"]


# --- Seccomp


def rule_names(seccomp: dict, action: str) -> set[str]:
    return {name for rule in seccomp["syscalls"] if rule["action"] == action for name in rule["names"]}


def test_the_default_filter_blocks_with_eperm_and_capabilities_unlock_their_calls():
    seccomp = applied(manifest())["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp["architectures"][0] == runtime.SECCOMP_ARCHITECTURES.get("x86_64", ())[0]
    (plain,) = [rule for rule in seccomp["syscalls"] if "args" not in rule and rule["names"] != ["clone3"]]
    assert plain["errnoRet"] == 1
    for name in ("kexec_load", "init_module", "open_by_handle_at", "keyctl", "bpf", "perf_event_open", "reboot"):
        assert name in plain["names"]
    assert {"clone", "clone3"} <= rule_names(seccomp, "SCMP_ACT_ERRNO")
    admin = runtime.default_blocked_syscalls([*runtime.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert "mount" not in admin and "kexec_load" in admin and "syslog" not in admin
    assert "syslog" not in runtime.default_blocked_syscalls(["CAP_SYSLOG"])


def test_insecure_seccomp_drops_the_default_filter_but_not_the_images():
    insecure = run.RunRequest(image="x", insecure=frozenset({"seccomp"}))
    assert "seccomp" not in applied(manifest(), insecure)
    removal = manifest({"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname"], "errno": "ENOTSUP"}})
    seccomp = applied(removal, insecure)["seccomp"]
    assert seccomp["syscalls"] == [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]


def test_a_remove_set_adds_to_the_default_filter_and_empty_masks_it():
    seccomp = applied(manifest({"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname"]}}))["seccomp"]
    assert rule_names(seccomp, "SCMP_ACT_KILL_PROCESS") == {"uname"}
    assert "kexec_load" in rule_names(seccomp, "SCMP_ACT_ERRNO")
    empty = applied(manifest({"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname", "@appc.io/empty"]}}))
    assert "uname" not in rule_names(empty["seccomp"], "SCMP_ACT_KILL_PROCESS")


def test_a_retain_set_is_an_allowlist_that_cannot_reach_the_blocklist():
    retain = manifest({"name": "os/linux/seccomp-retain-set", "value": {"set": ["read", "clone"], "errno": "EPERM"}})
    seccomp = applied(retain)["seccomp"]
    assert (seccomp["defaultAction"], seccomp["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert {"read", *run.LIFECYCLE_SYSCALLS} <= rule_names(seccomp, "SCMP_ACT_ALLOW")
    assert not runtime.default_blocked_syscalls(()) & set(run.LIFECYCLE_SYSCALLS)
    (clone,) = [rule for rule in seccomp["syscalls"] if rule["names"] == ["clone"]]
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["valueTwo"] == 0
    wide = manifest({"name": "os/linux/seccomp-retain-set", "value": {"set": ["read", "kexec_load", "@appc.io/all"]}})
    with pytest.raises(Nix2AciError, match=r"allows kexec_load, @appc\.io/all, which the default seccomp filter"):
        applied(wide)
    assert "seccomp" not in applied(wide, run.RunRequest(image="x", insecure=frozenset({"seccomp"})))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"set": ["@rkt/default-blacklist"]}, "unknown wildcard '@rkt/default-blacklist'"),
        ({"set": ["uname"], "errno": "EWHATEVER"}, "errno 'EWHATEVER' is not an errno name"),
    ],
)
def test_seccomp_isolators_nix2aci_cannot_apply_are_one_line(value, message):
    with pytest.raises(Nix2AciError, match=message):
        applied(manifest({"name": "os/linux/seccomp-remove-set", "value": value}))


def test_the_config_with_a_filter_and_a_network_namespace_is_a_valid_runtime_config():
    namespaces = run.network_namespaces("none")
    document = runtime.config(
        args=["/x"], env=[], namespaces=namespaces, linux={"seccomp": applied(manifest())["seccomp"]}
    )
    assert runtime.problems(document) == []
    assert "network" in namespaces and "network" not in run.network_namespaces("host")


# --- Ids, volumes, flags


@pytest.mark.parametrize(
    ("passwd", "message"),
    [
        ("app:x:\u00b2:0::/:/bin/sh\n", "the image's /etc/passwd gives it the id '²'"),
        ("app:x:4294967296:0::/:/bin/sh\n", "an id must be from 0 to 4294967295"),
    ],
)
def test_ids_in_the_images_passwd_are_ascii_and_in_range(tmp_path, passwd, message):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(passwd)
    with pytest.raises(Nix2AciError, match=message):
        run.Container(str(tmp_path), {}).lookup_id("app", "/etc/passwd")
    assert run.Container(str(tmp_path), {}).lookup_id("4294967295", "/etc/passwd") == 4294967295


@pytest.mark.parametrize("text", ["data,kind=host,source=", "data,kind=host,source=a\0b"])
def test_a_volume_source_is_a_path(text):
    with pytest.raises(Nix2AciError, match="source must be a path"):
        run.Volume.parse(text)


def test_insecure_options_and_capability_flags():
    assert run_command._insecure_options(["image", "seccomp,capabilities"]) == {"image", "seccomp", "capabilities"}
    assert run_command._insecure_options(["all"]) == set(run.INSECURE_OPTIONS)
    with pytest.raises(UsageError, match=r"unknown value 'caps' \(allowed: image, capabilities, seccomp, all\)"):
        run_command._insecure_options(["image,caps"])
    assert run_command._capability_list("--caps-retain", "CAP_KILL,CAP_CHOWN") == ("CAP_KILL", "CAP_CHOWN")
    with pytest.raises(UsageError, match="'CAP_SYS_EVERYTHING' is not a Linux capability name"):
        run_command._capability_list("--caps-remove", "CAP_SYS_EVERYTHING")

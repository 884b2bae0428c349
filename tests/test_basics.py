"""Rootfs basics and files as data, in real images run by runc."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from conftest import (
    UNSIGNED,
    built_aci,
    busybox_image,
    nix2aci,
    nix_build_expression,
    nix_eval_json,
    require,
    run,
)

pytestmark = pytest.mark.slow


def shell_image(arguments: str) -> Path:
    """The .aci of busybox with /bin/sh as its exec and ``arguments``."""
    return busybox_image(f'exec = [ "/bin/sh" ]; {arguments}', name="basics")


def members(image: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(image) as tar:
        return {member.name: member for member in tar}


def member_bytes(image: Path, name: str) -> bytes:
    """The contents of the regular file ``name`` of the archive ``image``."""
    with tarfile.open(image) as tar:
        return tar.extractfile(name).read()


def build_error(expression: str) -> str:
    """Build ``expression`` expecting the builder to fail; return its one error line."""
    result = nix_build_expression(expression, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("nix2aci: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0].removeprefix("nix2aci: error: ")


@pytest.fixture(autouse=True)
def _runc(is_root):
    require("runc")


def test_named_user_resolves_and_tmp_is_writable_by_it():
    image = shell_image('user = "app"; group = "staff"; uid = 1234; gid = 4321;')
    script = "id; touch /tmp/mine && ls -ln /tmp/mine | awk '{print $3, $4}'; grep app /etc/passwd"
    output = nix2aci("run", UNSIGNED, str(image), "--", "-c", script).stdout.splitlines()
    assert output[0] == "uid=1234(app) gid=4321(staff)"
    assert output[1] == "1234 4321"
    assert output[2] == "app:x:1234:4321:app:/:/bin/sh"
    tmp = members(image)["rootfs/tmp"]
    assert tmp.isdir() and tmp.mode == 0o1777


def test_etc_hosts_certificates_and_links():
    image = shell_image("")
    script = (
        "cat /etc/hosts; echo $SSL_CERT_FILE; "
        "for f in /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-bundle.crt /etc/pki/tls/certs/ca-bundle.crt; "
        "do grep -c 'BEGIN CERTIFICATE' $f; done; /usr/bin/env true && echo env ok"
    )
    lines = nix2aci("run", UNSIGNED, str(image), "--", "-c", script).stdout.splitlines()
    assert lines[:2] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    assert lines[2] == "/etc/ssl/certs/ca-certificates.crt"
    counts = [int(line) for line in lines[3:6]]
    assert counts[0] > 50 and counts == [counts[0]] * 3
    assert lines[6] == "env ok"


def test_each_basic_can_be_switched_off():
    image = shell_image("users = false; hosts = false; tmp = false; cacert = null; shellLinks = false;")
    names = set(members(image))
    for path in ("etc/passwd", "etc/group", "etc/hosts", "tmp", "etc/ssl/certs/ca-bundle.crt", "usr/bin/env"):
        assert f"rootfs/{path}" not in names, path


def test_files_as_data_carry_modes_and_owners_into_the_tar():
    image = shell_image(
        'files."/var/lib/app" = { directory = true; mode = "0750"; uid = 1234; gid = 4321; };'
        ' files."/etc/app.conf" = { text = "setting=1\\n"; mode = "0640"; uid = 1234; };'
        ' files."/usr/local/bin/shell" = { symlink = "/bin/sh"; };'
        ' files."/etc/motd" = { source = builtins.toFile "motd" "hello\\n"; };'
    )
    found = members(image)
    directory, config = found["rootfs/var/lib/app"], found["rootfs/etc/app.conf"]
    assert directory.isdir() and (directory.mode, directory.uid, directory.gid) == (0o750, 1234, 4321)
    assert config.isreg() and (config.mode, config.uid, config.gid) == (0o640, 1234, 0)
    assert found["rootfs/usr/local/bin/shell"].linkname == "/bin/sh"
    assert found["rootfs/var/lib"].isdir() and found["rootfs/var"].mode == 0o755
    output = nix2aci(
        "run", UNSIGNED, str(image), "--", "-c", "cat /etc/app.conf /etc/motd; ls -ldn /var/lib/app"
    ).stdout
    assert output.splitlines()[:2] == ["setting=1", "hello"]
    assert output.splitlines()[2].split()[:4] == ["drwxr-x---", "2", "1234", "4321"]


def test_a_file_must_say_what_it_is():
    result = nix_build_expression(
        'n.lib.mkACI { packages = [ n.pkgs.busybox ]; files."/x" = { text = "a"; directory = true; }; }', check=False
    )
    assert result.returncode != 0
    assert 'mkACI: files."/x" must set exactly one of text, source, symlink or directory = true' in result.stderr


def test_a_file_put_into_a_package_directory_keeps_the_package_files():
    docs = (
        '(derivation { name = "docs-1"; system = builtins.currentSystem; builder = "${n.pkgs.busybox}/bin/sh";'
        ' args = [ "-c" "PATH=${n.pkgs.busybox}/bin; mkdir -p $out/share/doc; echo a > $out/share/doc/a" ]; })'
    )
    image = f'n.lib.mkACI {{ packages = [ n.pkgs.busybox {docs} ]; name = "docs"; {{files}} }}'
    # Only docs provides /share: the profile makes it one symlink to docs' share...
    plain = members(built_aci(image.replace("{files}", "")))
    assert plain["rootfs/share"].issym() and plain["rootfs/share"].linkname.endswith("-docs-1/share")
    # ... and a file of the user's in it makes it a directory again, of docs' links and that file.
    user_file = 'files."/share/doc/b" = { text = "b"; };'
    found = members(built_aci(image.replace("{files}", user_file)))
    assert found["rootfs/share"].isdir() and found["rootfs/share/doc"].isdir() and found["rootfs/share/doc/b"].isreg()
    assert found["rootfs/share/doc/a"].linkname.endswith("-docs-1/share/doc/a")
    busybox = nix_eval_json("n.pkgs.busybox.outPath")
    assert found["rootfs/bin"].issym() and found["rootfs/bin"].linkname == f"{busybox}/bin"


def test_symlink_loops_are_stored_as_symlinks():
    def package(name: str, script: str) -> str:
        return (
            f'(derivation {{ name = "{name}"; system = builtins.currentSystem; builder = "${{n.pkgs.busybox}}/bin/sh";'
            f' args = [ "-c" "PATH=${{n.pkgs.busybox}}/bin; mkdir -p $out/share/zoneinfo; {script}" ]; }})'
        )

    tzdata = package("tzdata-1", "echo utc > $out/share/zoneinfo/UTC; ln -s . $out/share/zoneinfo/posix")
    # A second package in share/zoneinfo, so the profile merges that directory instead of linking it.
    extra = package("tzextra-1", "echo extra > $out/share/zoneinfo/Extra")
    expression = f'n.lib.mkACI {{ packages = [ {tzdata} {extra} ]; name = "tz"; }}'
    image = built_aci(expression)
    found = members(image)
    loops = [m for name, m in found.items() if name.endswith("/share/zoneinfo/posix")]
    # Once in the store copy (posix -> .), once in the profile (a link to that one), never followed.
    assert len(loops) == 2 and all(m.issym() for m in loops)
    assert found["rootfs/share/zoneinfo/posix"].linkname.endswith("-tzdata-1/share/zoneinfo/posix")
    assert found["rootfs/share/zoneinfo"].isdir() and found["rootfs/share/zoneinfo/Extra"].issym()
    assert not any("/posix/" in name for name in found)


def test_resolv_conf_is_mounted_from_the_host_read_only():
    image = shell_image("resolvConf = true;")
    mounts = image.with_suffix(".mounts")
    assert "--volume=resolv-conf,kind=host,source=/etc/resolv.conf,readOnly=true" in mounts.read_text().split()
    output = nix2aci(
        "run", UNSIGNED, "--mounts-file", str(mounts), str(image), "--", "-c", "cat /etc/resolv.conf"
    ).stdout
    assert output == Path("/etc/resolv.conf").read_text()


def account_files(user: str, group: str, uid: int, gid: int) -> tuple[bytes, bytes]:
    """/etc/passwd and /etc/group as README "Rootfs basics" describes them, written out from the arguments."""
    passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    groups = "root:x:0:\nnobody:x:65534:\n"
    user_named, group_named = not user.isdigit(), not group.isdigit()
    if user_named:
        passwd += f"{user}:x:{uid}:{gid if group_named else group}:{user}:/:/bin/sh\n"
    if group_named:
        groups += f"{group}:x:{gid}:{user if user_named else ''}\n"
    return passwd.encode(), groups.encode()


@pytest.mark.parametrize(
    ("user", "group", "uid", "gid"),
    [("app", "staff", 1234, 4321), ("app", "0", 4294967295, 7), ("1234", "www-data", 0, 33), ("_svc$", "_svc$", 1, 1)],
)
def test_passwd_and_group_hold_exactly_root_nobody_and_the_named_accounts(user, group, uid, gid):
    image = shell_image(f'user = "{user}"; group = "{group}"; uid = {uid}; gid = {gid};')
    passwd, groups = account_files(user, group, uid, gid)
    assert member_bytes(image, "rootfs/etc/passwd") == passwd
    assert member_bytes(image, "rootfs/etc/group") == groups


def test_a_users_file_replaces_a_basic():
    mine = "root:x:0:0::/:/bin/sh\n"
    image = shell_image(f'files."/etc/passwd".text = {json.dumps(mine)}; files."/tmp".symlink = "/var/tmp";')
    assert member_bytes(image, "rootfs/etc/passwd") == mine.encode()
    assert members(image)["rootfs/tmp"].linkname == "/var/tmp"


BUSYBOX = 'n.lib.mkACI {{ packages = [ n.pkgs.busybox ]; name = "basics"; {} }}'
CONTAINER = 'n.lib.buildContainer {{ args = [ "${{n.pkgs.busybox}}/bin/sh" ]; packages = [ n.pkgs.busybox ]; {} }}'
OCI_IMAGE = "n.lib.buildOCIImage {{ packages = [ n.pkgs.busybox ]; {} }}"


@pytest.mark.parametrize("function", [BUSYBOX, CONTAINER, OCI_IMAGE])
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # /bin/sh is busybox's own link in the profile; /a is the user's.
        ('files."/bin/sh/x".text = "x";', 'files."/bin/sh/x": /bin/sh/x lies below /bin/sh, a symlink in the image'),
        (
            'files."/a".symlink = "/"; files."/a/b".text = "x";',
            'files."/a/b": /a/b lies below /a, a symlink in the image, not a directory',
        ),
        ('files."/etc/hosts/x".directory = true;', 'files."/etc/hosts/x": /etc/hosts/x lies below /etc/hosts, a file'),
        ('files."/bin/sh".text = "x";', 'files."/bin/sh": /bin/sh is already in the image, as a symlink'),
        (
            'files."/x".source = n.pkgs.busybox;',
            'files."/x".source: must be a regular file (not a directory or a symlink), got',
        ),
    ],
)
def test_a_file_goes_neither_through_a_link_nor_over_what_a_package_has(function, arguments, expected):
    assert build_error(function.format(arguments)).startswith(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            BUSYBOX.format('mounts.x.path = "/etc/passwd/x";'),
            "mounts.x.path: /etc/passwd/x lies below /etc/passwd, a file",
        ),
        (BUSYBOX.format('mounts.x.path = "/bin/sh/x";'), "mounts.x.path: /bin/sh/x lies below /bin/sh, a symlink"),
        (CONTAINER.format('mounts."/etc/hosts/x" = { };'), 'mounts."/etc/hosts/x": /etc/hosts/x lies below /etc/hosts'),
        (CONTAINER.format('cwd = "/bin/sh/x";'), "cwd: /bin/sh/x lies below /bin/sh, a symlink in the image"),
        (
            BUSYBOX.format('resolvConf = true; mounts.resolv-conf.path = "/data";'),
            "mounts.resolv-conf: is the name of the host's /etc/resolv.conf (resolvConf = true): rename it",
        ),
    ],
)
def test_a_mount_point_below_a_file_or_named_like_the_hosts_is_a_build_error_naming_it(expression, expected):
    assert build_error(expression).startswith(expected)


def test_a_thin_images_mount_points_keep_apart_from_a_users_mount_of_the_same_name(tmp_path):
    require("actool")
    thin = (
        'n.lib.mkACI {{ packages = [ n.pkgs.busybox n.pkgs.hello ]; name = "apart"; thin = true; exec = [ "/bin/sh" ];'
        " {} }}"
    )

    def built(arguments: str) -> tuple[Path, dict[str, str]]:
        image = built_aci(thin.format(arguments))
        manifest = json.loads(member_bytes(image, "manifest"))
        return image, {mount["name"]: mount["path"] for mount in manifest["app"]["mountPoints"]}

    # The names nix2aci gives the closure's mount points, whatever this package set's versions and hashes.
    _, plain = built("")
    hello = next(name for name, path in plain.items() if "-hello-" in path)
    glibc = next(name for name, path in plain.items() if "-glibc" in path)
    taken = {hello: "/data", glibc: "/more"}
    user_mounts = " ".join(f"mounts.{name}.path = {json.dumps(path)};" for name, path in taken.items())
    image, mounts = built(user_mounts)
    assert len(mounts) == len(plain) + 2  # the manifest's names are a dict's keys: distinct
    assert {name: mounts[name] for name in taken} == taken
    assert sorted(path for name, path in mounts.items() if name not in taken) == sorted(plain.values())
    run(["actool", "--debug", "validate", "--type=appimage", str(image)])
    assert nix2aci("validate", str(image)).stdout.strip() == f"{image}: valid aci"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "note").write_text("mine\n")
    (tmp_path / "more").mkdir()
    volumes = [f"--volume={name},kind=host,source={tmp_path / Path(path).name}" for name, path in taken.items()]
    script = "cat /data/note; hello"
    output = nix2aci(
        "run", UNSIGNED, "--mounts-file", str(image.with_suffix(".mounts")), *volumes, str(image), "--", "-c", script
    )
    assert output.stdout == "mine\nHello, world!\n"

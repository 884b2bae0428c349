"""Rootfs basics and files as data, in real images run by runc."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import nix_build_expression, nix_eval_json, only_aci, require, run

pytestmark = pytest.mark.slow


def nix2aci(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nix2aci", *args], check=check)


def busybox_image(arguments: str) -> Path:
    """mkACI of busybox with ``arguments``."""
    expression = f'n.lib.mkACI {{ packages = [ n.pkgs.busybox ]; name = "basics"; exec = [ "/bin/sh" ]; {arguments} }}'
    return only_aci(Path(nix_build_expression(expression).stdout.split()[-1]))


def members(image: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(image) as tar:
        return {member.name: member for member in tar}


@pytest.fixture(autouse=True)
def _runc(is_root):
    require("runc")


def test_named_user_resolves_and_tmp_is_writable_by_it():
    image = busybox_image('user = "app"; group = "staff"; uid = 1234; gid = 4321;')
    script = "id; touch /tmp/mine && ls -ln /tmp/mine | awk '{print $3, $4}'; grep app /etc/passwd"
    output = nix2aci("run", str(image), "--", "-c", script).stdout.splitlines()
    assert output[0] == "uid=1234(app) gid=4321(staff)"
    assert output[1] == "1234 4321"
    assert output[2] == "app:x:1234:4321:app:/:/bin/sh"
    tmp = members(image)["rootfs/tmp"]
    assert tmp.isdir() and tmp.mode == 0o1777


def test_etc_hosts_certificates_and_links():
    image = busybox_image("")
    script = (
        "cat /etc/hosts; echo $SSL_CERT_FILE; "
        "for f in /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-bundle.crt /etc/pki/tls/certs/ca-bundle.crt; "
        "do grep -c 'BEGIN CERTIFICATE' $f; done; /usr/bin/env true && echo env ok"
    )
    lines = nix2aci("run", str(image), "--", "-c", script).stdout.splitlines()
    assert lines[:2] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    assert lines[2] == "/etc/ssl/certs/ca-certificates.crt"
    counts = [int(line) for line in lines[3:6]]
    assert counts[0] > 50 and counts == [counts[0]] * 3
    assert lines[6] == "env ok"


def test_each_basic_can_be_switched_off():
    image = busybox_image("users = false; hosts = false; tmp = false; cacert = null; shellLinks = false;")
    names = set(members(image))
    for path in ("etc/passwd", "etc/group", "etc/hosts", "tmp", "etc/ssl/certs/ca-bundle.crt", "usr/bin/env"):
        assert f"rootfs/{path}" not in names, path


def test_files_as_data_carry_modes_and_owners_into_the_tar():
    image = busybox_image(
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
    output = nix2aci("run", str(image), "--", "-c", "cat /etc/app.conf /etc/motd; ls -ldn /var/lib/app").stdout
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
    plain = members(only_aci(Path(nix_build_expression(image.replace("{files}", "")).stdout.split()[-1])))
    assert plain["rootfs/share"].issym() and plain["rootfs/share"].linkname.endswith("-docs-1/share")
    # ... and a file of the user's in it makes it a directory again, of docs' links and that file.
    user_file = 'files."/share/doc/b" = { text = "b"; };'
    found = members(only_aci(Path(nix_build_expression(image.replace("{files}", user_file)).stdout.split()[-1])))
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
    image = only_aci(Path(nix_build_expression(expression).stdout.split()[-1]))
    found = members(image)
    loops = [m for name, m in found.items() if name.endswith("/share/zoneinfo/posix")]
    # Once in the store copy (posix -> .), once in the profile (a link to that one), never followed.
    assert len(loops) == 2 and all(m.issym() for m in loops)
    assert found["rootfs/share/zoneinfo/posix"].linkname.endswith("-tzdata-1/share/zoneinfo/posix")
    assert found["rootfs/share/zoneinfo"].isdir() and found["rootfs/share/zoneinfo/Extra"].issym()
    assert not any("/posix/" in name for name in found)


def test_resolv_conf_is_mounted_from_the_host_read_only():
    image = busybox_image("resolvConf = true;")
    mounts = image.with_suffix(".mounts")
    assert "--volume=resolv-conf,kind=host,source=/etc/resolv.conf,readOnly=true" in mounts.read_text().split()
    output = nix2aci("run", "--mounts-file", str(mounts), str(image), "--", "-c", "cat /etc/resolv.conf").stdout
    assert output == Path("/etc/resolv.conf").read_text()

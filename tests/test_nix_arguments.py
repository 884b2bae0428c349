"""Bad mkACI arguments fail at evaluation, with a message that names the argument."""

from __future__ import annotations

import pytest
from conftest import nix_build_expression, nix_eval_error, nix_eval_json

pytestmark = pytest.mark.slow


def mk_aci(arguments: str) -> str:
    """An expression forcing the derivation of mkACI with the busybox package and ``arguments``."""
    return (
        f'(n.lib.mkACI ({{ packages = [ n.pkgs.busybox ]; exec = [ "/bin/busybox" ]; }} // {{ {arguments} }})).drvPath'
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            'exec = "/bin/busybox sh";',
            'exec must be a list of strings, got the string "/bin/busybox sh"; nix2aci never splits',
        ),
        ("colour = 1;", "unknown argument 'colour'; allowed: annotations, arch,"),
        ('name = "Example.com/BusyBox";', "name must be an AC Identifier"),
        ('arch = "x86_64";', "arch must be one of amd64, i386, aarch64"),
        ('os = "windows";', "os must be one of darwin, freebsd, linux"),
        ('ports.http.port = "80";', 'ports.http.port must be an integer from 1 to 65535, got the string "80"'),
        ("ports.http.port = 70000;", "ports.http.port must be an integer from 1 to 65535, got 70000"),
        ("ports.Http.port = 80;", "the name of ports.Http must be an AC Name"),
        (
            'ports.http = { port = 80; proto = "tcp"; };',
            "unknown field ports.http.'proto'; allowed: count, port, protocol, socketActivated",
        ),
        ('mounts.data.path = "data";', "mounts.data.path must be an absolute path"),
        ('isolators = [ { name = "resource/memory"; } ];', "isolators[0].value is required"),
        ('user = "";', "user must be a non-empty string or a non-negative integer"),
        ('compression = "zstd";', 'compression must be one of "gzip", "xz", "bzip2", "none"'),
        (
            "static = true; packages = [ n.pkgs.busybox n.pkgs.hello ];",
            "static = true packs exactly one self-contained package, got 2",
        ),
        ("packages = [ ];", "packages must not be empty"),
    ],
)
def test_bad_argument_fails_at_evaluation_naming_it(arguments, expected):
    message = nix_eval_error(mk_aci(arguments))
    assert "mkACI: " in message
    assert expected in message


def test_default_name_and_version_come_from_the_first_package():
    spec = nix_eval_json("(n.lib.mkACI { packages = [ n.pkgs.hello ]; }).nix2aci.image")
    assert (spec["name"], spec["version"]) == ("hello", "1.0")
    assert (spec["os"], spec["arch"], spec["user"], spec["group"]) == ("linux", "amd64", "0", "0")


def test_the_library_works_from_any_expression():
    path = nix_eval_json('(n.lib.mkACI { packages = [ n.pkgs.hello ]; exec = [ "/bin/hello" ]; }).drvPath')
    assert path.startswith("/nix/store/") and path.endswith("-aci-hello-1.0.drv")


def test_a_plain_store_path_package_is_named_after_it_and_must_be_a_directory():
    package = 'builtins.toFile "notes-2.1" "a file, not a directory"'
    spec = nix_eval_json(f"(n.lib.mkACI {{ packages = [ ({package}) ]; }}).nix2aci.image")
    assert (spec["name"], spec["version"]) == ("notes", "2.1")
    result = nix_build_expression(f"n.lib.mkACI {{ packages = [ ({package}) ]; }}", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "nix2aci: error: packages: /nix/store/" in result.stderr
    assert "-notes-2.1 is not a directory; packages are merged into the image's root" in result.stderr

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
        ('mounts.data.path = "data";', "mounts.data.path must be an absolute path in the image, normalised"),
        ('isolators = [ { name = "resource/memory"; } ];', "isolators[0].value is required"),
        ('user = "";', "user must be a user or group name"),
        ('compression = "zstd";', 'compression must be one of "gzip", "bzip2", "xz", "none"'),
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


# Each function over busybox, with ``{}`` standing for more arguments.
FUNCTIONS = {
    "mkACI": "n.lib.mkACI ({{ packages = [ n.pkgs.busybox ]; }} // {{ {} }})",
    "buildContainer": 'n.lib.buildContainer ({{ args = [ "${{n.pkgs.busybox}}/bin/sh" ]; }} // {{ {} }})',
    "buildOCIImage": "n.lib.buildOCIImage ({{ packages = [ n.pkgs.busybox ]; }} // {{ {} }})",
}
IMAGE_PATH = "must be an absolute path in the image, normalised: /-separated names, none of them empty, . or .."


def call(function: str, arguments: str) -> str:
    """An expression forcing the derivation of ``function`` over busybox with ``arguments``."""
    return f"({FUNCTIONS[function].format(arguments)}).drvPath"


def test_evaluation_messages_keep_to_one_line_whatever_the_value():
    message = nix_eval_error(call("mkACI", 'user = "evil:x:0:0::/:/bin/sh\\nmallory";'))
    assert "mkACI: user must be a user or group name: a lowercase letter or _" in message
    assert 'got the string "evil:x:0:0::/:/bin/sh\\nmallory"' in message.splitlines()[0]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('files."/../X".text = "x";', f'the name of files."/../X" {IMAGE_PATH}'),
        ('files."/etc/../X".text = "x";', f'the name of files."/etc/../X" {IMAGE_PATH}'),
        ('files."X".text = "x";', f"the name of files.X {IMAGE_PATH}"),
        ('files."/etc/./X".text = "x";', f'the name of files."/etc/./X" {IMAGE_PATH}'),
        ('files."/etc//X".text = "x";', f'the name of files."/etc//X" {IMAGE_PATH}'),
        ('files."/etc/".text = "x";', f'the name of files."/etc/" {IMAGE_PATH}'),
        ('files."/".directory = true;', f'the name of files."/" {IMAGE_PATH}'),
        ('files."/etc/a\\nb".text = "x";', f'the name of files."/etc/a\\nb" {IMAGE_PATH}'),
        ('files."/nix/store/x".text = "x";', 'files."/nix/store/x" must lie outside the Nix store (/nix/store)'),
        ('files."/x".symlink = "";', 'files."/x".symlink must be a non-empty string, got the string ""'),
        ('files."/x" = { text = "x"; mode = "8000"; };', 'files."/x".mode must be an octal mode'),
        ('files."/x" = { text = "x"; uid = 4294967296; };', 'files."/x".uid must be an integer from 0 to'),
        ("uid = 4294967296;", "uid must be an integer from 0 to 4294967295, got 4294967296"),
        ("gid = -1;", "gid must be an integer from 0 to 4294967295, got -1"),
        ('env."A=B" = "c";', 'the name of env."A=B" must be an environment variable name: letters, digits, _, . and -'),
        ('env."" = "c";', 'the name of env."" must be an environment variable name'),
        ('env."A\\nB" = "c";', 'the name of env."A\\nB" must be an environment variable name'),
        ('env."1A" = "c";', 'the name of env."1A" must be an environment variable name'),
    ],
)
def test_arguments_that_become_paths_or_lines_fail_at_evaluation_in_every_function(function, arguments, expected):
    message = nix_eval_error(call(function, arguments))
    assert f"{function}: {expected}" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("function", "arguments", "expected"),
    [
        ("mkACI", 'user = "evil:x:0:0::/:/bin/sh\\nmallory";', "user must be a user or group name"),
        ("mkACI", 'group = "wheel:x:0:mallory";', "group must be a user or group name"),
        ("mkACI", 'user = "Admin";', "user must be a user or group name"),
        ("mkACI", f'user = "{"a" * 33}";', "user must be a user or group name"),
        ("mkACI", "user = 4294967296;", "user must be a user or group name"),
        ("mkACI", 'user = "4294967296";', "user must be a user or group name"),
        ("mkACI", 'group = "/etc/../shadow";', "group must be a user or group name"),
        (
            "mkACI",
            "supplementaryGIDs = [ 4294967296 ];",
            "supplementaryGIDs[0] must be an integer from 0 to 4294967295",
        ),
        ("mkACI", 'version = "1/2";', "version must be a part of a file name: letters, digits and + - . _ ? ="),
        ("mkACI", 'version = "..";', "version must be a part of a file name"),
        ("mkACI", 'mounts.data.path = "/var/../etc";', f"mounts.data.path {IMAGE_PATH}"),
        ("buildContainer", "user.uid = 4294967296;", "user.uid must be an integer from 0 to 4294967295"),
        (
            "buildContainer",
            "user.additionalGids = [ (-1) ];",
            "user.additionalGids[0] must be an integer from 0 to 4294967295",
        ),
        ("buildContainer", 'name = "a b";', "name must be a name of letters, digits and + - . _ ? ="),
        ("buildContainer", 'mounts."/data/../etc" = { };', f'the name of mounts."/data/../etc" {IMAGE_PATH}'),
        ("buildOCIImage", 'user = "evil:x:0:0::/:/bin/sh\\nmallory";', "user must be USER or USER:GROUP"),
        ("buildOCIImage", 'user = "app:staff:x";', "user must be USER or USER:GROUP"),
        ("buildOCIImage", 'user = "4294967296";', "user must be USER or USER:GROUP"),
        ("buildOCIImage", 'name = "../x";', "name must be an image repository name as Docker and podman take it"),
        ("buildOCIImage", 'name = "Busybox";', "name must be an image repository name as Docker and podman take it"),
        ("buildOCIImage", 'tag = "1/2";', "tag must be an OCI tag"),
        ("buildOCIImage", "maxLayers = 0;", "maxLayers must be an integer from 1, got 0"),
        ("buildOCIImage", 'maxLayers = "3";', 'maxLayers must be an integer from 1, got the string "3"'),
        (
            "buildOCIImage",
            'format = "tar";',
            'format must be one of "oci-layout", "docker-archive", got the string "tar"',
        ),
        ("buildOCIImage", 'layerCompression = "xz";', "layerCompression must be one of"),
        (
            "buildOCIImage",
            'format = "docker-archive"; layerCompression = "zstd";',
            'layerCompression = "zstd" cannot go with format = "docker-archive": docker load (Docker 20.10)',
        ),
        ("buildOCIImage", 'created = "yesterday";', "created must be an RFC 3339 date and time in UTC"),
        ("buildOCIImage", 'created = "2024-01-02 03:04:05Z";', "created must be an RFC 3339 date and time in UTC"),
        ("buildContainer", 'cwd = "/a/../../b";', "cwd must be / or an absolute path in the image, normalised"),
        ("buildContainer", 'hostname = "a\\nb";', "hostname must be a host name"),
        ("buildContainer", 'hostname = "-a";', "hostname must be a host name"),
        ("mkACI", 'workingDirectory = "/x/";', "workingDirectory must be / or an absolute path in the image"),
        ("buildOCIImage", 'workingDir = "/./x";', "workingDir must be / or an absolute path in the image"),
    ],
)
def test_names_ids_and_file_name_parts_fail_at_evaluation_naming_the_argument(function, arguments, expected):
    message = nix_eval_error(call(function, arguments))
    assert f"{function}: {expected}" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("ports.http.port = 0;", "ports.http.port must be an integer from 1 to 65535, got 0"),
        ("ports.http.port = 65536;", "ports.http.port must be an integer from 1 to 65535, got 65536"),
        ("ports.http = { port = 80; count = 0; };", "ports.http.count must be an integer from 1 to 65535, got 0"),
        ("compressionLevel = 10;", "compressionLevel must be an integer from 0 to 9, got 10"),
        ("compressionLevel = -1;", "compressionLevel must be an integer from 0 to 9, got -1"),
        ("uid = 4294967296;", "uid must be an integer from 0 to 4294967295, got 4294967296"),
        ("gid = 4294967296;", "gid must be an integer from 0 to 4294967295, got 4294967296"),
    ],
)
def test_bounds_are_refused_just_outside(arguments, expected):
    assert f"mkACI: {expected}" in nix_eval_error(call("mkACI", arguments))


@pytest.mark.parametrize(
    "arguments",
    [
        "ports.http.port = 1;",
        "ports.http = { port = 65535; count = 1; };",
        "compressionLevel = 0;",
        "compressionLevel = 9;",
        "uid = 0; gid = 4294967295;",
        "uid = 4294967295; gid = 0;",
        'user = 4294967295; group = "4294967295";',
        'user = "_app$"; group = "/etc/passwd"; supplementaryGIDs = [ 0 4294967295 ];',
        'workingDirectory = "/";',
        'workingDirectory = "/srv/..app/.x";',
    ],
)
def test_bounds_are_accepted_just_inside(arguments):
    assert nix_eval_json(call("mkACI", arguments)).endswith(".drv")


def test_an_image_name_with_a_tilde_still_makes_a_derivation():
    # ~ is allowed in an AC Identifier, not in a store path's name.
    path = nix_eval_json(call("mkACI", 'name = "example.com/a~b";'))
    assert path.endswith(".drv") and "-aci-a-b-" in path

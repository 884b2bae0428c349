"""What an outsider's attack on issue 13's fixes found: each hostile input, its canary and its message.

Images are hand-made with tarfile (tests/handmade.py) or built from busybox;
`nix2aci run` runs them through the command line and runc, each run with a
TMPDIR of its own (where the bundle goes), which must be as it was afterwards.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import uuid
from pathlib import Path

import pytest
from conftest import bundles_left, busybox_image, nix2aci_run, require, run
from handmade import entry, unpack_file, write_aci

pytestmark = pytest.mark.slow

# Deeper than Python's recursion limit (1000): shutil.rmtree recursed once per level and failed here.
DEPTH = 1500


def test_an_app_that_makes_a_deep_tree_leaves_no_bundle_and_no_traceback(busybox, tmp_path, is_root):
    make_deep_tree = f"i=0; while [ $i -lt {DEPTH} ]; do mkdir a && cd a || exit 9; i=$((i+1)); done; echo made"
    result = nix2aci_run(busybox, "--", "-c", make_deep_tree, tmp=tmp_path)
    assert (result.returncode, result.stdout) == (0, "made\n"), result.stderr
    assert "Traceback" not in result.stderr and "warning" not in result.stderr


def test_an_image_with_a_deep_tree_leaves_no_bundle_and_says_why_it_does_not_run(tmp_path, is_root):
    image = write_aci(tmp_path / "deep.aci", [entry("rootfs/" + "/".join(["a"] * DEPTH), tarfile.DIRTYPE)])
    with tarfile.open(image) as tar:  # the test's own check: the tree is as deep as intended
        assert max(member.name.count("/") for member in tar.getmembers()) == DEPTH
    result = nix2aci_run(image, "--exec", "/nothing", tmp=tmp_path, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert "/nothing" in result.stderr.splitlines()[-1]


def test_a_passwd_that_leads_to_a_fifo_in_a_volume_is_refused_at_once(tmp_path, is_root):
    require("runc")
    volume = tmp_path / "volume"
    volume.mkdir()
    fifo = volume / "fifo"
    os.mkfifo(fifo)
    manifest = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "evil",
        "app": {"exec": ["/bin/sh"], "user": "bob", "group": "0", "mountPoints": [{"name": "data", "path": "/data"}]},
    }
    members = [
        entry("rootfs/data", tarfile.DIRTYPE, mode=0o755),
        entry("rootfs/etc", tarfile.DIRTYPE, mode=0o755),
        entry("rootfs/etc/passwd", tarfile.SYMTYPE, link="/data/fifo"),
    ]
    image = write_aci(tmp_path / "evil.aci", members, manifest=json.dumps(manifest).encode())
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    result = nix2aci_run(f"--volume=data,kind=host,source={volume}", str(image), tmp=bundles, check=False)
    assert result.returncode == 1
    assert result.stderr == "nix2aci: error: the image's /etc/passwd is a FIFO, not a regular file\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and sorted(volume.iterdir()) == [fifo]
    assert list(bundles.iterdir()) == []


def volume_source(tmp_path: Path, in_store: bool) -> Path:
    """A directory holding a file ``secret``: in tmp_path, or a fresh path of the Nix store (``nix-store --add``)."""
    source = tmp_path / f"host-{uuid.uuid4().hex}"  # a store path of its own each run
    source.mkdir()
    (source / "secret").write_text("host secret\n")
    if not in_store:
        return source
    return Path(run([require("nix-store"), "--add", str(source)]).stdout.strip())


@pytest.mark.parametrize("in_store, read_only", [(False, "false"), (False, "true"), (True, "false")])
def test_a_mounts_file_gives_no_host_directory_to_read_or_write(tmp_path, in_store, read_only, is_root):
    # A .mounts file travels unsigned beside the image: a hostile one named a host directory for the image's
    # mountPoint, which the app then wrote (readOnly=false) or read (readOnly=true), or a store path to write.
    require("runc")
    image = busybox_image(
        'exec = [ "/bin/sh" "-c" "cat /host/secret; echo planted > /host/canary" ];'
        ' mounts.host = { path = "/host"; readOnly = false; };'
    )
    host = volume_source(tmp_path, in_store)
    mounts = tmp_path / "evil.mounts"
    mounts.write_text(f"--volume=host,kind=host,source={host},readOnly={read_only}\n")
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    result = nix2aci_run("--mounts-file", str(mounts), str(image), tmp=bundles, check=False)
    assert result.stderr == (
        f"nix2aci: error: --mounts-file {mounts}: volume 'host' is not a read-only store path or /etc/resolv.conf,"
        " as a build writes them (it travels unsigned beside the image): give other volumes with --volume\n"
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert sorted(path.name for path in host.iterdir()) == ["secret"]
    assert bundles_left(bundles) == []


# A 300 KB image of 20,000 empty files 2,000 levels deep kept `nix2aci run` busy for minutes while the extractor
# walked every member's path from the rootfs: the directories along the path are now kept open between members.
def test_unpacking_files_in_a_deep_directory_costs_no_walk_per_file(tmp_path, monkeypatch):
    files = 100
    deep = "rootfs/" + "/".join(["a"] * DEPTH)
    image = write_aci(tmp_path / "deep.aci", [entry(f"{deep}/f{i}", data=b"") for i in range(files)])
    calls = []
    for name in ("open", "mkdir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *args, real=real, **kwargs: calls.append(args[0]) or real(*args, **kwargs))
    try:
        unpack_file(image, tmp_path / "bundle")
        assert (tmp_path / "bundle/rootfs" / deep.removeprefix("rootfs/") / f"f{files - 1}").is_file()
        # Making the directory once (a mkdir and an open per level) and each file: a bounded number of calls each.
        assert len(calls) <= 2 * DEPTH + 4 * files, f"{len(calls)} calls to os.open and os.mkdir"
    finally:
        monkeypatch.undo()
        # pytest removes old temporary directories with shutil.rmtree, which fails on a tree this deep.
        run(["rm", "-rf", "--one-file-system", str(tmp_path / "bundle")])

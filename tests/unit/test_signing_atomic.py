"""The one atomic-replacement helper, and what counts as a link nix2aci made (no Nix, no gpg needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nix2aci.errors import Nix2AciError
from nix2aci.signing import atomic


def entries(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_write_atomically_replaces_whole_and_sets_the_mode(tmp_path):
    path = tmp_path / "x.aci.asc"
    path.write_text("old")
    atomic.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert entries(tmp_path) == ["x.aci.asc"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "x.aci.asc"
    path.write_text("old, complete")

    def interrupted(_source, _destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomically(str(path), b"new")
    assert path.read_text() == "old, complete"
    assert entries(tmp_path) == ["x.aci.asc"]


@pytest.mark.parametrize("replace", ["file", "symlink"])
def test_a_failed_check_replaces_nothing_and_leaves_no_temporary(tmp_path, replace):
    # The check runs on the complete temporary, before the rename: what postprocess and
    # `nix2aci sign` rely on to verify a new signature before it replaces the old one.
    path = tmp_path / "x.aci.asc"
    path.write_text("old, good signature")
    seen = []

    def refuse(temporary):
        seen.append((temporary, os.path.lexists(temporary), path.read_text()))
        raise Nix2AciError("the new one does not verify")

    with pytest.raises(Nix2AciError, match="does not verify"):
        if replace == "file":
            atomic.write_atomically(str(path), b"new", check=refuse)
        else:
            atomic.replace_with(str(path), lambda temporary: os.symlink("elsewhere", temporary), check=refuse)
    ((temporary, existed, at_check_time),) = seen
    assert existed and at_check_time == "old, good signature"  # checked while the old one was still in place
    assert path.read_text() == "old, good signature" and not path.is_symlink()
    assert entries(tmp_path) == ["x.aci.asc"] and not os.path.lexists(temporary)


def test_replace_symlink_replaces_a_link_in_one_rename(tmp_path):
    link = tmp_path / "x.aci"
    atomic.replace_symlink(str(link), "/nix/store/a-x/x.aci")
    atomic.replace_symlink(str(link), "/nix/store/b-x/x.aci")
    assert os.readlink(link) == "/nix/store/b-x/x.aci"
    assert entries(tmp_path) == ["x.aci"]


def test_stale_temporaries_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    path = tmp_path / "x.aci.asc"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".x.aci.asc.nix2aci-tmp-{int(dead.stdout)}-0badc0de"
    live = tmp_path / f".x.aci.asc.nix2aci-tmp-{os.getpid()}-0badc0de"
    unrelated = tmp_path / ".y.aci.asc.nix2aci-tmp-1-0badc0de"
    for file in (stale, live, unrelated):
        file.write_text("partial")
    assert atomic.remove_stale_temporaries(str(path)) == [str(stale)]
    assert entries(tmp_path) == sorted([live.name, unrelated.name])


def test_temporary_names_are_hidden_unique_and_name_their_writer(tmp_path):
    path = str(tmp_path / "x.aci")
    first, second = atomic.temporary_path(path), atomic.temporary_path(path)
    assert first != second
    assert os.path.dirname(first) == str(tmp_path)
    assert os.path.basename(first).startswith(f".x.aci.nix2aci-tmp-{os.getpid()}-")


@pytest.mark.parametrize(
    ("name", "target", "ours"),
    [
        ("app.aci", "/nix/store/0123-aci-app/app.aci", True),  # postprocess.sh's link
        ("app.aci", "/nix/store/0123-aci-app/other.aci", True),  # any link into the store: nothing to lose
        ("app.aci", "/nix/store/0123-aci-app", True),
        ("app.aci", ".app-result/app-1.0-linux-amd64.aci", True),  # build-thin's link
        ("app.mounts", ".app-result/app-1.0-linux-amd64.mounts", True),
        ("app.aci", "/home/alice/app.aci", False),
        ("app.aci", "app-copy.aci", False),
        ("app.aci", "/nix/store", False),  # the store itself is no output
        ("app.aci", "/nix/store/../../etc/passwd", False),  # not normalised: judged as written
        ("app.aci", "/nix/storefront/x.aci", False),
        ("app.aci", ".other-result/app.aci", False),  # another image's result link
        ("app.aci", ".app-result/../app.aci", False),
        ("app.aci", ".app-result/sub/app.aci", False),
        ("app.aci", ".app-result/", False),
        ("app.txt", ".app-result/app.txt", False),
    ],
)
def test_which_links_nix2aci_made(tmp_path, monkeypatch, name, target, ours):
    monkeypatch.setenv("NIX_STORE_DIR", "/nix/store")
    link = tmp_path / name
    os.symlink(target, link)
    assert atomic.made_by_nix2aci(str(link)) is ours


def test_files_and_absent_names_are_not_links_nix2aci_made(tmp_path):
    (tmp_path / "app.aci").write_bytes(b"mine")
    assert not atomic.made_by_nix2aci(str(tmp_path / "app.aci"))
    assert not atomic.made_by_nix2aci(str(tmp_path / "absent.aci"))


def test_refuse_foreign_names_each_thing_of_the_users_and_changes_nothing(tmp_path):
    mine, elsewhere, ours, absent = (tmp_path / name for name in ("a.aci", "b.aci", "c.aci", "d.aci"))
    mine.write_bytes(b"my image")
    os.symlink("/home/alice/b.aci", elsewhere)
    os.symlink("/nix/store/0123-aci-c/c.aci", ours)
    paths = [str(path) for path in (mine, elsewhere, ours, absent)]
    with pytest.raises(Nix2AciError) as error:
        atomic.refuse_foreign(paths, force=False)
    assert str(error.value) == (
        f"will not replace {mine} (a regular file), {elsewhere} (a link to /home/alice/b.aci), not made by nix2aci: "
        "move it away, or rerun with --force"
    )
    atomic.refuse_foreign(paths, force=True)  # --force: allowed
    atomic.refuse_foreign([str(ours), str(absent)], force=False)
    assert mine.read_bytes() == b"my image" and os.readlink(elsewhere) == "/home/alice/b.aci"


def test_a_directory_is_never_replaced_even_with_force(tmp_path):
    (tmp_path / "a.aci").mkdir()
    with pytest.raises(Nix2AciError, match=r"will not replace .*a.aci \(a directory\): move it away; nix2aci never"):
        atomic.refuse_foreign([str(tmp_path / "a.aci")], force=True)

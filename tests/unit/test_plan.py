"""Plans: copying trees, merged profiles and their conflicts, ordering."""

from __future__ import annotations

import os
import re

import attrs
import pytest

from nix2aci.build import plan
from nix2aci.errors import Nix2AciError
from nix2aci.oci import bundle


def package(root, name: str, files: dict[str, str]) -> str:
    """A fake store path: ``files`` maps relative paths to contents, or to '-> TARGET' for symlinks."""
    path = root / name
    for relative, content in files.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("-> "):
            os.symlink(content[3:], target)
        else:
            target.write_text(content)
    return str(path)


def by_path(entries):
    return {entry.path: entry for entry in entries}


def merged(packages, prefer=(), reveal=()):
    """The profile's entries by path, after looking into the directories of ``reveal``'s paths."""
    profile = plan.Profile(packages, prefer)
    for path in reveal:
        profile.reveal(path)
    return profile.entries


def test_copy_tree_keeps_symlinks_and_never_follows_loops(tmp_path):
    tree = package(tmp_path, "tzdata", {"zoneinfo/UTC": "utc", "zoneinfo/posix": "-> ."})
    entries = by_path(plan.copy_tree(tree, "share"))
    assert entries["share/zoneinfo/posix"].kind is plan.Kind.SYMLINK
    assert entries["share/zoneinfo/posix"].target == "."
    assert set(entries) == {"share", "share/zoneinfo", "share/zoneinfo/UTC", "share/zoneinfo/posix"}


def test_profile_merges_packages_into_shared_directories(tmp_path):
    a = package(tmp_path, "a", {"bin/a": "a", "share/doc/a": "a"})
    b = package(tmp_path, "b", {"bin/b": "b"})
    entries = merged([a, b])
    assert entries["bin"].kind is plan.Kind.DIRECTORY and entries["bin"].source is None
    assert entries["bin/a"].target == f"{a}/bin/a"
    assert entries["bin/b"].target == f"{b}/bin/b"
    # share is a's alone: planned unopened, as a's directory, until something looks inside.
    assert entries["share"].source == f"{a}/share" and "share/doc" not in entries
    assert merged([a, b], reveal=["share/doc/a"])["share/doc/a"].target == f"{a}/share/doc/a"


def test_directory_symlink_does_not_hide_another_packages_files(tmp_path):
    a = package(tmp_path, "a", {"bin/a": "a", "sbin": "-> bin"})
    b = package(tmp_path, "b", {"sbin/b": "b"})
    entries = merged([a, b])
    assert entries["sbin"].kind is plan.Kind.DIRECTORY
    assert entries["sbin/a"].target == f"{a}/sbin/a"
    assert entries["sbin/b"].target == f"{b}/sbin/b"


def test_profile_symlink_loop_stays_a_symlink(tmp_path):
    a = package(tmp_path, "a", {"share/zoneinfo/UTC": "u", "share/zoneinfo/posix": "-> ."})
    entries = merged([a], reveal=["share/zoneinfo/posix/UTC"])
    assert entries["share/zoneinfo/posix"].kind is plan.Kind.SYMLINK
    assert "share/zoneinfo/posix/UTC" not in entries


def test_two_packages_with_the_same_file_are_an_error_naming_both(tmp_path):
    a = package(tmp_path, "a", {"bin/sh": "a"})
    b = package(tmp_path, "b", {"bin/sh": "b"})
    with pytest.raises(Nix2AciError, match=f"packages {a} and {b} both provide /bin/sh"):
        plan.Profile([a, b])


def test_sorted_plan_orders_by_bytes_and_rejects_conflicting_duplicates():
    entries = [plan.directory("a/b"), plan.directory("a-b"), plan.directory("a"), plan.directory("a")]
    assert [e.path for e in plan.sorted_plan(entries)] == ["a", "a-b", "a/b"]
    with pytest.raises(Nix2AciError, match="planned twice"):
        plan.sorted_plan([plan.directory("a"), plan.symlink("a", "b")])


def test_prefer_picks_the_provider_of_a_conflicting_file(tmp_path):
    a = package(tmp_path, "a", {"bin/sh": "a", "bin/a": "a"})
    b = package(tmp_path, "b", {"bin/sh": "b"})
    assert merged([a, b], prefer=[b])["bin/sh"].target == f"{b}/bin/sh"
    assert merged([a, b], prefer=[a])["bin/sh"].target == f"{a}/bin/sh"
    with pytest.raises(Nix2AciError, match="is not one of the packages"):
        plan.Profile([a], prefer=[b])


def test_thin_store_paths_are_empty_mount_points():
    (entry,) = plan.mount_points(["/nix/store/abc-x"])
    assert (entry.path, entry.kind, entry.mode) == ("nix/store/abc-x", plan.Kind.DIRECTORY, 0o555)


def test_copy_tree_walks_in_plan_order_whatever_sorts_between_a_directory_and_its_contents(tmp_path):
    # In byte order a-1 and a.d sort between a and a/...; copy_tree yields them there, as it walks.
    tree = package(tmp_path, "t", {"a/x": "x", "a-1": "1", "a.d/y": "y", "b": "b", "a/c/z": "z"})
    paths = [entry.path for entry in plan.copy_tree(tree, "nix/store/t")]
    assert paths == sorted(paths, key=os.fsencode)
    assert paths == [entry.path for entry in plan.sorted_plan(plan.copy_tree(tree, "nix/store/t"))]
    assert paths[:4] == ["nix/store/t", "nix/store/t/a", "nix/store/t/a-1", "nix/store/t/a.d"]


def test_merged_streams_keep_plan_order_and_one_entry_a_path():
    first = [plan.directory("nix"), plan.directory("nix/store"), plan.symlink("nix/z", "/x")]
    second = [plan.directory("nix", source="/nix/store/p/nix"), plan.directory("nix/store/p", 0o555)]
    entries = list(plan.merged(first, second))
    assert [e.path for e in entries] == ["nix", "nix/store", "nix/store/p", "nix/z"]
    assert entries[0] == plan.directory("nix")  # planned by both: mirrors no package
    with pytest.raises(Nix2AciError, match="/nix/z is planned twice, differently"):
        list(plan.merged(first, [plan.directory("nix/z")]))


def test_planned_looks_into_copied_trees_without_following_their_symlinks(tmp_path):
    tree = package(tmp_path, "t", {"bin/sh": "sh", "lib": "-> bin"})
    planned = plan.Planned([plan.directory("")], copies={"nix/store/t": tree})
    assert "nix/store/t" in planned and "nix/store/t/bin/sh" in planned and "nix/store/t/lib" in planned
    assert "nix/store/t/lib/sh" not in planned and "nix/store/t/bin/bash" not in planned
    assert "nix/store/u/bin/sh" not in planned


def collapsed(entries):
    return by_path(plan.collapse(plan.sorted_plan([plan.directory(""), *entries])))


def test_collapse_makes_a_single_package_directory_one_symlink(tmp_path):
    a = package(tmp_path, "a", {"lib/perl5/A.pm": "a", "lib/perl5/B/C.pm": "c", "bin/a": "a"})
    b = package(tmp_path, "b", {"bin/b": "b"})
    entries = collapsed(merged([a, b]).values())
    # bin is shared, so it stays a directory of links; lib is a's alone.
    assert entries["lib"].kind is plan.Kind.SYMLINK and entries["lib"].target == f"{a}/lib"
    assert not any(path.startswith("lib/") for path in entries)
    assert entries["bin"].kind is plan.Kind.DIRECTORY
    assert entries["bin/a"].target == f"{a}/bin/a" and entries["bin/b"].target == f"{b}/bin/b"


def test_collapse_keeps_directories_something_else_went_into(tmp_path):
    a = package(tmp_path, "a", {"etc/a.conf": "a", "etc/ssl/x": "x", "share/doc/a": "a"})
    added = [plan.file_with_content("etc/passwd", b"root:x:0:0::/:/bin/sh\n"), plan.directory("share/doc/mnt")]
    entries = collapsed([*merged([a], reveal=[e.path for e in added]).values(), *added])
    assert entries["etc"].kind is plan.Kind.DIRECTORY and entries["etc/passwd"].content
    assert entries["etc/a.conf"].target == f"{a}/etc/a.conf"
    assert entries["etc/ssl"].kind is plan.Kind.SYMLINK and entries["etc/ssl"].target == f"{a}/etc/ssl"
    assert entries["share"].kind is entries["share/doc"].kind is plan.Kind.DIRECTORY
    assert entries["share/doc/a"].kind is plan.Kind.SYMLINK and "share/doc/mnt" in entries


def test_collapse_leaves_out_the_contents_of_a_collapsed_directory_whatever_sorts_between(tmp_path):
    # In byte order lib-x and lib.d sort between lib and lib/...: they must stay, lib's contents go.
    a = package(tmp_path, "a", {"lib/x": "x", "lib-x/y": "y", "lib.d/z": "z"})
    b = package(tmp_path, "b", {"lib.d/w": "w"})
    entries = collapsed(merged([a, b]).values())
    assert entries["lib"].target == f"{a}/lib" and entries["lib-x"].target == f"{a}/lib-x"
    assert entries["lib.d"].kind is plan.Kind.DIRECTORY and set(entries) >= {"lib.d/z", "lib.d/w"}
    assert not any(path.startswith(("lib/", "lib-x/")) for path in entries)


def test_collapse_never_touches_store_copies_or_the_root(tmp_path):
    a = package(tmp_path, "a", {"bin/a": "a"})
    entries = [plan.directory(""), *plan.copy_tree(a, "nix/store/a")]
    assert plan.collapse(plan.sorted_plan(entries)) == plan.sorted_plan(entries)


def test_a_directory_looked_into_and_left_alone_is_still_one_symlink(tmp_path):
    a = package(tmp_path, "a", {"etc/passwd": "root", "etc/hosts": "localhost"})
    entries = merged([a], reveal=["etc/passwd"])
    assert entries["etc/passwd"].target == f"{a}/etc/passwd"
    assert collapsed(entries.values())["etc"].target == f"{a}/etc"


ROOT = plan.directory("")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([ROOT, plan.file_with_content("../X", b"attack")], "cannot have an entry named '../X'"),
        ([ROOT, plan.file_with_content("a/../../X", b"attack")], "cannot have an entry named 'a/../../X'"),
        ([ROOT, plan.file_with_content("/X", b"attack")], "cannot have an entry named '/X'"),
        ([ROOT, plan.directory("a"), plan.file_with_content("a//X", b"")], "cannot have an entry named 'a//X'"),
        ([ROOT, plan.file_with_content("a\0b", b"")], "cannot have an entry named 'a\\x00b'"),
        ([ROOT, plan.symlink("a", "/"), plan.file_with_content("a/X", b"")], "/a/X would lie below /a, which the"),
        ([ROOT, plan.file_with_content("a", b""), plan.directory("a/X")], "/a/X would lie below /a, which the"),
        ([ROOT, plan.file_with_content("a/X", b"")], "/a/X would lie below /a, which the"),
        ([plan.file_with_content("X", b"")], "/X would lie below /, which"),
        ([ROOT, plan.directory("a"), ROOT], "the image's root must come first"),
    ],
)
def test_writers_refuse_an_entry_outside_the_image_or_below_a_non_directory(tmp_path, entries, message):
    # The writer of bundles, fed the plan directly: the canaries are where each entry aims
    # (rootfs/../X, and /X made the canary's absolute path; a link to / made one to a directory).
    outside, target = tmp_path / "X", tmp_path / "target"
    outside.write_text("canary\n")
    target.mkdir()
    entries = [
        plan.symlink(e.path, str(target))
        if e.target == "/"
        else attrs.evolve(e, path=str(outside))
        if e.path == "/X"
        else e
        for e in entries
    ]
    message = message.replace("'/X'", repr(str(outside)))
    with pytest.raises(Nix2AciError, match=re.escape(message)):
        bundle.write_tree(entries, str(tmp_path / "rootfs"))
    assert outside.read_text() == "canary\n"
    assert os.listdir(target) == []
    with pytest.raises(Nix2AciError, match=re.escape(message)):
        list(plan.contained(entries))


def test_write_tree_never_replaces_what_is_there(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    with pytest.raises(Nix2AciError, match="cannot write '/' of the image: File exists"):
        bundle.write_tree([ROOT], str(root))
    assert os.listdir(root) == []


def test_planned_refuses_to_make_anything_below_a_file_or_a_symlink(tmp_path):
    tree = package(tmp_path, "static", {"bin/sh": "-> busybox", "bin/busybox": "binary", "etc/motd": "hi"})
    planned = plan.Planned([plan.symlink("usr", "/")], copies={"": tree})
    assert planned.make_parents("etc/app/x") == [plan.directory("etc/app")]
    assert planned.make_directory("bin/sh") == []  # a mount point on a link of the image is the runtime's business
    for path, parent, kind in [
        ("bin/sh/x", "bin/sh", plan.Kind.SYMLINK),
        ("etc/motd/x/y", "etc/motd", plan.Kind.FILE),
        ("usr/bin/x", "usr", plan.Kind.SYMLINK),
    ]:
        with pytest.raises(plan.NotADirectory) as error:
            planned.make_parents(path)
        assert (error.value.parent, error.value.kind) == (parent, kind)
        assert (
            error.value.below(f"/{path}")
            == f"/{path} lies below /{parent}, a {kind.value} in the image, not a directory"
        )
    assert "etc/motd/x" not in planned and "usr/bin" not in planned

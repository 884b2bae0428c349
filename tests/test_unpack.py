"""`nix2aci run`'s unpacking of hostile archives: nothing outside the private bundle changes, ever.

Each hostile archive is hand-made here (PAX and GNU tar) and aims at a canary
outside the bundle: a directory with a file, which a symlink, an absolute name
or a hard link of the archive points at. Each test asserts the canary is
unchanged (listing, contents, modes, owners, link counts) and the one-line
message. The extractor is also tested with the checks switched off: on its own
it never follows a link, never replaces an entry and never leaves the rootfs.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import nix2aci_run, run
from handmade import HOSTILE_MANIFEST, entry, unpack_file, write_aci

from nix2aci.aci import unpack
from nix2aci.errors import Nix2AciError

FORMATS = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}


class Canary:
    """A directory outside the bundle with a file and a subdirectory: what the hostile archives aim at."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.file = root / "file"
        self.inner = root / "inner"
        root.mkdir(mode=0o755)
        self.inner.mkdir(mode=0o755)
        self.file.write_bytes(b"canary\n")
        self.file.chmod(0o644)
        self.before = self.state()

    def state(self) -> list[tuple]:
        """Every entry under the canary (links not followed): name, mode, owner, link count, size, contents."""
        found = []
        for directory, names, files in os.walk(self.dir):
            for name in sorted(names + files):
                path = os.path.join(directory, name)
                info = os.lstat(path)
                contents = Path(path).read_bytes() if stat.S_ISREG(info.st_mode) else None
                found.append((path, info.st_mode, info.st_uid, info.st_gid, info.st_nlink, info.st_size, contents))
        info = os.lstat(self.dir)
        return [*sorted(found), (info.st_mode, info.st_uid, info.st_gid, info.st_nlink)]

    def untouched(self) -> bool:
        return self.state() == self.before


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    return Canary(tmp_path / "canary")


def relative_to_root(path: Path) -> str:
    """``path`` written relative to any directory: enough ``..`` to reach / from the bundle, then the path."""
    return "../" * 30 + str(path).lstrip("/")


# Hostile archives: (members aimed at the canary, the message that refuses them).
HOSTILE: dict[str, tuple[Callable[[Canary], list], str]] = {
    "dot-dot-through-a-symlink": (
        lambda c: [entry("rootfs/a", tarfile.SYMTYPE, link=str(c.inner)), entry("rootfs/a/../planted")],
        "member 'rootfs/a/../planted' has a '..' component",
    ),
    "dot-dot-out-of-the-rootfs": (
        lambda c: [entry("rootfs/" + relative_to_root(c.dir / "planted"))],
        "has a '..' component",
    ),
    "directory-dot-dot-out-of-the-rootfs": (
        lambda c: [
            entry("rootfs/etc", tarfile.DIRTYPE),
            entry("rootfs/etc/" + relative_to_root(c.inner), tarfile.DIRTYPE, mode=0o777),
        ],
        "has a '..' component",
    ),
    "directory-dot-dot-through-a-symlink": (
        lambda c: [
            entry("rootfs/a", tarfile.SYMTYPE, link=str(c.inner)),
            entry("rootfs/a/..", tarfile.DIRTYPE, mode=0o777),
        ],
        "member 'rootfs/a/..' has a '..' component",
    ),
    "under-a-symlink": (
        lambda c: [entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)), entry("rootfs/a/planted")],
        "member 'rootfs/a/planted' lies under the archive's symlink 'rootfs/a'",
    ),
    "two-levels-under-a-symlink": (
        lambda c: [entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)), entry("rootfs/a/b/planted")],
        "member 'rootfs/a/b/planted' lies under the archive's symlink 'rootfs/a'",
    ),
    "relative-hard-link-then-write-through-it": (
        lambda c: [
            entry("rootfs/l", tarfile.LNKTYPE, link=relative_to_root(c.file), mode=0o777),
            entry("rootfs/l", data=b"evil\n", mode=0o777),
        ],
        "member 'rootfs/l' is a hard link whose target '../../",
    ),
    "absolute-hard-link": (
        lambda c: [entry("rootfs/l", tarfile.LNKTYPE, link=str(c.file), mode=0o777)],
        "is an absolute name",
    ),
    "hard-link-through-a-symlink": (
        lambda c: [
            entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)),
            entry("rootfs/l", tarfile.LNKTYPE, link="rootfs/a/file"),
        ],
        "member 'rootfs/l' is a hard link to 'rootfs/a/file', not to an earlier regular file of the image",
    ),
    "absolute-name": (
        lambda c: [entry(str(c.dir / "planted"))],
        "is an absolute name",
    ),
    "long-component-under-a-symlink": (
        lambda c: [entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)), entry("rootfs/a/" + "x" * 300)],
        "has a component of over 255 bytes",
    ),
    "long-name-under-a-symlink": (
        lambda c: [
            entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)),
            entry("rootfs/a/" + ("d" * 250 + "/") * 17 + "x"),
        ],
        "is a name of over 4095 bytes",
    ),
    "directory-replaces-a-symlink": (
        lambda c: [entry("rootfs/a", tarfile.SYMTYPE, link=str(c.dir)), entry("rootfs/a", tarfile.DIRTYPE, mode=0o777)],
        "evil.aci is not a valid ACI: member 'rootfs/a': duplicate entry",
    ),
    "file-replaces-a-symlink": (
        lambda c: [entry("rootfs/f", tarfile.SYMTYPE, link=str(c.file)), entry("rootfs/f", data=b"evil\n", mode=0o777)],
        "evil.aci is not a valid ACI: member 'rootfs/f': duplicate entry",
    ),
}


@pytest.mark.parametrize("tar_format", FORMATS)
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archives_are_refused_and_the_canary_is_untouched(tmp_path, canary, case, tar_format):
    members, message = HOSTILE[case]
    image = write_aci(tmp_path / "evil.aci", members(canary), FORMATS[tar_format])
    with pytest.raises(Nix2AciError) as refused:
        unpack_file(image, tmp_path / "bundle")
    assert str(refused.value).startswith(str(image))
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert canary.untouched()


def test_a_nul_in_a_pax_path_is_refused(tmp_path, canary):
    members = [
        entry("rootfs/a", tarfile.SYMTYPE, link=str(canary.dir)),
        entry("rootfs/b", pax_path="rootfs/a/planted\x00.txt"),
    ]
    image = write_aci(tmp_path / "evil.aci", members)
    with pytest.raises(Nix2AciError, match=r"member 'rootfs/a/planted\\x00\.txt' has a NUL byte in its name$"):
        unpack_file(image, tmp_path / "bundle")
    assert canary.untouched()


def test_a_nul_in_a_pax_link_target_is_refused(tmp_path, canary):
    link, _ = entry("rootfs/l", tarfile.SYMTYPE, link="x")
    link.pax_headers = {"linkpath": f"{canary.file}\x00"}
    image = write_aci(tmp_path / "evil.aci", [(link, b"")])
    with pytest.raises(Nix2AciError, match=r"member 'rootfs/l' is a symlink whose target has a NUL byte$"):
        unpack_file(image, tmp_path / "bundle")
    assert canary.untouched()


@pytest.mark.parametrize("case", HOSTILE)
def test_the_extractor_alone_refuses_with_the_checks_switched_off(tmp_path, canary, case, monkeypatch):
    monkeypatch.setattr(unpack.Judge, "refusal", lambda self, member: None)
    members, _ = HOSTILE[case]
    image = write_aci(tmp_path / "evil.aci", members(canary))
    with pytest.raises(Nix2AciError, match=r"is not unpacked: "):
        unpack_file(image, tmp_path / "bundle")
    assert canary.untouched()


def set_id_or_special(bundle: Path) -> list[str]:
    """What in ``bundle`` is set-uid, set-gid, a device or a FIFO."""
    found = []
    for directory, names, files in os.walk(bundle):
        for name in names + files:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if (
                (mode & 0o6000 and not stat.S_ISDIR(mode))
                or stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode)
                or stat.S_ISFIFO(mode)
            ):
                found.append(name)
    return found


def device(name: str, kind: bytes, major: int, minor: int) -> tuple[tarfile.TarInfo, bytes]:
    info, data = entry(name, kind)
    info.devmajor, info.devminor = major, minor
    return info, data


# Members a container must not get unless the user says so, or at all: the bundle is the canary.
PRIVILEGED = {
    "set-gid-alone": (entry("rootfs/sg", mode=0o2755), "member 'rootfs/sg' is set-uid or set-gid; pass --allow-setuid"),
    "set-uid-alone": (entry("rootfs/su", mode=0o4755), "member 'rootfs/su' is set-uid or set-gid; pass --allow-setuid"),
    "fifo": (entry("rootfs/fifo", tarfile.FIFOTYPE), "member 'rootfs/fifo' is a device or FIFO"),
    "host-disk": (device("rootfs/sda", tarfile.BLKTYPE, 8, 0), "member 'rootfs/sda' is a device or FIFO"),
    "host-memory": (device("rootfs/mem", tarfile.CHRTYPE, 1, 1), "member 'rootfs/mem' is a device or FIFO"),
}


@pytest.mark.parametrize("tar_format", FORMATS)
@pytest.mark.parametrize("case", PRIVILEGED)
def test_set_id_files_devices_and_fifos_are_refused(tmp_path, case, tar_format):
    member, message = PRIVILEGED[case]
    image = write_aci(tmp_path / "evil.aci", [member], FORMATS[tar_format])
    with pytest.raises(Nix2AciError) as refused:
        unpack_file(image, tmp_path / "bundle")
    assert message in str(refused.value)
    assert set_id_or_special(tmp_path / "bundle") == []


@pytest.mark.parametrize("case", PRIVILEGED)
def test_the_extractor_alone_writes_no_set_id_bit_device_or_fifo(tmp_path, case, monkeypatch):
    monkeypatch.setattr(unpack.Judge, "refusal", lambda self, member: None)
    member, _ = PRIVILEGED[case]
    image = write_aci(tmp_path / "evil.aci", [member])
    if member[0].isreg():
        unpack_file(image, tmp_path / "bundle")  # written, without its set-id bits
        assert os.stat(tmp_path / "bundle/rootfs" / member[0].name.removeprefix("rootfs/")).st_mode & 0o7777 == 0o755
    else:
        with pytest.raises(Nix2AciError, match=r"is not unpacked: only files, directories and links are written$"):
            unpack_file(image, tmp_path / "bundle")
    assert set_id_or_special(tmp_path / "bundle") == []


def test_allow_setuid_keeps_set_id_bits(tmp_path):
    image = write_aci(tmp_path / "ok.aci", [entry("rootfs/sg", mode=0o2755), entry("rootfs/su", mode=0o4711)])
    unpack_file(image, tmp_path / "bundle", allow_setuid=True)
    assert os.stat(tmp_path / "bundle/rootfs/sg").st_mode & 0o7777 == 0o2755
    assert os.stat(tmp_path / "bundle/rootfs/su").st_mode & 0o7777 == 0o4711


def test_a_valid_archive_is_unpacked_with_owners_modes_times_and_links(tmp_path):
    directory, _ = entry("rootfs/ro", tarfile.DIRTYPE, mode=0o555)
    directory.mtime = 1_000_000
    program, data = entry("rootfs/ro/program", mode=0o750, data=b"#!/bin/sh\n")
    program.mtime = 2_000_000
    members = [
        (directory, b""),
        (program, data),
        entry("rootfs/ro/again", tarfile.LNKTYPE, link="rootfs/ro/program"),
        entry("rootfs/bin/sh", tarfile.SYMTYPE, link="/nowhere/sh"),  # rootfs/bin comes without a member
        entry("rootfs/up", tarfile.SYMTYPE, link="../../.."),  # a symlink may point anywhere: it is never followed
    ]
    image = write_aci(tmp_path / "ok.aci", members)
    result = unpack_file(image, tmp_path / "bundle")
    assert result.manifest.name == "evil"
    assert result.digest == hashlib.sha512(image.read_bytes()).hexdigest()
    rootfs = tmp_path / "bundle/rootfs"
    ro, program_stat = os.stat(rootfs / "ro"), os.stat(rootfs / "ro/program")
    assert (stat.S_IMODE(ro.st_mode), ro.st_mtime, ro.st_uid, ro.st_gid) == (0o555, 1_000_000, 1234, 4321)
    assert (stat.S_IMODE(program_stat.st_mode), program_stat.st_mtime) == (0o750, 2_000_000)
    assert (rootfs / "ro/program").read_bytes() == b"#!/bin/sh\n"
    assert os.stat(rootfs / "ro/again").st_ino == program_stat.st_ino
    assert os.readlink(rootfs / "bin/sh") == "/nowhere/sh" and os.readlink(rootfs / "up") == "../../.."
    assert os.lstat(rootfs / "bin/sh").st_uid == 1234
    assert sorted(os.listdir(tmp_path / "bundle")) == ["rootfs"]


def test_a_dot_slash_name_is_refused(tmp_path):
    # Decided: run takes names as written, and `.` components are refused, a leading ./ included
    # (validate calls such an archive valid, as the spec and actool do: they compare cleaned names).
    image = write_aci(tmp_path / "dot.aci", [entry("./rootfs/x")])
    with pytest.raises(Nix2AciError, match=r"member './rootfs/x' has a '\.' component; .* tar -C DIR"):
        unpack_file(image, tmp_path / "bundle")


def test_an_invalid_manifest_is_refused_at_the_end(tmp_path):
    with tarfile.open(tmp_path / "bad.aci", "w") as tar:
        for info, data in [entry("rootfs", tarfile.DIRTYPE), entry("rootfs/x"), entry("manifest", data=b"{}")]:
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(Nix2AciError, match=r"bad\.aci is not a valid ACI: manifest"):
        unpack_file(tmp_path / "bad.aci", tmp_path / "bundle")


def test_a_cut_archive_is_refused(tmp_path):
    image = write_aci(tmp_path / "cut.aci", [entry("rootfs/x", data=b"y" * 5000)])
    image.write_bytes(image.read_bytes()[:3000])
    with pytest.raises(Nix2AciError, match=r"cut\.aci is not a valid ACI: ends in the middle of a member's contents"):
        unpack_file(image, tmp_path / "bundle")


# One read of the image.
class ReadOnlyOnce:
    """A file that can only be read forward (no seek, no tell): counts the bytes read."""

    def __init__(self, file) -> None:
        self._file = file
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("compression", ["", "gz", "xz"])
def test_the_image_is_read_once_forward_from_where_the_file_is(tmp_path, compression):
    image = tmp_path / "ok.aci"
    with tarfile.open(image, f"w:{compression}") as tar:
        for info, data in [
            entry("manifest", data=HOSTILE_MANIFEST),
            entry("rootfs", tarfile.DIRTYPE),
            entry("rootfs/x"),
        ]:
            tar.addfile(info, io.BytesIO(data))
    # A plain tar may be followed by padding, here more than one read takes: it is read too. Compressed data may not.
    after = b"" if compression else b"\0" * (3 << 20)
    prefixed = tmp_path / "prefixed"
    prefixed.write_bytes(b"not part of the image" + image.read_bytes() + after)
    (tmp_path / "bundle").mkdir()
    with open(prefixed, "rb") as file:
        file.seek(len(b"not part of the image"))
        once = ReadOnlyOnce(file)
        result = unpack.unpack_image(once, "ok.aci", str(tmp_path / "bundle"))
    # Every byte from the start position to the end, once; the digest is theirs.
    assert once.bytes_read == image.stat().st_size + len(after)
    assert result.digest == hashlib.sha512(image.read_bytes() + after).hexdigest()
    assert (tmp_path / "bundle/rootfs/x").read_bytes() == b"planted\n"


def test_replacing_the_image_after_it_is_opened_changes_nothing(tmp_path, canary):
    valid = write_aci(tmp_path / "valid.aci", [entry("rootfs/x")])
    hostile = write_aci(tmp_path / "hostile.aci", HOSTILE["under-a-symlink"][0](canary))
    image = tmp_path / "image.aci"
    # A valid image swapped for a hostile one: what was opened is unpacked.
    os.link(valid, image)
    (tmp_path / "one").mkdir()
    with open(image, "rb") as file:
        os.replace(hostile, image)
        result = unpack.unpack_image(file, str(image), str(tmp_path / "one"))
    assert result.digest == hashlib.sha512(valid.read_bytes()).hexdigest()
    assert canary.untouched()
    # And the other way round: a hostile image swapped for a valid one is still refused.
    (tmp_path / "two").mkdir()
    with open(image, "rb") as file:
        os.replace(valid, image)
        with pytest.raises(Nix2AciError, match="lies under the archive's symlink"):
            unpack.unpack_image(file, str(image), str(tmp_path / "two"))
    assert canary.untouched()


# End to end, through the command line and runc.
@pytest.mark.slow
@pytest.mark.parametrize("case", ["dot-dot-through-a-symlink", "relative-hard-link-then-write-through-it"])
def test_run_refuses_hostile_archives(tmp_path, canary, case, is_root):
    members, message = HOSTILE[case]
    image = write_aci(tmp_path / "evil.aci", members(canary))
    result = nix2aci_run(image, tmp=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nix2aci: error: {image}: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert canary.untouched()


@pytest.mark.slow
def test_run_refuses_a_set_gid_file(tmp_path, is_root):
    image = write_aci(tmp_path / "evil.aci", [entry("rootfs/sg", mode=0o2755)])
    result = nix2aci_run(image, tmp=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"nix2aci: error: {image}: member 'rootfs/sg' is set-uid or set-gid; pass --allow-setuid to run such an image\n"
    )


@pytest.mark.slow
def test_run_still_runs_a_valid_image(busybox, tmp_path, is_root):
    result = nix2aci_run(busybox, "--", "-c", "echo ok; ls -ld /bin/busybox", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok\n")


def test_a_tree_deeper_than_the_directories_kept_open_is_whole_with_every_directorys_mode(tmp_path):
    """The extractor keeps at most KEPT_OPEN directories open: above them it walks again, and misses nothing."""
    depth = unpack._Cursor.KEPT_OPEN * 2 + 3
    members = []
    for branch in ("a", "b"):
        for level in range(1, depth + 1):
            members.append(entry("rootfs/" + "/".join([branch] * level), tarfile.DIRTYPE, mode=0o750 + level % 8))
    # Files that move the cursor from the bottom of one branch to the other and back to the top.
    for name in ("/".join(["a"] * depth) + "/deep", "/".join(["b"] * depth) + "/deep", "a/top", "b/a-file"):
        members.append(entry(f"rootfs/{name}"))
    bundle = tmp_path / "bundle"
    try:
        unpack_file(write_aci(tmp_path / "deep.aci", members), bundle)
        for branch in ("a", "b"):
            for level in range(1, depth + 1):
                directory = os.path.join(bundle, "rootfs", *[branch] * level)
                assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o750 + level % 8, directory
            assert os.path.isfile(os.path.join(bundle, "rootfs", *[branch] * depth, "deep"))
        assert (bundle / "rootfs/a/top").is_file() and (bundle / "rootfs/b/a-file").is_file()
    finally:
        # pytest removes old temporary directories with shutil.rmtree, which fails on a tree this deep.
        run(["rm", "-rf", "--one-file-system", str(bundle)])

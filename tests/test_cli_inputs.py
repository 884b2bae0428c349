"""Every command given a path it cannot use (missing, a directory, a FIFO, a socket, a device): one line, at once.

The real CLI runs as a subprocess under a hang guard: a FIFO with no writer
blocks a plain open() forever, so a regression is a killed run and a failed
test, never a stuck suite. Each case also checks what the command could have
written (a signature next to the input, any new file beside it): nothing.
"""

from __future__ import annotations

import builtins
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import MANIFEST, REPO, nix2aci, run

from nix2aci import inspect


def one_error_line(result: subprocess.CompletedProcess, status: int, says: str) -> None:
    """The run failed with ``status`` and exactly one line on stderr, which holds ``says``."""
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nix2aci: error: "), result.stderr
    assert says in result.stderr, result.stderr


def aci_bytes() -> bytes:
    """An uncompressed valid ACI: a manifest and a rootfs with one file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("manifest", json.dumps(MANIFEST).encode()), ("rootfs", None), ("rootfs/hello", b"hi\n")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    return buffer.getvalue()


# --- The unusable inputs ------------------------------------------------------------------------


def make_fifo(path: Path) -> str:
    os.mkfifo(path)
    return "is a FIFO, not a regular file"


def make_directory(path: Path) -> str:
    path.mkdir()
    return "is a directory, not a regular file"


def make_socket(path: Path) -> str:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))  # bound and closed: the socket file stays
    listener.close()
    return "is a socket, not a regular file"


def make_nothing(path: Path) -> str:
    return "does not exist"


def make_link_to_fifo(path: Path) -> str:
    """A link is followed (./ACIs holds links into the store): what it names is judged."""
    os.mkfifo(path.with_name("fifo-target"))
    path.symlink_to("fifo-target")
    return "is a FIFO, not a regular file"


def make_link_loop(path: Path) -> str:
    path.symlink_to(path.name)
    return "cannot be opened: Too many levels of symbolic links"


UNUSABLE = {
    "fifo": make_fifo,
    "directory": make_directory,
    "socket": make_socket,
    "missing": make_nothing,
    "link-to-fifo": make_link_to_fifo,
    "link-loop": make_link_loop,
}


def unusable(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path of ``kind`` named like an image (``X.aci``), and the end of the message that refuses it."""
    path = tmp_path / "bad.aci"
    return path, UNUSABLE[kind](path)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# --- inspect, sign, verify ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_home(tmp_path_factory) -> Path:
    """A real unprotected signing key made by scripts/prepare-signing-key (its pubkeys.gpg is the keyring)."""
    home = tmp_path_factory.mktemp("k") / "gnupg"
    run([str(REPO / "scripts" / "prepare-signing-key"), "--no-protection", "--email", "test@example.invalid"],
        env={**os.environ, "NIX2ACI_GNUPGHOME": str(home)})  # fmt: skip
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


@pytest.mark.parametrize("kind", UNUSABLE)
def test_inspect_refuses_at_once(tmp_path: Path, kind: str) -> None:
    path, reason = unusable(tmp_path, kind)
    before = listing(tmp_path)
    one_error_line(nix2aci("inspect", path, check=False), 2, f"nix2aci: error: image {path} {reason}")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("kind", UNUSABLE)
def test_sign_refuses_at_once_and_writes_no_signature(tmp_path: Path, kind: str, key_home: Path) -> None:
    path, reason = unusable(tmp_path, kind)
    before = listing(tmp_path)
    one_error_line(
        nix2aci("sign", path, env={"NIX2ACI_GNUPGHOME": str(key_home)}, check=False), 2, f"image {path} {reason}"
    )
    assert listing(tmp_path) == before  # no bad.aci.asc, no temporary file


@pytest.mark.parametrize("kind", UNUSABLE)
@pytest.mark.parametrize("role", ["image", "signature", "keyring"])
def test_verify_refuses_each_input_at_once(tmp_path: Path, kind: str, role: str, key_home: Path) -> None:
    """The image, --signature and --keyring given as what cannot be read: each named, exit 2."""
    image, signature = tmp_path / "good.aci", tmp_path / "good.aci.asc"
    image.write_bytes(aci_bytes())
    signature.write_text("-----BEGIN PGP SIGNATURE-----\n")
    path, reason = unusable(tmp_path, kind)
    arguments = {"image": image, "signature": signature, "keyring": key_home / "pubkeys.gpg", role: path}
    before = listing(tmp_path)
    result = nix2aci(
        "verify",
        "--keyring",
        arguments["keyring"],
        "--signature",
        arguments["signature"],
        arguments["image"],
        check=False,
    )
    one_error_line(result, 2, f"nix2aci: error: {role} {path} {reason}")
    assert listing(tmp_path) == before


def test_run_refuses_a_fifo_image_at_once(tmp_path: Path) -> None:
    """`nix2aci run FIFO`: one line and exit 2, never a hang (the FIFO has no writer)."""
    path, reason = unusable(tmp_path, "fifo")
    before = listing(tmp_path)
    one_error_line(nix2aci("run", path, check=False), 2, f"nix2aci: error: image {path} {reason}")
    assert listing(tmp_path) == before


def test_hostile_names_are_one_line(tmp_path: Path) -> None:
    """A 300-character name and a name with a newline: one line each (the newline shown escaped)."""
    long = tmp_path / ("x" * 300 + ".aci")
    one_error_line(nix2aci("inspect", long, check=False), 2, "cannot be opened: File name too long")
    newline = tmp_path / "two\nlines.aci"
    one_error_line(nix2aci("inspect", newline, check=False), 2, f"image {str(newline)!r} does not exist")
    newline.write_bytes(aci_bytes())
    shown = nix2aci("validate", newline)
    assert (shown.returncode, shown.stdout) == (0, f"{str(newline)!r}: valid aci\n")


# --- inspect: one bounded read --------------------------------------------------------------------

COMPRESSIONS = {
    "none": lambda data: data,
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bzip2": bz2.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_inspect_reads_the_image_once(tmp_path: Path, compression: str, monkeypatch) -> None:
    """One open of the image, and the ID, sizes and counts of that one read (the ID hashes the whole tar)."""
    # Zeros after the end-of-archive marker (record padding) are part of the ID: past the 1 MiB pieces read.
    tar = aci_bytes() + bytes(3 << 20)
    path = tmp_path / "hello.aci"
    path.write_bytes(COMPRESSIONS[compression](tar))
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def counting_os_open(name, *args, **kwargs):
        opened.append(os.fspath(name))
        return real_os_open(name, *args, **kwargs)

    def counting_open(name, *args, **kwargs):
        opened.append(os.fspath(name) if not isinstance(name, int) else f"fd {name}")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    summary = inspect.inspect(str(path))
    monkeypatch.undo()
    assert opened.count(str(path)) == 1, opened
    assert summary["imageID"] == f"sha512-{hashlib.sha512(tar).hexdigest()}"
    assert (summary["uncompressedSize"], summary["compressedSize"]) == (len(tar), path.stat().st_size)
    assert (summary["entries"], summary["files"], summary["manifest"]["name"]) == (3, 1, MANIFEST["name"])


def test_inspect_of_an_invalid_or_unreadable_image_is_one_line(tmp_path: Path) -> None:
    empty, invalid, huge = tmp_path / "empty.aci", tmp_path / "invalid.aci", tmp_path / "huge.aci"
    empty.touch()
    one_error_line(nix2aci("inspect", empty, check=False), 1, f"{empty} is not a valid ACI: must be a tar archive")
    invalid.write_bytes(aci_bytes().replace(b"rootfs/hello", b"other/hello!"))
    one_error_line(nix2aci("inspect", invalid, check=False), 1, f"{invalid} is not a valid ACI: ")
    # A PAX header claiming 1 GiB (sparse): not read, said at once.
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 1 << 30
    huge.write_bytes(info.tobuf(tarfile.USTAR_FORMAT))
    os.truncate(huge, (1 << 30) + 2048)
    one_error_line(nix2aci("inspect", huge, check=False), 1, f"{huge} cannot be inspected: it has tar headers")


# --- validate: exit codes -------------------------------------------------------------------------


def test_validate_missing_path_is_a_usage_error_before_anything_is_checked(tmp_path: Path) -> None:
    good, missing = tmp_path / "good.aci", tmp_path / "missing.aci"
    good.write_bytes(aci_bytes())
    for order in ((good, missing), (missing, good)):
        result = nix2aci("validate", *order, check=False)
        one_error_line(result, 2, f"cannot use {missing}: No such file or directory")
        assert result.stdout == ""  # nothing was checked


@pytest.mark.parametrize("invalid_first", [True, False])
def test_validate_invalid_wins_over_not_checked(tmp_path: Path, invalid_first: bool) -> None:
    """Exit 1 when any input is invalid, whatever the order; 3 when the worst is one not checked."""
    invalid, fifo, good = tmp_path / "invalid.aci", tmp_path / "fifo.aci", tmp_path / "good.aci"
    invalid.write_bytes(b"not a tar")
    os.mkfifo(fifo)
    good.write_bytes(aci_bytes())
    order = (invalid, fifo) if invalid_first else (fifo, invalid)
    result = nix2aci("validate", good, *order, check=False)
    assert result.returncode == 1, result.stdout
    assert f"{fifo}: not checked: it is neither a regular file nor a directory" in result.stdout
    assert re.search(f"^{re.escape(str(invalid))}: must be a tar archive", result.stdout, re.M)
    assert nix2aci("validate", *((good, fifo) if invalid_first else (fifo, good)), check=False).returncode == 3


def test_validate_of_unusual_files(tmp_path: Path) -> None:
    """A directory named like an ACI, a socket, a 300-character name: a verdict or a usage error, one line each."""
    directory = tmp_path / "image.aci"
    directory.mkdir()
    result = nix2aci("validate", directory, check=False)
    assert (result.returncode, result.stdout.splitlines()[-1]) == (1, f"{directory}: manifest: must be a regular file")
    one = nix2aci("validate", "--type", "aci", directory, check=False)
    assert (one.returncode, one.stdout) == (1, f"{directory}: must be a file to be an aci, and this is a directory\n")
    sock = tmp_path / "sock.aci"
    make_socket(sock)
    result = nix2aci("validate", sock, check=False)
    assert (result.returncode, result.stdout) == (
        3,
        f"{sock}: not checked: it is neither a regular file nor a directory\n",
    )
    one_error_line(nix2aci("validate", tmp_path / ("y" * 300), check=False), 2, "File name too long")

"""postprocess.sh's text, GC root names and linking (no Nix, no gpg needed)."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from nix2aci.build import postprocess_script
from nix2aci.errors import Nix2AciError
from nix2aci.signing import postprocess

COMMAND = "/nix/store/2rfj7bj8hp951pmw435vza57v8ylakvj-nix2aci-0.1.0.drv"
OUT = "/nix/store/j93fg04xgkkwiw6y1qvs0wjdxp9m55nq-aci-example-1.0"


def fake_program(directory, name: str, body: str) -> None:
    """An executable ``directory/name`` that runs the sh ``body``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(f"#!/bin/sh\n{body}\n")
    (directory / name).chmod(0o755)


def run_script(tmp_path, text: str, path: str) -> subprocess.CompletedProcess:
    """Run the script ``text`` with arguments ``--force DIR`` and PATH ``path``."""
    script = tmp_path / "postprocess.sh"
    script.write_text(text)
    script.chmod(0o755)
    return subprocess.run([str(script), "--force", "DIR"], env={"PATH": path}, capture_output=True, text=True)


def test_the_script_runs_the_command_the_build_names_on_its_own_output(tmp_path):
    text = postprocess_script.script_text(COMMAND, OUT, sign=True)
    assert text == postprocess_script.script_text(COMMAND, OUT, sign=True)  # deterministic
    assert text.startswith("#!/bin/sh\n")
    built = tmp_path / "built"
    fake_program(built / "bin", "nix2aci", 'echo "built: $*"')
    # nix-store --realise DRV prints the output; a nix2aci on PATH is not used then.
    fake_program(tmp_path / "path", "nix-store", f'[ "$*" = "--realise {COMMAND}" ] && echo {built}')
    fake_program(tmp_path / "path", "nix2aci", 'echo "from PATH: $*"')
    result = run_script(tmp_path, text, f"{tmp_path / 'path'}:/usr/bin:/bin")
    assert result.stdout == f"built: postprocess --build-output {OUT} --force DIR\n"
    unsigned = postprocess_script.script_text(COMMAND, OUT, sign=False)
    assert "does not sign" in unsigned
    assert run_script(tmp_path, unsigned, f"{tmp_path / 'path'}:/usr/bin:/bin").stdout == (
        f"built: postprocess --build-output {OUT} --no-sign --force DIR\n"
    )


def test_without_the_built_command_the_script_runs_nix2aci_from_path_else_fails_in_one_line(tmp_path):
    text = postprocess_script.script_text(COMMAND, OUT, sign=True)
    # The .drv is gone (a garbage collection took it): nix-store fails.
    fake_program(tmp_path / "path", "nix-store", "echo 'error: path is not valid' >&2; exit 1")
    fake_program(tmp_path / "path", "nix2aci", 'echo "from PATH: $*"')
    result = run_script(tmp_path, text, f"{tmp_path / 'path'}:/usr/bin:/bin")
    assert result.stdout == f"from PATH: postprocess --build-output {OUT} --force DIR\n"
    (tmp_path / "path" / "nix2aci").unlink()
    result = run_script(tmp_path, text, f"{tmp_path / 'path'}:/usr/bin:/bin")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"postprocess.sh: error: cannot run nix2aci: nix-store --realise {COMMAND} failed and no nix2aci is on "
        "PATH; install it: nix-env -f YOUR-NIX2ACI-CHECKOUT -iA nix2aci\n"
    )


def test_the_script_is_valid_sh_and_quotes_odd_paths(tmp_path):
    text = postprocess_script.script_text(COMMAND, "/tmp/it's here", sign=True)
    script = tmp_path / "postprocess.sh"
    script.write_text(text)
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert "'/tmp/it'\"'\"'s here'" in text


def test_write_script_makes_it_executable(tmp_path):
    path = postprocess_script.write_script(str(tmp_path), COMMAND, sign=True)
    assert path == str(tmp_path / "postprocess.sh")
    assert os.stat(path).st_mode & 0o777 == 0o555
    assert f"postprocess --build-output {tmp_path} " in (tmp_path / "postprocess.sh").read_text()


def test_gc_root_names_are_nix_own():
    # Measured: `nix-store --add-root /tmp/gcexp/addroot-test -r ...` (Nix 2.8) made
    # /nix/var/nix/gcroots/auto/07h0x1l642rbcyl2f3y6rrfv5rzagbm4.
    name = postprocess.nix_base32(hashlib.sha1(b"/tmp/gcexp/addroot-test").digest())
    assert name == "07h0x1l642rbcyl2f3y6rrfv5rzagbm4"
    # A store path hash: 20 bytes -> 32 characters of Nix's alphabet.
    assert postprocess.nix_base32(bytes(20)) == "0" * 32
    assert postprocess.nix_base32(b"\xff" * 20) == "z" * 32


def test_register_gc_root_writes_an_indirect_root_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NIX_STATE_DIR", str(tmp_path / "state"))
    link = tmp_path / "ACIs" / "x.aci"
    root = postprocess.register_gc_root(str(link))
    assert os.path.dirname(root) == str(tmp_path / "state" / "gcroots" / "auto")
    assert os.readlink(root) == str(link)
    assert postprocess.register_gc_root(str(link)) == root
    assert os.listdir(tmp_path / "state" / "gcroots" / "auto") == [os.path.basename(root)]


def test_register_gc_root_falls_back_to_the_per_user_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("NIX_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "alice")
    (tmp_path / "gcroots").mkdir()
    (tmp_path / "gcroots" / "auto").write_text("not a directory: stands in for one we may not write")
    root = postprocess.register_gc_root(str(tmp_path / "x.aci"))
    assert os.path.dirname(root) == str(tmp_path / "gcroots" / "per-user" / "alice")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A directory that stands in for the Nix store (with a state directory for the GC roots)."""
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("NIX_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "store"


def fake_output(directory, name="app-1.0-linux-amd64", mounts=False):
    """A build output: an image, its ID, maybe a .mounts file."""
    directory.mkdir(parents=True)
    (directory / f"{name}.aci").write_bytes(b"image " + directory.name.encode())
    (directory / f"{name}.aci.id").write_text("sha512-" + "0" * 128 + "\n")
    (directory / "postprocess.sh").write_text("#!/bin/sh\n")
    if mounts:
        (directory / f"{name}.mounts").write_text("--volume=x\n")
    return directory


def snapshot(directory) -> dict[str, tuple[str, bytes]]:
    """Every entry of ``directory``: a link's target or a file's bytes, to compare byte for byte."""
    return {
        path.name: ("link", os.readlink(path).encode()) if path.is_symlink() else ("file", path.read_bytes())
        for path in directory.iterdir()
    }


def test_links_images_and_mounts_and_nothing_else(tmp_path, store):
    output = fake_output(store / "0123-out1", mounts=True)
    outdir = tmp_path / "ACIs"
    links = postprocess.link_outputs(str(output), str(outdir))
    assert links == [str(outdir / "app-1.0-linux-amd64.aci"), str(outdir / "app-1.0-linux-amd64.mounts")]
    assert sorted(os.listdir(outdir)) == ["app-1.0-linux-amd64.aci", "app-1.0-linux-amd64.mounts"]
    for link in links:
        assert os.readlink(link) == str(output / os.path.basename(link))


def test_relinking_to_another_image_drops_its_old_signature_only(tmp_path, store):
    outdir = tmp_path / "ACIs"
    first, second = fake_output(store / "0123-out1"), fake_output(store / "4567-out2")
    postprocess.link_outputs(str(first), str(outdir))
    signature = outdir / "app-1.0-linux-amd64.aci.asc"
    signature.write_text("signed out1")
    (outdir / "mine.txt").write_text("mine")
    postprocess.link_outputs(str(first), str(outdir))  # same target: the signature still holds
    assert signature.read_text() == "signed out1"
    postprocess.link_outputs(str(second), str(outdir))  # another image: it no longer does
    assert not signature.exists()
    assert (outdir / "mine.txt").read_text() == "mine"
    assert os.readlink(outdir / "app-1.0-linux-amd64.aci") == str(second / "app-1.0-linux-amd64.aci")


@pytest.mark.parametrize("what", ["a regular file", "a link to /home/alice/app.aci"])
def test_a_users_image_and_signature_are_never_replaced_without_force(tmp_path, store, monkeypatch, what):
    monkeypatch.chdir(tmp_path)
    output = fake_output(store / "0123-out1", mounts=True)
    outdir = tmp_path / "ACIs"
    outdir.mkdir()
    image, signature = outdir / "app-1.0-linux-amd64.aci", outdir / "app-1.0-linux-amd64.aci.asc"
    if what == "a regular file":
        image.write_bytes(b"my own image")
    else:
        os.symlink("/home/alice/app.aci", image)
    signature.write_bytes(b"my own signature")
    before = snapshot(outdir)

    with pytest.raises(Nix2AciError) as error:
        postprocess.link_outputs(str(output), str(outdir))
    assert str(error.value) == (
        f"will not replace ACIs/app-1.0-linux-amd64.aci ({what}), not made by nix2aci: "
        "move it away, or rerun with --force"
    )
    assert snapshot(outdir) == before  # nothing linked, not even the .mounts; no temporaries

    # --force replaces the image; the signature stays until a new one replaces it.
    postprocess.link_outputs(str(output), str(outdir), force=True)
    assert os.readlink(image) == str(output / image.name)
    assert signature.read_bytes() == b"my own signature"


def test_a_users_mounts_file_is_refused_too_and_nothing_is_linked(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = fake_output(store / "0123-out1", mounts=True)
    (tmp_path / "ACIs").mkdir()
    (tmp_path / "ACIs" / "app-1.0-linux-amd64.mounts").write_text("my volumes\n")
    with pytest.raises(Nix2AciError, match=r"^will not replace ACIs/app-1.0-linux-amd64.mounts \(a regular file\),"):
        postprocess.postprocess(str(output), None, sign=False)
    assert snapshot(tmp_path / "ACIs") == {"app-1.0-linux-amd64.mounts": ("file", b"my volumes\n")}


def test_without_a_key_a_users_signature_is_never_deleted(tmp_path, store, monkeypatch):
    # Relinking our link to the same image with no key keeps its .asc; a user's file stops everything first.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NIX2ACI_GNUPGHOME", str(tmp_path / "no-key-here"))
    output = fake_output(store / "0123-out1")
    postprocess.postprocess(str(output), None, sign=False)
    ours = tmp_path / "ACIs" / "app-1.0-linux-amd64.aci.asc"
    ours.write_bytes(b"our signature of out1")
    with pytest.raises(Nix2AciError, match="no signing key"):
        postprocess.postprocess(str(output), None, sign=True)
    assert ours.read_bytes() == b"our signature of out1"

    other = fake_output(store / "4567-out2", name="other-1.0-linux-amd64")
    (tmp_path / "ACIs" / "other-1.0-linux-amd64.aci").write_bytes(b"my image")
    (tmp_path / "ACIs" / "other-1.0-linux-amd64.aci.asc").write_bytes(b"my signature")
    before = snapshot(tmp_path / "ACIs")
    with pytest.raises(Nix2AciError, match=r"will not replace ACIs/other-1.0-linux-amd64.aci \(a regular file\)"):
        postprocess.postprocess(str(other), None, sign=True)
    assert snapshot(tmp_path / "ACIs") == before


def test_unsigned_postprocess_reports_each_image(tmp_path, store, monkeypatch):
    output = fake_output(store / "0123-out1")
    monkeypatch.chdir(tmp_path)
    processed = postprocess.postprocess(str(output), None, sign=False)
    assert processed == [
        postprocess.Processed(
            link=str(tmp_path / "ACIs" / "app-1.0-linux-amd64.aci"),
            target=str(output / "app-1.0-linux-amd64.aci"),
            image_id="sha512-" + "0" * 128,
            signer=None,
        )
    ]
    lines = postprocess.summary(processed).splitlines()
    assert lines[0] == f"ACIs/app-1.0-linux-amd64.aci -> {output}/app-1.0-linux-amd64.aci"
    assert "  signature: none (built with sign = false)" in lines
    assert lines[-1].endswith("nix2aci run ACIs/app-1.0-linux-amd64.aci")


def test_an_output_without_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Nix2AciError, match=r"holds no \.aci image"):
        postprocess.link_outputs(str(tmp_path / "empty"), str(tmp_path / "ACIs"))


def test_a_directory_in_the_links_place_is_left_alone_even_with_force(tmp_path, store):
    output = fake_output(store / "0123-out1")
    (tmp_path / "ACIs" / "app-1.0-linux-amd64.aci").mkdir(parents=True)
    with pytest.raises(Nix2AciError, match=r"app-1.0-linux-amd64.aci \(a directory\): move it away; nix2aci never"):
        postprocess.link_outputs(str(output), str(tmp_path / "ACIs"), force=True)
    assert os.listdir(tmp_path / "ACIs" / "app-1.0-linux-amd64.aci") == []
    assert os.listdir(tmp_path / "ACIs") == ["app-1.0-linux-amd64.aci"]


def test_outdir_in_the_store_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp_path))
    output = fake_output(tmp_path / "out1")
    with pytest.raises(Nix2AciError, match=r"is in the Nix store; give a directory outside it"):
        postprocess.link_outputs(str(output), str(output / "ACIs"))
    assert not (output / "ACIs").exists()

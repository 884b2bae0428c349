"""End to end: signing (issue 5) with real gpg, real nix-build, real GC roots.

Every key lives in a GnuPG home under the test's tmp_path, made by
scripts/prepare-signing-key with --no-protection. postprocess.sh runs as a user
runs it: from another directory, with a bare environment (no .venv on PATH).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import NIX_OPTIONS, REPO, nix2aci, nix_build, nix_build_expression, only_aci, require, run

from nix2aci.errors import Nix2AciError
from nix2aci.signing import openpgp

pytestmark = pytest.mark.slow

PREPARE = str(REPO / "scripts" / "prepare-signing-key")
NIX_GC_ROOTS = Path(os.environ.get("NIX_STATE_DIR") or "/nix/var/nix") / "gcroots"
IN_STORE_PYTHON = "/usr/bin/python3"  # the offline package set's nix2aciPython (python-gnupg 0.4.9)


# --- helpers ---------------------------------------------------------------------


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent gpg started for a test home (only that one)."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


def gpg(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """gpg on a test home, never the user's."""
    require("gpg")
    return run(["gpg", "--homedir", str(home), "--batch", *args], check=check)


def bare_env(home: Path, **more: str) -> dict[str, str]:
    """The environment of a user running postprocess.sh: no virtualenv, our test key home."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home.parent), "NIX2ACI_GNUPGHOME": str(home), **more}


def make_key(home: Path, name: str = "nix2aci test", *extra: str) -> str:
    """A fresh unprotected RSA key made by scripts/prepare-signing-key; returns its fingerprint."""
    result = run([PREPARE, "--no-protection", "--name", name, "--email", "test@example.invalid", *extra],
                 env={**os.environ, "NIX2ACI_GNUPGHOME": str(home)})  # fmt: skip
    return re.search(r"signing key: ([0-9A-F]{40})", result.stdout).group(1)


def secret_keys(home: Path) -> list[list[str]]:
    """The ``sec`` lines (colon fields) of a home."""
    listing = gpg(home, "--with-colons", "--list-secret-keys", check=False).stdout
    return [line.split(":") for line in listing.splitlines() if line.startswith("sec:")]


@pytest.fixture
def short_dir(tmp_path_factory) -> Path:
    """A fresh directory with a short path: gpg-agent's socket paths must stay under 108 bytes."""
    return tmp_path_factory.mktemp("g")


@pytest.fixture
def fresh_keyring(tmp_path_factory):
    """A factory: a brand-new GnuPG home holding only the given public key file."""
    homes = []

    def make(public_key: Path) -> Path:
        home = tmp_path_factory.mktemp("c") / "h"
        home.mkdir(mode=0o700)
        homes.append(home)
        gpg(home, "--import", str(public_key))
        assert secret_keys(home) == []
        return home

    yield make
    for home in homes:
        stop_agent(home)


def postprocess(output: Path, cwd: Path, home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``output``/postprocess.sh from ``cwd`` as a user would."""
    cwd.mkdir(parents=True, exist_ok=True)
    return run([str(output / "postprocess.sh"), *args], cwd=cwd, env=bare_env(home), check=check)


def build_expression(expression: str, rooted: bool = True) -> Path:
    """Build ``expression`` (``n`` is default.nix) with the sandbox on; return the output path.

    ``rooted``: kept by conftest's GC root for the session, else by nothing at all.
    """
    if rooted:
        result = nix_build_expression(expression)
    else:
        result = run(["nix-build", "--no-out-link", *NIX_OPTIONS, "-E", f"let n = import {REPO} {{}}; in {expression}"])
    return Path(result.stdout.strip().splitlines()[-1])


def busybox_expression(**arguments: str) -> str:
    """An mkACI call for busybox with extra Nix arguments (values are Nix source)."""
    more = " ".join(f"{name} = {value};" for name, value in arguments.items())
    return f'n.lib.mkACI {{ packages = [ n.pkgs.busybox ]; exec = [ "/bin/busybox" "sh" ]; {more} }}'


def temporaries(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if ".nix2aci-tmp-" in path.name)


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def remove_test_gc_roots(tmp_path_factory):
    """After the module, drop the indirect roots the tests registered (they point into pytest's temp)."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    for directory in NIX_GC_ROOTS.glob("**/"):
        for root in directory.iterdir():
            if root.is_symlink() and os.readlink(root).startswith(base):
                root.unlink()


@pytest.fixture(scope="module")
def key_home(tmp_path_factory) -> Path:
    """A dedicated key home made by scripts/prepare-signing-key (found through NIX2ACI_GNUPGHOME)."""
    home = tmp_path_factory.mktemp("k") / "gnupg"
    make_key(home)
    yield home
    stop_agent(home)


@pytest.fixture(scope="module")
def fingerprint(key_home) -> str:
    listing = gpg(key_home, "--with-colons", "--list-secret-keys").stdout
    (fingerprint,) = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    return fingerprint


@pytest.fixture(scope="module")
def public_key(key_home) -> Path:
    return key_home / "pubkeys.gpg"


@pytest.fixture(scope="module")
def busybox() -> Path:
    return nix_build("busybox")


@pytest.fixture(scope="module")
def signed(busybox, key_home, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """postprocess.sh run once with no OUTDIR from a scratch directory: (that directory, the run)."""
    cwd = tmp_path_factory.mktemp("user-cwd")
    return cwd, postprocess(busybox, cwd, key_home)


# --- key preparation -------------------------------------------------------------


def test_prepare_signing_key_makes_a_private_rsa_home_and_exports_the_public_key(short_dir, fresh_keyring):
    home = short_dir / "cfg" / "gnupg"
    result = run([PREPARE, "--no-protection", "--name", "Alice Builder", "--email", "alice@example.invalid"],
                 env={**os.environ, "NIX2ACI_GNUPGHOME": str(home)})  # fmt: skip
    try:
        assert (home.stat().st_mode & 0o777) == 0o700
        (sec,) = secret_keys(home)
        # algorithm 1 = RSA, 3072 bits, signing capability.
        assert (sec[3], sec[2]) == ("1", "3072")
        assert "s" in sec[11]
        fingerprint = re.search(r"signing key: ([0-9A-F]{40}) \(Alice Builder <alice@example.invalid>\)", result.stdout)
        assert fingerprint, result.stdout
        public = home / "pubkeys.gpg"
        assert public.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        assert f"rkt trust --prefix=NAME {public}" in result.stdout
        assert fingerprint.group(1).lower() in result.stdout  # the name rkt stores the key under
        consumer = fresh_keyring(public)
        assert fingerprint.group(1) in gpg(consumer, "--with-colons", "--fingerprint").stdout
    finally:
        stop_agent(home)


def test_prepare_signing_key_refuses_to_overwrite_unless_forced(short_dir):
    home = short_dir / "gnupg"
    first = make_key(home, "first")
    again = run([PREPARE, "--home", str(home), "--no-protection"], check=False)
    assert again.returncode == 1
    assert f"already holds a key ({first} (first <test@example.invalid>)); pass --force" in again.stderr
    assert "Traceback" not in again.stderr
    assert [sec[4] for sec in secret_keys(home)] == [first[-16:]]

    second = make_key(home, "second", "--force", "--bits", "4096")
    try:
        assert second != first
        (sec,) = secret_keys(home)
        assert (sec[3], sec[2], sec[4]) == ("1", "4096", second[-16:])
        # The old key was moved aside, not destroyed.
        (retired,) = short_dir.glob("gnupg.replaced-*")
        assert [sec[4] for sec in secret_keys(retired)] == [first[-16:]]
        stop_agent(retired)
    finally:
        stop_agent(home)


# --- postprocess.sh --------------------------------------------------------------


def test_postprocess_links_signs_and_a_fresh_keyring_with_only_the_public_key_verifies(
    signed, busybox, fingerprint, public_key, fresh_keyring
):
    cwd, result = signed
    image = only_aci(busybox)
    link = cwd / "ACIs" / image.name
    assert link.is_symlink() and os.readlink(link) == str(image)
    signature = Path(f"{link}.asc")

    consumer = fresh_keyring(public_key)
    verified = gpg(consumer, "--status-fd", "1", "--verify", str(signature), str(link))
    assert 'Good signature from "nix2aci test <test@example.invalid>"' in verified.stderr
    assert f"[GNUPG:] VALIDSIG {fingerprint} " in verified.stdout

    # The summary: file, image ID, key fingerprint, how to run it.
    image_id = Path(f"{image}.id").read_text().strip()
    assert result.stdout.splitlines() == [
        f"ACIs/{image.name} -> {image}",
        f"  image ID:  {image_id}",
        f"  signature: ACIs/{image.name}.asc (verified, SHA512)",
        f"  key:       {fingerprint} (nix2aci test <test@example.invalid>)",
        f"  run:       nix2aci run ACIs/{image.name}",
    ]


def test_the_signature_is_armored_detached_binary_mode_sha512(signed, busybox, fingerprint, public_key, fresh_keyring):
    cwd, _result = signed
    signature = cwd / "ACIs" / f"{only_aci(busybox).name}.asc"
    text = signature.read_text()
    assert text.startswith("-----BEGIN PGP SIGNATURE-----\n")
    assert text.rstrip().endswith("-----END PGP SIGNATURE-----")
    packets = gpg(fresh_keyring(public_key), "--list-packets", str(signature)).stdout
    # Detached: one signature packet and no literal data; binary mode: sigclass 0x00;
    # digest algo 10 = SHA-512; algo 1 = RSA; made by our key.
    assert packets.count(":signature packet:") == 1
    assert ":literal data packet:" not in packets
    assert ":signature packet: algo 1," in packets
    assert "sigclass 0x00" in packets
    assert "digest algo 10," in packets
    assert f"issuer fpr v4 {fingerprint}" in packets


def test_one_flipped_byte_in_a_copy_of_the_image_fails_verification(
    signed, busybox, fingerprint, public_key, fresh_keyring, tmp_path
):
    cwd, _result = signed
    image = only_aci(busybox)
    signature = cwd / "ACIs" / f"{image.name}.asc"
    copy, flipped = tmp_path / image.name, tmp_path / "flipped" / image.name
    flipped.parent.mkdir()
    data = bytearray(image.read_bytes())
    copy.write_bytes(data)
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(data)
    for target in (copy, flipped):
        shutil.copy(signature, f"{target}.asc")

    consumer = fresh_keyring(public_key)
    assert gpg(consumer, "--verify", str(signature), str(copy), check=False).returncode == 0
    bad = gpg(consumer, "--verify", str(signature), str(flipped), check=False)
    assert bad.returncode != 0 and "BAD signature" in bad.stderr

    good = nix2aci("verify", "--keyring", str(public_key), str(copy))
    signer = f"nix2aci test <test@example.invalid> ({fingerprint})"
    assert (good.returncode, good.stdout) == (0, f"{copy}: good signature by {signer}, SHA512\n")
    failed = nix2aci("verify", "--keyring", str(public_key), str(flipped), check=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"nix2aci: error: {flipped}: the signature {flipped}.asc is refused: ")
    assert (
        f"BAD signature: the data is not what {fingerprint[-16:]} (nix2aci test <test@example.invalid>) signed"
        in failed.stderr
    )
    assert len(failed.stderr.splitlines()) == 1 and "Traceback" not in failed.stderr


def test_nix2aci_sign_and_verify_with_only_a_public_key(
    busybox, key_home, fingerprint, public_key, tmp_path, short_dir
):
    image = tmp_path / "copy.aci"
    shutil.copy(only_aci(busybox), image)
    env = {"NIX2ACI_GNUPGHOME": str(key_home)}
    signed = nix2aci("sign", str(image), env=env)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout == f"{image}.asc: signed by nix2aci test <test@example.invalid> ({fingerprint}), SHA512\n"
    # Never into the store (root could write there and corrupt the store path).
    in_store = nix2aci("sign", str(only_aci(busybox)), env=env, check=False)
    assert in_store.returncode == 1 and "is in the Nix store, where nothing may be added" in in_store.stderr
    assert sorted(path.name for path in busybox.iterdir()) == sorted(
        [
            only_aci(busybox).name,
            f"{only_aci(busybox).name}.id",
            "postprocess.sh",
            only_aci(busybox).stem + ".spdx.json",
        ]
    )
    # Default keyring: the key home's exported pubkeys.gpg.
    default = nix2aci("verify", str(image), env=env)
    assert (default.returncode, fingerprint in default.stdout) == (0, True), default.stderr

    other_home = short_dir / "other"
    make_key(other_home, "someone else")
    try:
        stranger = nix2aci("verify", "--keyring", str(other_home / "pubkeys.gpg"), str(image), check=False)
        assert stranger.returncode == 1
        refused = f"{image}: the signature {image}.asc is refused: made by key {fingerprint[-16:]}, which is not in"
        assert f"{refused} the keyring" in stranger.stderr
        unknown = nix2aci("sign", str(image), env={**env, "NIX2ACI_SIGNING_KEY": "nobody-like-this"}, check=False)
        assert unknown.returncode == 1
        assert "NIX2ACI_SIGNING_KEY='nobody-like-this' matches no secret key" in unknown.stderr
    finally:
        stop_agent(other_home)


def test_a_second_run_is_idempotent_and_leaves_other_files_alone(
    busybox, key_home, public_key, fresh_keyring, tmp_path
):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "notes.txt").write_text("mine\n")
    (outdir / "other-1.0-linux-amd64.aci").write_bytes(b"not ours")
    (outdir / "other-1.0-linux-amd64.aci.asc").write_text("not ours either\n")
    foreign = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes()) for path in outdir.iterdir()}

    image = only_aci(busybox)
    link = outdir / image.name
    first = postprocess(busybox, tmp_path, key_home, "out")
    second = postprocess(busybox, tmp_path, key_home, "out")

    assert first.stdout.replace("out/", "") == second.stdout.replace("out/", "")
    assert sorted(path.name for path in outdir.iterdir()) == sorted([*foreign, image.name, f"{image.name}.asc"])
    assert os.readlink(link) == str(image)
    assert temporaries(outdir) == []
    assert {
        path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes())
        for path in outdir.iterdir()
        if path.name in foreign
    } == foreign
    gpg(fresh_keyring(public_key), "--verify", f"{link}.asc", str(link))
    roots = [root for root in (NIX_GC_ROOTS / "auto").iterdir() if os.readlink(root) == str(link)]
    assert len(roots) == 1


def test_the_links_are_gc_roots(tmp_path):
    require("nix-store")
    # A build of its own (sign = false, a unique label), so deleting it touches no other test's output.
    output = build_expression(busybox_expression(sign="false", labels=f'{{ nonce = "{uuid.uuid4()}"; }}'), rooted=False)
    link = tmp_path / "ACIs" / only_aci(output).name
    postprocess(output, tmp_path, tmp_path / "no-key-needed")
    assert os.readlink(link) == str(only_aci(output))

    assert f"{link} -> {output}\n" in run(["nix-store", "--gc", "--print-roots"]).stdout
    kept = run(["nix-store", "--delete", str(output)], check=False)
    assert kept.returncode != 0 and "since it is still alive" in kept.stderr
    assert output.exists()

    # Control: without the link the same GC deletes it, so the link was what kept it.
    link.unlink()
    assert str(link) not in run(["nix-store", "--gc", "--print-roots"]).stdout
    run(["nix-store", "--delete", str(output)])
    assert not output.exists()


KILL_BEFORE_RENAME = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
real_replace = os.replace
def replace(source, destination):
    # The signature is complete in its temporary file: die the hardest way, before the rename.
    if str(destination).endswith(".asc"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, destination)
os.replace = replace
from nix2aci.commands import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_run_killed_between_signing_and_rename_leaves_no_partial_signature(
    busybox, key_home, public_key, fresh_keyring, tmp_path
):
    # A real SIGKILL at the one point that matters, in the interpreter postprocess.sh uses.
    image = only_aci(busybox)
    outdir = tmp_path / "ACIs"
    link, signature = outdir / image.name, outdir / f"{image.name}.asc"
    kill = [
        IN_STORE_PYTHON,
        "-I",
        "-c",
        KILL_BEFORE_RENAME,
        str(REPO),
        "postprocess",
        "--build-output",
        str(busybox),
        str(outdir),
    ]
    consumer = fresh_keyring(public_key)
    scratch = tmp_path / "tmp"  # the killed run's throw-away verification keyring stays here
    scratch.mkdir()
    env = bare_env(key_home, TMPDIR=str(scratch))

    killed = run(kill, env=env, check=False)
    assert killed.returncode == -9
    assert os.readlink(link) == str(image)  # linked before signing: the link is complete
    assert not signature.exists()
    (leftover,) = temporaries(outdir)
    assert leftover.read_text().startswith("-----BEGIN PGP SIGNATURE-----")  # it did die after signing
    # ... and after verifying, which started no gpg-agent that could outlive the kill.
    (keyring,) = scratch.iterdir()
    assert keyring.name.startswith("nix2aci-verify-") and not (keyring / "S.gpg-agent").exists()

    postprocess(busybox, tmp_path, key_home)
    assert temporaries(outdir) == []
    gpg(consumer, "--verify", str(signature), str(link))

    # Killed again with a good signature in place: that one stays whole and valid.
    before = signature.read_bytes()
    assert run(kill, env=env, check=False).returncode == -9
    assert signature.read_bytes() == before
    gpg(consumer, "--verify", str(signature), str(link))
    postprocess(busybox, tmp_path, key_home)
    assert temporaries(outdir) == []
    gpg(consumer, "--verify", str(signature), str(link))


def test_without_a_key_it_fails_clearly_and_keeps_the_links(busybox, tmp_path):
    image = only_aci(busybox)
    missing = tmp_path / "no-such-home"
    empty = tmp_path / "empty-home"
    empty.mkdir(mode=0o700)
    for home, why in ((missing, f"{missing} does not exist"), (empty, f"{empty} holds no secret key")):
        cwd = tmp_path / f"cwd-{home.name}"
        result = postprocess(busybox, cwd, home, check=False)
        assert result.returncode == 1
        assert result.stderr.startswith(f"nix2aci: error: no signing key: {why}; create a signing key with "
                                        "scripts/prepare-signing-key")  # fmt: skip
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        link = cwd / "ACIs" / image.name
        assert os.readlink(link) == str(image) and link.read_bytes()[:2] == b"\x1f\x8b"
        assert not Path(f"{link}.asc").exists()
    assert not missing.exists()  # looking for a key never creates a home


def test_an_ed25519_key_is_refused_because_rkt_cannot_verify_it(busybox, tmp_path, short_dir):
    home = short_dir / "ed25519"
    home.mkdir(mode=0o700)
    try:
        gpg(home, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-generate-key", "ed <e@example.invalid>",
            "ed25519", "sign", "never")  # fmt: skip
        result = postprocess(busybox, tmp_path, home, check=False)
    finally:
        stop_agent(home)
    assert result.returncode == 1
    assert "is an Ed25519 (EdDSA) key, which rkt cannot verify; use an RSA key" in result.stderr


def test_sign_false_only_links(tmp_path):
    output = build_expression(busybox_expression(sign="false"))
    script = (output / "postprocess.sh").read_text()
    assert " postprocess --build-output " + str(output) + " --no-sign " in script
    result = postprocess(output, tmp_path, tmp_path / "no-key-anywhere")
    image = only_aci(output)
    assert os.readlink(tmp_path / "ACIs" / image.name) == str(image)
    assert sorted(path.name for path in (tmp_path / "ACIs").iterdir()) == [image.name]
    assert "  signature: none (built with sign = false)" in result.stdout.splitlines()


def test_postprocess_script_runs_the_command_line_the_image_was_built_with(busybox):
    script = (busybox / "postprocess.sh").read_text()
    assert script.startswith("#!/bin/sh\n")
    assert os.access(busybox / "postprocess.sh", os.X_OK)
    # It realises the .drv of nix-build -A nix2aci (built with the image), which is no reference of the output.
    command = nix_build("nix2aci")
    drv = re.search(r"nix-store --realise (/nix/store/[a-z0-9]{32}-nix2aci-[^ ]+\.drv) ", script).group(1)
    assert run(["nix-store", "--query", "--outputs", drv]).stdout.split() == [str(command)]
    assert f'postprocess --build-output {busybox} "$@"' in script
    assert run(["nix-store", "--query", "--references", str(busybox)]).stdout.split() == [str(busybox)]


SANDBOX_PROBE = """
derivation {{
  name = "try-to-read-the-signing-key";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  nonce = "{nonce}";
  # stdout/stderr are redirected per block: the builder must keep its log pipe open.
  args = [ "-c" ''
    for path in {paths}; do
      {{ /bin/ls -A "$path" && echo "list $path: ok" || echo "list $path: failed"; }} >> $out 2>&1
    done
    {{ /bin/cat {key_file} > /dev/null && echo "read key: ok" || echo "read key: failed"; }} >> $out 2>&1
  '' ];
}}
"""


def test_a_sandboxed_build_cannot_read_the_signing_key(key_home, tmp_path):
    require("nix-build")
    key_file = next((key_home / "private-keys-v1.d").iterdir())
    paths = [str(key_home), str(Path.home())]  # the test key, and where the default key home lives

    def probe(sandbox: str) -> str:
        expression = SANDBOX_PROBE.format(nonce=uuid.uuid4(), paths=" ".join(paths), key_file=key_file)
        # NIX_OPTIONS with only the sandbox setting changed.
        options = list(NIX_OPTIONS)
        options[options.index("sandbox") + 1] = sandbox
        result = run(["nix-build", "--no-out-link", *options, "-E", expression])
        return Path(result.stdout.strip().splitlines()[-1]).read_text()

    inside = probe("true")
    for path in paths:
        assert f"/bin/ls: cannot access '{path}': No such file or directory\nlist {path}: failed\n" in inside
    assert f"/bin/cat: {key_file}: No such file or directory\nread key: failed\n" in inside
    assert "ok" not in inside

    # Control: the same derivation without the sandbox does see the paths (it fails only
    # on permissions, as the build user), so it is the sandbox that hides them.
    outside = probe("false")
    assert f"cannot access '{key_home}': No such file or directory" not in outside
    assert f"/bin/cat: {key_file}: No such file or directory" not in outside
    assert f"'{key_home}': Permission denied\nlist {key_home}: failed\n" in outside


# --- Issue 13: one verification path that refuses what it must -------------------------

FAKED_PAST = "20200101T000000"  # keys made "then" with a one-day expiry are long expired now


@pytest.fixture(scope="module")
def odd_signatures(tmp_path_factory) -> dict[str, Path]:
    """A data file, its signatures of every kind verification must refuse, and a good one; and the public keyring.

    Keys: ``good``; ``expired`` (made in 2020, valid one day); ``old`` (made in 2020, never
    expires: its signature expires after a day); ``revoked`` (signs, then is revoked).
    """
    home = tmp_path_factory.mktemp("o") / "h"
    home.mkdir(mode=0o700)
    files = home.parent
    unprotected = ["--passphrase", "", "--pinentry-mode", "loopback"]
    then = ["--faked-system-time", FAKED_PAST]
    try:
        for uid, expiry, extra in (("good", "never", []), ("expired", "1d", then), ("old", "never", then),
                                   ("revoked", "never", [])):  # fmt: skip
            gpg(home, *unprotected, *extra, "--quick-generate-key", f"{uid} <{uid}@example.invalid>", "rsa3072",
                "sign", expiry)  # fmt: skip
        data = files / "image.aci"
        data.write_bytes(bytes(range(256)) * 1000 + b"\r\n text \n")

        def sign(name: str, uid: str, *options: str) -> None:
            gpg(home, "--local-user", f"{uid}@example.invalid", *options, "--output", str(files / f"{name}.asc"),
                str(data))  # fmt: skip

        sign("good", "good", "--armor", "--detach-sign")
        sign("text-mode", "good", "--textmode", "--armor", "--detach-sign")
        sign("expired-key", "expired", "--faked-system-time", "20200101T000100", "--armor", "--detach-sign")
        sign("expired-signature", "old", "--faked-system-time", "20200101T000100", "--default-sig-expire", "1d",
             "--armor", "--detach-sign")  # fmt: skip
        sign("revoked-key", "revoked", "--armor", "--detach-sign")
        sign("two-signatures", "good", "--local-user", "old@example.invalid", "--armor", "--detach-sign")
        # Not detached: the signed data itself, under a detached signature's armor header; compressed (gpg's
        # default), stored (a one-pass signature first), and a compression bomb: a sparse file of 256 MiB of
        # zeros in some 450 KiB, under the size limit, which gpg --verify would inflate before refusing it.
        sign("inline", "good", "--armor", "--sign")
        sign("stored-inline", "good", "--compress-algo", "none", "--armor", "--sign")
        zeros = files / "zeros"
        with zeros.open("wb") as file:
            file.truncate(256 << 20)
        gpg(home, "--local-user", "good@example.invalid", "--compress-algo", "zlib", "-z", "9", "--armor", "--output",
            str(files / "compressed-bomb.asc"), "--sign", str(zeros))  # fmt: skip
        zeros.unlink()
        for name in ("inline", "stored-inline", "compressed-bomb"):
            message = (files / f"{name}.asc").read_text()
            (files / f"{name}.asc").write_text(message.replace("PGP MESSAGE", "PGP SIGNATURE"))
        # Revoke with the certificate gpg made at generation (its first line is defused with a ':').
        fingerprint = next(line.split(":")[9] for line in gpg(home, "--with-colons", "--fingerprint", "revoked@")
                           .stdout.splitlines() if line.startswith("fpr:"))  # fmt: skip
        revocation = (home / "openpgp-revocs.d" / f"{fingerprint}.rev").read_text()
        (files / "revocation").write_text(revocation.replace(":-----BEGIN", "-----BEGIN"))
        gpg(home, "--import", str(files / "revocation"))
        gpg(home, "--armor", "--output", str(files / "pubkeys.gpg"), "--export")
    finally:
        stop_agent(home)
    return {path.stem: path for path in files.iterdir() if path.is_file()}


@pytest.mark.parametrize(
    ("signature", "refusal"),
    [
        ("expired-key", "made by an expired key, "),
        ("expired-signature", ") has expired"),
        ("revoked-key", "made by a revoked key, "),
        ("text-mode", "it is a text-mode (class 0x01) signature; appc signs the image's exact bytes: binary mode"),
        ("inline", "it is not a detached signature"),
        ("stored-inline", "it is not a detached signature: it holds a one-pass signature packet (tag 4)"),
        ("compressed-bomb", "it is not a detached signature: it holds a compressed data packet (tag 8)"),
        ("two-signatures", "it holds 2 signatures, not one"),
    ],
)
def test_verify_refuses_expired_revoked_text_mode_attached_and_double_signatures(odd_signatures, signature, refusal):
    data, keyring, asc = odd_signatures["image"], odd_signatures["pubkeys"], odd_signatures[signature]
    before = (data.read_bytes(), asc.read_bytes())
    good = nix2aci("verify", "--keyring", str(keyring), "--signature", str(odd_signatures["good"]), str(data))
    assert good.returncode == 0 and "good signature by good <good@example.invalid>" in good.stdout, good.stderr

    result = nix2aci("verify", "--keyring", str(keyring), "--signature", str(asc), str(data), check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"nix2aci: error: {data}: the signature {asc} is refused: ")
    assert refusal in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert (data.read_bytes(), asc.read_bytes()) == before


def test_the_compression_bomb_passes_the_size_limit_so_only_its_packets_refuse_it(odd_signatures):
    assert 100_000 < odd_signatures["compressed-bomb"].stat().st_size < openpgp.SIGNATURE_LIMIT


def test_verify_hashes_exactly_the_bytes_it_checked(odd_signatures):
    # The digest run uses to pin what it unpacks: the SHA-512 of every byte fed to gpg.
    data = odd_signatures["image"].read_bytes()
    with openpgp.public_keyring(odd_signatures["pubkeys"].read_bytes()) as home:
        signer, digest = openpgp.verify_stream(home, io.BytesIO(data), odd_signatures["good"].read_bytes())
        assert digest == hashlib.sha512(data).hexdigest()
        assert signer.name == "good <good@example.invalid>" and len(signer.fingerprint) == 40
        with pytest.raises(Nix2AciError, match="BAD signature"):
            openpgp.verify_stream(home, io.BytesIO(data[:-1]), odd_signatures["good"].read_bytes())


def test_a_new_signature_is_verified_before_it_replaces_the_old_one(busybox, short_dir, tmp_path):
    # A real key whose gpg.conf asks for text mode: its new signatures are refused by the check,
    # which must run while the old, good signature is still in place and leave it untouched.
    home = short_dir / "textmode"
    make_key(home, "text mode")
    try:
        image = only_aci(busybox)
        link, signature = tmp_path / "ACIs" / image.name, tmp_path / "ACIs" / f"{image.name}.asc"
        postprocess(busybox, tmp_path, home)
        good = signature.read_bytes()
        copy = tmp_path / "copy.aci"
        shutil.copy(image, copy)
        assert nix2aci("sign", str(copy), env={"NIX2ACI_GNUPGHOME": str(home)}).returncode == 0
        copy_signature = Path(f"{copy}.asc").read_bytes()

        (home / "gpg.conf").write_text("textmode\n")
        again = postprocess(busybox, tmp_path, home, check=False)
        resigned = nix2aci("sign", str(copy), env={"NIX2ACI_GNUPGHOME": str(home)}, check=False)
    finally:
        stop_agent(home)
    for result, path in ((again, link), (resigned, copy)):
        assert result.returncode == 1
        assert result.stderr.startswith(f"nix2aci: error: the new signature of {path} does not verify, so it was not")
        assert "text-mode (class 0x01)" in result.stderr and len(result.stderr.splitlines()) == 1
    assert signature.read_bytes() == good and Path(f"{copy}.asc").read_bytes() == copy_signature
    assert temporaries(tmp_path / "ACIs") == [] and temporaries(tmp_path) == []
    public = home / "pubkeys.gpg"
    assert nix2aci("verify", "--keyring", str(public), str(link)).returncode == 0


# --- Issue 13: postprocess.sh never replaces what the user has ----------------------------


def test_postprocess_refuses_a_users_image_and_signature_and_force_replaces_them(busybox, key_home, tmp_path):
    image = only_aci(busybox)
    outdir = tmp_path / "out"
    outdir.mkdir()
    mine, my_signature = outdir / image.name, outdir / f"{image.name}.asc"
    mine.write_bytes(b"my own image, not a link\n")
    my_signature.write_bytes(b"my own signature\n")

    refused = postprocess(busybox, tmp_path, key_home, "out", check=False)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"nix2aci: error: will not replace out/{image.name} (a regular file), not made by nix2aci: "
        "move it away, or rerun with --force\n"
    )
    assert sorted(path.name for path in outdir.iterdir()) == sorted([mine.name, my_signature.name])
    assert (mine.read_bytes(), my_signature.read_bytes()) == (b"my own image, not a link\n", b"my own signature\n")

    forced = postprocess(busybox, tmp_path, key_home, "--force", "out")
    assert os.readlink(mine) == str(image)
    assert f"  signature: out/{image.name}.asc (verified, SHA512)" in forced.stdout.splitlines()
    assert nix2aci("verify", "--keyring", str(key_home / "pubkeys.gpg"), str(mine)).returncode == 0
    # Its own link now: a later run replaces it without --force.
    assert postprocess(busybox, tmp_path, key_home, "out").returncode == 0


# --- Issue 13: build-thin never replaces what the user has, and names a non-package ------


def test_build_thin_refuses_a_users_files_and_force_replaces_them(tmp_path):
    outdir = tmp_path / "ACIs"
    outdir.mkdir()
    mine, my_signature = outdir / "greeter.aci", outdir / "greeter.aci.asc"
    mine.write_bytes(b"my greeter\n")
    my_signature.write_bytes(b"my signature\n")
    os.symlink("/home/alice/volumes", outdir / "greeter.mounts")

    refused = nix2aci("build-thin", "greeter", "hello", "hello", cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr == (
        "nix2aci: error: will not replace ACIs/greeter.aci (a regular file), ACIs/greeter.mounts (a link to "
        "/home/alice/volumes), not made by nix2aci: move it away, or rerun with --force\n"
    )
    assert sorted(path.name for path in outdir.iterdir()) == ["greeter.aci", "greeter.aci.asc", "greeter.mounts"]
    assert (mine.read_bytes(), my_signature.read_bytes()) == (b"my greeter\n", b"my signature\n")
    assert os.readlink(outdir / "greeter.mounts") == "/home/alice/volumes"

    forced = nix2aci("build-thin", "--force", "greeter", "hello", "hello", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert os.readlink(mine).startswith(".greeter-result/") and mine.read_bytes()[:2] == b"\x1f\x8b"
    assert my_signature.read_bytes() == b"my signature\n"  # only a new signature may replace it
    assert temporaries(outdir) == []
    # Its own links now: built again, they are replaced without --force.
    assert nix2aci("build-thin", "greeter", "hello", "hello", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ("system", "PKG 'system' is a string, not a package (a derivation) of the package set"),
        ("debianImport", "PKG 'debianImport' is a set, not a package (a derivation) of the package set"),
        ("lib", "PKG 'lib' is not in the package set (pkgs of "),
        ("pkgs.hello", "PKG 'pkgs.hello' is not an attribute name of the package set"),
    ],
)
def test_build_thin_with_a_package_that_is_not_a_derivation_says_so(tmp_path, package, message):
    result = nix2aci("build-thin", "x", "hello", "hello", package, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nix2aci: error: {message}")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was built or linked


@pytest.mark.parametrize("which", ["image", "signature"])
def test_verify_names_a_fifo_or_a_missing_file_at_once(odd_signatures, tmp_path, which):
    fifo, missing = tmp_path / "fifo", tmp_path / "missing"
    os.mkfifo(fifo)
    keyring, image, signature = odd_signatures["pubkeys"], odd_signatures["image"], odd_signatures["good"]
    for path, problem in ((fifo, "is a FIFO, not a regular file"), (missing, "does not exist")):
        arguments = (
            [str(path), "--signature", str(signature)] if which == "image" else [str(image), "--signature", str(path)]
        )
        result = nix2aci("verify", "--keyring", str(keyring), *arguments, timeout=60, check=False)
        assert result.returncode == 2  # a file argument that cannot be used: a usage error
        assert result.stderr == f"nix2aci: error: {which} {path} {problem}\n"

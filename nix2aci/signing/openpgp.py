"""Signing ACIs with a dedicated GnuPG key, and verifying them as a consumer would.

- The key lives in a GnuPG home of its own (:func:`default_home`), never in a
  build: only ``postprocess.sh`` and ``nix2aci sign`` (run by the user, outside
  Nix) read it.
- A signature is what appc and rkt want (spec/aci.md): ASCII-armored, detached,
  binary mode (sigclass 0x00) over the exact bytes of the ``.aci``, SHA-512, by
  a key rkt can check (RSA, DSA or ECDSA; not Ed25519). It is written to
  ``<file>.asc`` through a temporary file in the same directory, verified
  there, then renamed into place (:mod:`nix2aci.signing.atomic`): a killed run never
  leaves a partial signature, and a signature that does not verify never
  replaces the old one.
- Verification has one path, :func:`verify_stream`: gpg itself, on a throw-away
  home holding only public keys, fed the data on stdin while we hash it. It
  refuses a bad signature, an unknown, expired or revoked key, an expired
  signature, a text-mode signature and anything that is not one detached
  signature. ``nix2aci verify``, signing's own check and the trust store
  (:mod:`nix2aci.signing.trust`) all use it.

Keys and signing use python-gnupg, 0.4.9 (Debian bookworm, the in-store
interpreter) or 0.5 (PyPI): only the API both share is used.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .. import inputs
from ..errors import Nix2AciError
from . import packets
from .atomic import in_nix_store, write_atomically

try:
    import gnupg
except ImportError:  # the CLI reports it as one line when signing is asked for
    gnupg = None

# python-gnupg logs gpg's chatter; without a handler Python would print warnings
# of it on stderr, and our errors already say what went wrong.
logging.getLogger("gnupg").addHandler(logging.NullHandler())

PREPARE_SCRIPT = "scripts/prepare-signing-key"
PUBLIC_KEY_FILE = "pubkeys.gpg"
DIGEST = "SHA512"
# OpenPGP public-key algorithm ids (RFC 4880 9.1, RFC 6637, draft-bis): what
# rkt's golang.org/x/crypto/openpgp can verify, and EdDSA, which it cannot.
RKT_ALGORITHMS = {"1": "RSA", "3": "RSA", "17": "DSA", "19": "ECDSA"}
EDDSA = "22"
# OpenPGP hash algorithm ids (RFC 4880 9.4).
HASH_NAMES = {"2": "SHA1", "8": "SHA256", "9": "SHA384", "10": "SHA512", "11": "SHA224"}
# Key validity letters of gpg --with-colons that make a key unusable:
# expired, revoked, disabled, invalid.
UNUSABLE_VALIDITY = set("erdi")


@dataclass(frozen=True)
class Key:
    """A secret key that can sign: its primary fingerprint and first user id."""

    fingerprint: str
    uid: str

    def __str__(self) -> str:
        return f"{self.fingerprint} ({self.uid})" if self.uid else self.fingerprint


@dataclass(frozen=True)
class Signer:
    """Who made a good signature, and how (gpg's VALIDSIG line)."""

    name: str
    fingerprint: str
    digest: str
    signature_class: str


def _require_gnupg() -> None:
    """Fail with one line when python-gnupg is missing from this interpreter."""
    if gnupg is None:
        raise Nix2AciError(
            f"python-gnupg is not installed for {sys.executable}: install python3-gnupg "
            "(Debian) or python-gnupg (PyPI); ./scripts/setup does"
        )


def default_home() -> str:
    """The signing key's GnuPG home.

    ``$NIX2ACI_GNUPGHOME`` when set, else ``${XDG_CONFIG_HOME:-$HOME/.config}/nix2aci/gnupg``.
    """
    if os.environ.get("NIX2ACI_GNUPGHOME"):
        return os.path.abspath(os.environ["NIX2ACI_GNUPGHOME"])
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "nix2aci", "gnupg")


def no_key_error(home: str, why: str) -> Nix2AciError:
    """The error for a missing or unusable key: says how to make one."""
    return Nix2AciError(
        f"{why}; create a signing key with {PREPARE_SCRIPT} (from the nix2aci repository), "
        f"or set NIX2ACI_GNUPGHOME to a GnuPG home holding an RSA key "
        f"(build with mkACI {{ sign = false; }} to skip signing); key home: {home}"
    )


def open_home(home: str) -> gnupg.GPG:
    """A python-gnupg handle on an existing GnuPG home (never creates one)."""
    _require_gnupg()
    if not os.path.isdir(home):
        raise no_key_error(home, f"no signing key: {home} does not exist")
    _set_gpg_tty()
    return _gpg(home)


def _gpg(home: str, options: list[str] | None = None) -> gnupg.GPG:
    """python-gnupg on ``home`` (``options``: more gpg options); a missing or broken gpg is one error line."""
    try:
        return gnupg.GPG(gnupghome=home, options=options)
    except (OSError, ValueError, RuntimeError) as error:
        raise Nix2AciError(f"cannot run gpg (Debian: apt-get install gnupg): {error}") from None


def _set_gpg_tty() -> None:
    """Point gpg-agent's pinentry at our terminal, if we have one.

    python-gnupg talks to gpg through pipes, so gpg cannot find the terminal
    itself and a passphrase prompt would fail with "Inappropriate ioctl".
    """
    if "GPG_TTY" in os.environ:
        return
    for stream in (sys.stdin, sys.stderr, sys.stdout):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if stream is not None and stream.isatty():
                os.environ["GPG_TTY"] = os.ttyname(stream.fileno())
                return


def _gpg_message(stderr: str) -> str:
    """gpg's own error lines from a python-gnupg result's stderr, for one error line."""
    lines = list(dict.fromkeys(line[5:] for line in stderr.splitlines() if line.startswith("gpg: ")))
    message = "; ".join(lines[-2:]) or "gpg gave no reason"
    if re.search(r"Inappropriate ioctl|No pinentry|[Cc]ancel|[Bb]ad passphrase", message):
        message += " (gpg-agent asks for the key's passphrase and needs a terminal for that: run this from one)"
    return message


def _signing_algorithms(key: dict) -> list[str]:
    """The algorithm ids of a listed key's parts that can sign (primary and subkeys)."""
    algorithms = [key.get("algo", "")] if "s" in (key.get("cap") or "") else []
    for info in (key.get("subkey_info") or {}).values():
        if "s" in (info.get("cap") or "") and (info.get("trust") or "") not in UNUSABLE_VALIDITY:
            algorithms.append(info.get("algo", ""))
    return algorithms


def key_problem(key: dict) -> str | None:
    """Why a listed secret key (python-gnupg ``list_keys(True)`` entry) cannot sign ACIs, or None."""
    if (key.get("trust") or "") in UNUSABLE_VALIDITY:
        return "is expired, revoked or disabled"
    if "S" not in (key.get("cap") or ""):
        return "cannot sign"
    algorithms = _signing_algorithms(key)
    if any(algorithm == EDDSA for algorithm in algorithms):
        return "is an Ed25519 (EdDSA) key, which rkt cannot verify; use an RSA key"
    if not algorithms or any(algorithm not in RKT_ALGORITHMS for algorithm in algorithms):
        return f"uses public-key algorithm {','.join(algorithms) or '?'}, which rkt cannot verify; use an RSA key"
    return None


def _matches(key: dict, wanted: str) -> bool:
    """Whether ``wanted`` (a fingerprint, key id or part of a user id) names ``key``."""
    hexadecimal = wanted.replace(" ", "").upper().removeprefix("0X")
    if re.fullmatch(r"[0-9A-F]{8,40}", hexadecimal):
        fingerprints = [key.get("fingerprint") or ""] + [sub[2] or "" for sub in key.get("subkeys") or []]
        if any(fingerprint.upper().endswith(hexadecimal) for fingerprint in fingerprints if fingerprint):
            return True
    return any(wanted.lower() in uid.lower() for uid in key.get("uids") or [])


def choose_key(keys: list[dict], home: str, wanted: str | None) -> Key:
    """The one key to sign with among a home's secret keys.

    Input: python-gnupg ``list_keys(True)`` entries, the home (for messages),
    and ``wanted`` (``$NIX2ACI_SIGNING_KEY``: fingerprint, key id or user id), or None.
    Output: the key; a :class:`Nix2AciError` when there is none or the choice is ambiguous.
    """
    if wanted:
        keys = [key for key in keys if _matches(key, wanted)]
        if not keys:
            raise no_key_error(home, f"NIX2ACI_SIGNING_KEY={wanted!r} matches no secret key in {home}")
    if not keys:
        raise no_key_error(home, f"no signing key: {home} holds no secret key")
    usable = [key for key in keys if key_problem(key) is None]
    if not usable:
        key = keys[0]
        raise no_key_error(home, f"no usable signing key: {key['fingerprint']} {key_problem(key)}")
    if len(usable) > 1:
        listed = ", ".join(str(_key(key)) for key in usable)
        raise Nix2AciError(f"{home} holds several signing keys ({listed}): choose one with NIX2ACI_SIGNING_KEY")
    return _key(usable[0])


def _key(key: dict) -> Key:
    return Key(fingerprint=key["fingerprint"], uid=(key.get("uids") or [""])[0])


def find_key(home: str | None = None, wanted: str | None = None) -> tuple[gnupg.GPG, Key]:
    """Open the signing home (default :func:`default_home`) and choose its key.

    ``wanted`` defaults to ``$NIX2ACI_SIGNING_KEY``.
    """
    home = home or default_home()
    gpg = open_home(home)
    wanted = wanted if wanted is not None else os.environ.get("NIX2ACI_SIGNING_KEY") or None
    return gpg, choose_key(list(gpg.list_keys(True)), home, wanted)


# --- Signing and verifying -----------------------------------------------------


def signature_path(image: str) -> str:
    """Where an image's signature goes: ``<image>.asc``."""
    return image + ".asc"


def sign_file(gpg: gnupg.GPG, key: Key, path: str, check: Callable[[str], object] | None = None) -> str:
    """Sign ``path`` with ``key``; write ``<path>.asc`` atomically and return its path.

    The signature is armored, detached, binary mode (no --textmode), SHA-512.
    ``check(temporary signature)`` runs before it replaces ``<path>.asc``.
    Refuses a ``path`` whose signature would land inside the Nix store: store
    paths are immutable (root could write there, and corrupt one).
    """
    destination = signature_path(path)
    if in_nix_store(os.path.dirname(os.path.abspath(destination))):
        raise Nix2AciError(
            f"{path} is in the Nix store, where nothing may be added: run the build's postprocess.sh "
            "(it links the image out and signs the link), or sign a copy"
        )
    try:
        with inputs.open_input(path, "image") as file:
            result = gpg.sign_file(
                file,
                keyid=key.fingerprint,
                detach=True,
                binary=False,  # python-gnupg's name for --armor
                extra_args=["--digest-algo", DIGEST],
            )
    except OSError as error:
        raise Nix2AciError(f"cannot sign {path}: {error}") from None
    data = result.data or b""
    if not data.startswith(b"-----BEGIN PGP SIGNATURE-----"):
        raise Nix2AciError(f"signing {path} with {key.fingerprint} failed: {_gpg_message(result.stderr or '')}")
    try:
        write_atomically(destination, data, check=check)
    except OSError as error:
        raise Nix2AciError(f"cannot write the signature {destination}: {error.strerror or error}") from None
    return destination


# --- Verifying: one path, gpg on a stream ------------------------------------------

# gpg without an agent (public keys need none; one would outlive a killed run), without
# a terminal, without the web of trust: the throw-away keyring holds only keys we trust.
GPG_VERIFY = ["gpg", "--batch", "--no-tty", "--no-autostart", "--trust-model", "always"]
SIGNATURE_LIMIT = 1 << 20  # an armored detached signature is about a kilobyte
CHUNK = 1 << 20
# The status lines that end with the signer's user id: ``GOODSIG KEYID USER ID WITH SPACES``.
SIGNER_STATUS = {"GOODSIG", "BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG"}


class UnknownSigner(Nix2AciError):
    """A signature made by a key that is not in the keyring; ``key_id`` names it as gpg does."""

    def __init__(self, message: str, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


def read_signature(path: str) -> bytes:
    """The bytes of the detached, ASCII-armored signature file ``path``; one line when it is not one."""
    with inputs.open_input(path, "signature") as file:
        signature = file.read(SIGNATURE_LIMIT + 1)
    if len(signature) > SIGNATURE_LIMIT:
        raise Nix2AciError(f"{path} is larger than {SIGNATURE_LIMIT} bytes: not a detached signature")
    if not signature.startswith(b"-----BEGIN PGP SIGNATURE-----"):
        raise Nix2AciError(f"{path} is not an ASCII-armored OpenPGP signature")
    return signature


def _gpg_command(home: str, status_fd: int, arguments: list[str]) -> list[str]:
    """The gpg command line on the public-key ``home``, its status lines on ``status_fd``."""
    return [*GPG_VERIFY, "--homedir", home, "--status-fd", str(status_fd), *arguments]


def run_gpg(home: str, arguments: list[str], input: bytes = b"") -> subprocess.CompletedProcess:
    """Run ``gpg ARGUMENTS`` on ``home`` with ``input``: stdout holds its output, stderr its status lines too."""
    command = _gpg_command(home, 2, arguments)
    try:
        return subprocess.run(command, input=input, capture_output=True, check=False)
    except FileNotFoundError:
        raise Nix2AciError("gpg is not installed (Debian: apt-get install gnupg)") from None


@contextlib.contextmanager
def public_keyring(armored_keys: bytes, source: str = "the keyring") -> Iterator[str]:
    """A throw-away GnuPG home holding only the given public keys (a consumer's view); yields its path.

    ``source`` names where the keys came from in the error for input that holds no public key.
    """
    home = tempfile.mkdtemp(prefix="nix2aci-verify-")
    try:
        imported = run_gpg(home, ["--import"], armored_keys)
        if b"[GNUPG:] IMPORT_OK " not in imported.stderr:
            raise Nix2AciError(f"{source} holds no OpenPGP public key (export one with gpg --armor --export)")
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _feed(process: subprocess.Popen, data: BinaryIO) -> str:
    """Write all of ``data`` to gpg's stdin in chunks; the hex SHA-512 of what was read.

    Stops early when gpg stops reading (it failed; its status says why).
    """
    digest = hashlib.sha512()
    with contextlib.suppress(BrokenPipeError):
        for chunk in iter(lambda: data.read(CHUNK), b""):
            digest.update(chunk)
            process.stdin.write(chunk)
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    return digest.hexdigest()


def _status(output: bytes) -> list[tuple[str, list[str]]]:
    """gpg's ``[GNUPG:] KEYWORD ARGS`` lines as (keyword, arguments); the user id stays one argument."""
    lines = []
    for line in output.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, _, rest = line[9:].partition(" ")
            lines.append((keyword, rest.split(" ", 1) if keyword in SIGNER_STATUS else rest.split()))
    return lines


def _judge(status: list[tuple[str, list[str]]], stderr: str, returncode: int, attached: bool = False) -> Signer:
    """The signer of gpg's ``--verify`` status, or a one-line Nix2AciError saying why it is refused.

    ``attached``: the signature must hold the signed data itself (simple signing), not be detached (appc).
    """
    keywords = {keyword: arguments for keyword, arguments in status}
    signatures = sum(keyword == "NEWSIG" for keyword, _ in status)
    if not attached and ("not a detached signature" in stderr or "PLAINTEXT" in keywords):
        raise Nix2AciError("it is not a detached signature (it holds the signed data itself)")
    if attached and "PLAINTEXT" not in keywords:
        raise Nix2AciError("it is not a signed message holding its data (gpg --sign)")
    if signatures != 1:
        raise Nix2AciError(
            "it holds no OpenPGP signature" if not signatures else f"it holds {signatures} signatures, not one"
        )
    who = next((arguments for keyword, arguments in status if keyword in SIGNER_STATUS and len(arguments) == 2), None)
    signer = f"{who[0]} ({who[1]})" if who else "?"
    for keyword, problem in (
        ("REVKEYSIG", f"made by a revoked key, {signer}"),
        ("EXPKEYSIG", f"made by an expired key, {signer}"),
        ("EXPSIG", f"the signature by {signer} has expired"),
        ("BADSIG", f"BAD signature: the data is not what {signer} signed"),
    ):
        if keyword in keywords:
            raise Nix2AciError(problem)
    if "ERRSIG" in keywords:
        key_id, reason = keywords["ERRSIG"][0], keywords["ERRSIG"][5:6]
        if reason == ["9"]:
            raise UnknownSigner(f"made by key {key_id}, which is not in the keyring", key_id)
        raise Nix2AciError(f"gpg cannot check it (key {key_id}): {_gpg_message(stderr)}")
    validsig = keywords.get("VALIDSIG", [])
    if "GOODSIG" not in keywords or len(validsig) < 10 or returncode != 0:
        raise Nix2AciError(f"it does not verify: {_gpg_message(stderr)}")
    hash_algorithm, signature_class = validsig[7], validsig[8]
    if signature_class != "00":
        kind = "a text-mode (class 0x01)" if signature_class == "01" else f"a class 0x{signature_class}"
        raise Nix2AciError(f"it is {kind} signature; appc signs the image's exact bytes: binary mode, class 0x00")
    return Signer(
        name=keywords["GOODSIG"][1] if len(keywords["GOODSIG"]) > 1 else "",
        fingerprint=validsig[9],
        digest=HASH_NAMES.get(hash_algorithm, f"hash algorithm {hash_algorithm}"),
        signature_class=signature_class,
    )


def verify_stream(home: str, data: BinaryIO, signature: bytes) -> tuple[Signer, str]:
    """Verify the detached armored ``signature`` of the bytes read from ``data`` with the keys of ``home``.

    Input: a GnuPG home of public keys (:func:`public_keyring`), an open binary
    stream (read to its end, in chunks, and fed to ``gpg --verify SIG -``), the
    signature's bytes. Output: the signer (primary key fingerprint) and the hex
    SHA-512 of every byte read. Raises :class:`Nix2AciError` (its subclass
    :class:`UnknownSigner` for a key not in ``home``) unless exactly one good,
    binary-mode signature by an unexpired, unrevoked key covers all the bytes;
    the message says why, without the file names (callers add them). Packets other than signatures are
    refused before gpg runs (:mod:`.packets`): gpg would decompress a compressed message before refusing it.
    """
    packets.check_detached(signature)
    with tempfile.NamedTemporaryFile(dir=home, suffix=".asc") as signature_file, tempfile.TemporaryFile() as status:
        signature_file.write(signature)
        signature_file.flush()
        command = _gpg_command(home, 1, ["--verify", signature_file.name, "-"])
        # Status and messages go to files: a pipe nobody reads while we write could fill and block gpg.
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=status, stderr=errors)
            except FileNotFoundError:
                raise Nix2AciError("gpg is not installed (Debian: apt-get install gnupg)") from None
            try:
                digest = _feed(process, data)
            except BaseException:
                process.kill()
                raise
            finally:
                process.wait()
            status.seek(0)
            errors.seek(0)
            signer = _judge(_status(status.read()), errors.read().decode("utf-8", "replace"), process.returncode)
    return signer, digest


def verify_attached(home: str, signed: bytes) -> tuple[Signer, bytes]:
    """Verify ``signed``, one binary-mode signature holding its data (``gpg --sign``), with the keys of ``home``.

    Output: the signer and the data signed. Raises :class:`Nix2AciError` as :func:`verify_stream` does, and
    for data over SIGNATURE_LIMIT bytes, where gpg is stopped: a small message may compress terabytes.
    """
    with tempfile.NamedTemporaryFile(dir=home) as signed_file, tempfile.TemporaryFile() as errors:
        signed_file.write(signed)
        signed_file.flush()
        command = _gpg_command(home, 2, ["--output", "-", "--decrypt", signed_file.name])
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        except FileNotFoundError:
            raise Nix2AciError("gpg is not installed (Debian: apt-get install gnupg)") from None
        with process:  # closes its stdout and waits for it
            try:
                data = process.stdout.read(SIGNATURE_LIMIT + 1)
            except BaseException:
                process.kill()
                raise
            if len(data) > SIGNATURE_LIMIT:
                process.kill()
                raise Nix2AciError(f"its data is over {SIGNATURE_LIMIT} bytes: not the claim of a simple signature")
        errors.seek(0)
        stderr = errors.read()
    signer = _judge(_status(stderr), stderr.decode("utf-8", "replace"), process.returncode, attached=True)
    return signer, data


def verify_file(path: str, keyring: str, signature: str | None = None) -> Signer:
    """Verify ``path`` as a consumer would: with only the public keys in the file ``keyring``.

    ``signature`` defaults to ``<path>.asc``. One line naming the files when it is refused.
    """
    signature = signature or signature_path(path)
    try:
        with inputs.open_input(keyring, "keyring") as file:
            keys = file.read()
    except OSError as error:
        raise Nix2AciError(f"cannot read the public keyring: {error}") from None
    armored = read_signature(signature)
    with inputs.open_input(path, "image") as data, public_keyring(keys, f"the keyring {keyring}") as home:
        try:
            signer, _digest = verify_stream(home, data, armored)
        except Nix2AciError as error:
            raise Nix2AciError(f"{path}: the signature {signature} is refused: {error} (keyring {keyring})") from None
    return signer


def export_public_key(gpg: gnupg.GPG, key: Key) -> str:
    """The armored public key of ``key``."""
    armored = gpg.export_keys(key.fingerprint)
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise Nix2AciError(f"cannot export the public key {key.fingerprint}")
    return armored


def sign_and_verify(gpg: gnupg.GPG, key: Key, path: str) -> Signer:
    """Sign ``path`` and verify the new signature with only ``key``'s public key (:func:`verify_stream`).

    The check runs on the temporary file, before the rename: a signature that
    does not verify never replaces ``<path>.asc``.
    """
    signers: list[Signer] = []
    with public_keyring(export_public_key(gpg, key).encode()) as public:

        def check(temporary: str) -> None:
            try:
                with inputs.open_input(path, "image") as data:
                    signers.append(verify_stream(public, data, read_signature(temporary))[0])
            except Nix2AciError as error:
                raise Nix2AciError(
                    f"the new signature of {path} does not verify, so it was not saved: {error}"
                ) from None

        sign_file(gpg, key, path, check=check)
    return signers[0]


# --- Preparing the dedicated key -----------------------------------------------


def default_name() -> str:
    return f"nix2aci image signing ({getpass.getuser()}@{socket.gethostname()})"


def _make_home(home: str) -> None:
    """Create ``home`` (and parents) with mode 0700, as gpg insists."""
    os.makedirs(os.path.dirname(home), exist_ok=True)
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)


def _stop_agent(home: str) -> None:
    """Stop the gpg-agent of a home we are about to move, if one runs (its sockets live in that home)."""
    if os.path.exists(os.path.join(home, "S.gpg-agent")):
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True, check=False)


def _retire_home(home: str) -> str:
    """Move an existing key home aside (``--force``): nothing is deleted. Returns the new place."""
    _stop_agent(home)
    retired = f"{home}.replaced-{time.strftime('%Y%m%dT%H%M%S')}"
    os.rename(home, retired)
    return retired


def _generate(home: str, uid: str, bits: int, protect: bool) -> None:
    """Generate an RSA signing-only primary key with gpg itself.

    Not through python-gnupg: it runs gpg without a terminal, and the
    interactive passphrase prompt (gpg-agent's pinentry) needs one.
    """
    command = ["gpg", "--homedir", home, "--batch"]
    if not protect:
        command += ["--passphrase", "", "--pinentry-mode", "loopback"]
    command += ["--quick-generate-key", uid, f"rsa{bits}", "sign", "never"]
    _set_gpg_tty()
    try:
        result = subprocess.run(command, stdin=None if protect else subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise Nix2AciError("gpg is not installed (Debian: apt-get install gnupg)") from None
    if result.returncode != 0:
        hint = "" if not protect else "; --no-protection makes a key without a passphrase (CI, tests)"
        raise Nix2AciError(f"gpg could not generate the key: {_gpg_message(result.stderr)}{hint}")


def prepare_key(
    home: str, name: str, email: str | None, bits: int = 3072, protect: bool = True, force: bool = False
) -> tuple[Key, str, str | None]:
    """Create the dedicated signing key in ``home``.

    Output: the key, the path of the exported armored public key
    (``<home>/pubkeys.gpg``), and where an old home was moved (``force``) or None.
    Refuses when ``home`` already holds a secret key, unless ``force``.
    """
    _require_gnupg()
    retired = None
    if os.path.isdir(home):
        existing = list(open_home(home).list_keys(True))
        if existing and not force:
            listed = ", ".join(str(_key(key)) for key in existing)
            raise Nix2AciError(f"{home} already holds a key ({listed}); pass --force to replace it")
        if existing:
            retired = _retire_home(home)
    _make_home(home)
    uid = f"{name} <{email}>" if email else name
    _generate(home, uid, bits, protect)
    gpg = _gpg(home)
    created = [key for key in gpg.list_keys(True) if uid in (key.get("uids") or [])]
    if len(created) != 1:
        raise Nix2AciError(f"gpg reported success but {home} holds no key for {uid!r}")
    key = _key(created[0])
    public = os.path.join(home, PUBLIC_KEY_FILE)
    write_atomically(public, export_public_key(gpg, key).encode())
    return key, public, retired

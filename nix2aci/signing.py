"""Signing ACIs with a dedicated GnuPG key, and verifying them as a consumer would.

- The key lives in a GnuPG home of its own (:func:`default_home`), never in a
  build: only ``postprocess.sh`` and ``nix2aci sign`` (run by the user, outside
  Nix) read it.
- A signature is what appc and rkt want (spec/aci.md): ASCII-armored, detached,
  binary mode (sigclass 0x00) over the exact bytes of the ``.aci``, SHA-512, by
  a key rkt can check (RSA, DSA or ECDSA; not Ed25519). It is written to
  ``<file>.asc`` through a temporary file in the same directory and a rename,
  so a killed run never leaves a partial signature.
- Verification imports only public keys into a throw-away GnuPG home.

Works with python-gnupg 0.4.9 (Debian bookworm, the in-store interpreter) and
0.5 (PyPI): only the API both share is used.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import inputs
from .errors import Nix2AciError

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
TEMPORARY_MARK = ".nix2aci-tmp-"


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


# --- Atomic replacement --------------------------------------------------------


def temporary_path(path: str) -> str:
    """A fresh name next to ``path`` for writing it atomically.

    ``.<name>.nix2aci-tmp-<pid>-<random>``: hidden, in the same directory (so
    rename is atomic), and naming its writer so :func:`remove_stale_temporaries`
    can tell a dead run's leftover from a live run's file.
    """
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove the temporaries of ``path`` left by runs that died (killed between write and rename).

    Returns the removed paths. Temporaries of live processes are left alone.
    """
    directory, name = os.path.split(path)
    prefix = f".{name}{TEMPORARY_MARK}"
    removed = []
    for entry in os.listdir(directory or "."):
        match = re.fullmatch(r"(\d+)-[0-9a-f]+", entry[len(prefix) :]) if entry.startswith(prefix) else None
        if match and not _alive(int(match.group(1))):
            stale = os.path.join(directory, entry)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
                removed.append(stale)
    return removed


def write_atomically(path: str, data: bytes, mode: int = 0o644, check: Callable[[str], object] | None = None) -> None:
    """Write ``data`` to ``path``: a temporary file in the same directory, fsync, rename.

    Readers see the old file or the whole new one, never a part; if we die
    before the rename, ``path`` is untouched. ``check(temporary)``, when given,
    runs before the rename: if it raises, nothing is replaced.
    """
    temporary = temporary_path(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)  # regardless of the umask
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --- Signing and verifying -----------------------------------------------------


def signature_path(image: str) -> str:
    """Where an image's signature goes: ``<image>.asc``."""
    return image + ".asc"


def in_nix_store(path: str) -> bool:
    """Whether ``path`` (symlinks resolved) lies in the Nix store (``$NIX_STORE_DIR``, default /nix/store)."""
    store = os.path.realpath(os.environ.get("NIX_STORE_DIR") or "/nix/store")
    return os.path.realpath(path).startswith(store + os.sep)


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
        remove_stale_temporaries(destination)
        write_atomically(destination, data, check=check)
    except OSError as error:
        raise Nix2AciError(f"cannot write the signature {destination}: {error.strerror or error}") from None
    return destination


def _validsig(stderr: str) -> list[str]:
    """The fields of gpg's ``[GNUPG:] VALIDSIG`` status line (python-gnupg keeps only some)."""
    for line in stderr.splitlines():
        if line.startswith("[GNUPG:] VALIDSIG "):
            return line.split()[2:]
    return []


@contextlib.contextmanager
def public_keyring(armored_keys: bytes | str) -> Iterator[gnupg.GPG]:
    """A throw-away GnuPG home holding only the given public keys (a consumer's view).

    Public keys need no gpg-agent, and --no-autostart keeps gpg from starting
    one: it would outlive a killed run, and its socket paths have a length limit.
    """
    _require_gnupg()
    home = tempfile.mkdtemp(prefix="nix2aci-verify-")
    try:
        gpg = _gpg(home, ["--no-autostart"])
        imported = gpg.import_keys(armored_keys)
        if not imported.fingerprints:
            raise Nix2AciError("the keyring holds no OpenPGP public key")
        yield gpg
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _stop_agent(home: str) -> None:
    """Stop the gpg-agent of a home we are about to move, if one runs (its sockets live in that home)."""
    if os.path.exists(os.path.join(home, "S.gpg-agent")):
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True, check=False)


def verify_with(gpg: gnupg.GPG, path: str, signature: str | None = None) -> Signer:
    """Check ``signature`` (default ``<path>.asc``) of ``path`` with the keys of ``gpg``.

    Output: the signer. Raises :class:`Nix2AciError` unless the signature is
    good, detached, binary mode and made by a key in the keyring.
    """
    signature = signature or signature_path(path)
    with inputs.open_input(path, "image"), inputs.open_input(signature, "signature") as stream:
        if not stream.read(64).startswith(b"-----BEGIN PGP SIGNATURE-----"):
            raise Nix2AciError(f"{signature} is not an ASCII-armored OpenPGP signature")
        stream.seek(0)
        result = gpg.verify_file(stream, path)
    fields = _validsig(result.stderr or "")
    if not result.valid or len(fields) < 9:
        reason = result.status or _gpg_message(result.stderr or "")
        raise Nix2AciError(f"{path}: the signature {signature} does not verify: {reason}")
    digest, signature_class = HASH_NAMES.get(fields[7], f"hash algorithm {fields[7]}"), fields[8]
    if signature_class != "00":
        raise Nix2AciError(f"{signature} is a class 0x{signature_class} signature; appc needs binary mode (0x00)")
    return Signer(
        name=result.username or "",
        fingerprint=result.pubkey_fingerprint or result.fingerprint,
        digest=digest,
        signature_class=signature_class,
    )


def verify_file(path: str, keyring: str, signature: str | None = None) -> Signer:
    """Verify ``path`` as a consumer would: with only the public keys in the file ``keyring``."""
    try:
        with inputs.open_input(keyring, "keyring") as file:
            keys = file.read()
    except OSError as error:
        raise Nix2AciError(f"cannot read the public keyring: {error}") from None
    try:
        with public_keyring(keys) as gpg:
            return verify_with(gpg, path, signature)
    except inputs.InputError:
        raise
    except Nix2AciError as error:
        raise Nix2AciError(f"{error} (keyring {keyring})") from None


def export_public_key(gpg: gnupg.GPG, key: Key) -> str:
    """The armored public key of ``key``."""
    armored = gpg.export_keys(key.fingerprint)
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise Nix2AciError(f"cannot export the public key {key.fingerprint}")
    return armored


def sign_and_verify(gpg: gnupg.GPG, key: Key, path: str) -> Signer:
    """Sign ``path`` and verify the new signature with only ``key``'s public key.

    The check runs on the temporary file, before the rename: a signature that
    does not verify never replaces ``<path>.asc``.
    """
    signers: list[Signer] = []
    with public_keyring(export_public_key(gpg, key)) as public:

        def check(temporary: str) -> None:
            try:
                signers.append(verify_with(public, path, temporary))
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

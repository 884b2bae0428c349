"""What this host can run: its own appc os/arch, and the architectures binfmt_misc hands to an emulator.

Input: an image's appc ``os`` and ``arch`` labels. Output: None when the host can
run the image's programs, else one line naming the image's platform and the
host's (:func:`refusal`). The kernel runs its own architecture (an amd64 kernel
also i386, as Debian's kernels do), and any other whose ELF programs an enabled
binfmt_misc entry matches (qemu-user-static's, registered by binfmt-support or
systemd-binfmt): read from ``/proc/sys/fs/binfmt_misc``, as the kernel matches them.
"""

from __future__ import annotations

import os

# uname's machine names (Linux) -> appc arch names (appc's types.ValidOSArch).
APPC_ARCH = {
    "x86_64": "amd64",
    "i686": "i386",
    "i386": "i386",
    "aarch64": "aarch64",
    "aarch64_be": "aarch64_be",
    "armv6l": "armv6l",
    "armv7l": "armv7l",
    "ppc64": "ppc64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
# Arches a kernel of the key's arch runs besides its own.
COMPATIBLE = {"amd64": ("i386",)}
# appc linux arch -> its ELF programs' (EI_CLASS, EI_DATA, e_machine): 1/2 = 32/64-bit, 1/2 = little/big endian.
ELF = {
    "amd64": (2, 1, 62),
    "i386": (1, 1, 3),
    "aarch64": (2, 1, 183),
    "aarch64_be": (2, 2, 183),
    "armv6l": (1, 1, 40),
    "armv7l": (1, 1, 40),
    "armv7b": (1, 2, 40),
    "ppc64": (2, 2, 21),
    "ppc64le": (2, 1, 21),
    "s390x": (2, 2, 22),
}
BINFMT_MISC = "/proc/sys/fs/binfmt_misc"


def host() -> tuple[str, str]:
    """This host's appc (os, arch); an arch appc has no name for is given as uname says it."""
    uname = os.uname()
    return uname.sysname.lower(), APPC_ARCH.get(uname.machine, uname.machine)


def elf_header(arch: str) -> bytes:
    """The first 20 bytes of an ELF executable of the appc linux ``arch`` (of :data:`ELF`): what binfmt_misc matches."""
    elf_class, data, machine = ELF[arch]
    order = "little" if data == 1 else "big"
    ident = b"\x7fELF" + bytes([elf_class, data, 1]) + bytes(9)
    return ident + (2).to_bytes(2, order) + machine.to_bytes(2, order)


def _entry_matches(text: str, header: bytes) -> bool:
    """Whether the binfmt_misc entry ``text`` (its file's content) is enabled and matches the file start ``header``."""
    lines = text.splitlines()
    fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    if not lines or lines[0] != "enabled" or "magic" not in fields:
        return False
    offset = int(fields.get("offset", "0"))
    magic = bytes.fromhex(fields["magic"])
    mask = bytes.fromhex(fields["mask"]) if "mask" in fields else b"\xff" * len(magic)
    found = header[offset : offset + len(magic)]
    return len(found) == len(magic) and all(a & m == b & m for a, b, m in zip(found, magic, mask, strict=True))


def emulated(arch: str, binfmt_misc: str = BINFMT_MISC) -> str | None:
    """The name of an enabled binfmt_misc entry that runs ELF programs of the appc linux ``arch``, or None."""
    if arch not in ELF:
        return None
    try:
        with open(os.path.join(binfmt_misc, "status"), encoding="ascii") as file:
            if file.read().strip() != "enabled":
                return None
        names = sorted(set(os.listdir(binfmt_misc)) - {"status", "register"})
    except OSError:  # not mounted, or not Linux
        return None
    header = elf_header(arch)
    for name in names:
        try:
            with open(os.path.join(binfmt_misc, name), encoding="ascii") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError):
            continue
        try:
            if _entry_matches(text, header):
                return name
        except ValueError:  # an entry this reading does not understand is not counted
            continue
    return None


def refusal(image: str, os_label: str | None, arch_label: str | None) -> str | None:
    """Why this host cannot run ``image``, whose labels say ``os_label``/``arch_label`` (None: not said); None if
    it can. An image that names no os runs anywhere, one that names no arch on any arch of its os."""
    host_os, host_arch = host()
    if os_label is None:
        return None
    wanted = os_label if arch_label is None else f"{os_label}/{arch_label}"
    if os_label != host_os:
        return f"{image} is for {wanted}, and this host runs {host_os}/{host_arch}"
    if arch_label is None or arch_label == host_arch or arch_label in COMPATIBLE.get(host_arch, ()):
        return None
    if emulated(arch_label) is not None:
        return None
    return (
        f"{image} is for {wanted}, and this host runs {host_os}/{host_arch} with no binfmt_misc handler for"
        f" {arch_label} programs: register an emulator (Debian's qemu-user-static with binfmt-support) to run it"
    )

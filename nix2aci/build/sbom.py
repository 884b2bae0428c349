"""The image's software bill of materials: an SPDX 2.3 JSON document of its closure, made in the sandbox.

Input: the closure graph the build already has (:class:`~nix2aci.build.closure.Closure`,
from exportReferencesGraph), the image's roots, what Nix knew at evaluation about
some store paths (``provenance``: Debian packages, licenses, homepage; see
:mod:`nix2aci.build.spec.sbom`), the document's name and the image's creation time.
Output: the document's bytes (:func:`sbom_bytes`) or a file (:func:`write`).

SPDX rather than CycloneDX: SPDX relationships are a graph between packages
(``A DEPENDS_ON B``), which is exactly Nix's references graph, where CycloneDX 1.5
nests dependencies under components; SPDX has purl external references for the
Debian imports, and the SPDX project's own ``spdx-tools`` validates the documents.

One package per store path: its name and version (split as Nix's parseDrvName does),
the store path (an external reference ``nix-store-path``), the sha256 of its NAR
serialisation (what ``nix-store --query --hash`` prints, in hex), ``DEPENDS_ON``
each store path it references (but itself), and ``DESCRIBES`` from the document to
the roots. Everything depends on the inputs alone: the creation time is the image's
and the namespace a hash of the rest of the document.

Writing store paths into an output would make them its references (Nix scans the
output for the 32-character hash of every input path): a fat ACI, which references
nothing, would keep its whole closure alive. :func:`reference_free_json` writes JSON
in which no 32 characters of Nix's base-32 alphabet ever follow each other, every
32nd one being written as a ``\\u00XX`` escape: a JSON reader gets the exact store
paths back, Nix's scan finds none.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import stat
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .. import __version__
from ..errors import Nix2AciError
from .closure import Closure
from .spec.sbom import Provenance

MEDIA_TYPE = "application/spdx+json"
# The suffix of an SBOM's file name, beside the image.
SUFFIX = ".spdx.json"
# The characters of Nix's base-32 store path hashes.
NIX32 = frozenset("0123456789abcdfghijklmnpqrsvwxyz")
HASH_LENGTH = 32
# How much of a file the NAR hash reads at a time.
_CHUNK = 1 << 20


def _nar_string(data: bytes) -> bytes:
    """A NAR string: its length (64-bit little-endian), the bytes, zeros up to a multiple of 8."""
    return len(data).to_bytes(8, "little") + data + b"\0" * (-len(data) % 8)


def _leaf_pieces(path: bytes, info: os.stat_result) -> Iterator[bytes]:
    """The NAR type and contents of the symlink or regular file ``path`` (``lstat``: ``info``); files in chunks."""
    if stat.S_ISLNK(info.st_mode):
        yield from map(_nar_string, (b"type", b"symlink", b"target", os.readlink(path)))
    elif stat.S_ISREG(info.st_mode):
        yield from map(_nar_string, (b"type", b"regular"))
        if info.st_mode & stat.S_IXUSR:
            yield from map(_nar_string, (b"executable", b""))
        yield _nar_string(b"contents") + info.st_size.to_bytes(8, "little")
        with open(path, "rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk
        yield b"\0" * (-info.st_size % 8)
    else:
        raise Nix2AciError(f"{os.fsdecode(path)} is neither a file, a directory nor a symlink: it has no NAR form")


def _nar_pieces(path: bytes) -> Iterator[bytes]:
    """The NAR serialisation of ``path`` (not followed if a link), in pieces.

    The directories being written are a stack, not a recursion: a store path may nest deeper than Python recurses.
    """
    directories: list[tuple[bytes, Iterator[bytes]]] = []  # each one's path and entries left, innermost last
    while True:
        info = os.lstat(path)
        yield _nar_string(b"(")
        if stat.S_ISDIR(info.st_mode):
            yield from map(_nar_string, (b"type", b"directory"))
            # Nix sorts a directory's entries by their bytes.
            directories.append((path, iter(sorted(os.listdir(path)))))
        else:
            yield from _leaf_pieces(path, info)
            yield _nar_string(b")") * (2 if directories else 1)  # the node, and the entry holding it
        while directories:
            directory, names = directories[-1]
            name = next(names, None)
            if name is not None:
                yield from map(_nar_string, (b"entry", b"(", b"name", name, b"node"))
                path = os.path.join(directory, name)
                break
            directories.pop()
            yield _nar_string(b")") * (2 if directories else 1)
        else:
            return


def nar_sha256(path: str) -> str:
    """The hex sha256 of the NAR serialisation of the store path ``path`` (``nix-store -q --hash``'s, in hex)."""
    digest = hashlib.sha256(_nar_string(b"nix-archive-1"))
    for piece in _nar_pieces(os.fsencode(path)):
        digest.update(piece)
    return digest.hexdigest()


def parse_name(store_name: str) -> tuple[str, str]:
    """(name, version) of a store path's name (hash removed), as Nix's ``builtins.parseDrvName`` splits it:
    the version starts after the first ``-`` not followed by a letter (``glibc-host-2.36``: glibc-host, 2.36)."""
    match = re.search(r"-(?![A-Za-z])", store_name)
    return (store_name, "") if match is None else (store_name[: match.start()], store_name[match.end() :])


def _hash_part(path: str) -> str:
    """The hash of a store path (its name's first 32 characters)."""
    return os.path.basename(path)[:HASH_LENGTH]


def package_id(path: str) -> str:
    """The SPDX identifier of a store path's package: ``SPDXRef-StorePath-HASH``."""
    return f"SPDXRef-StorePath-{_hash_part(path)}"


def debian_purl(package: str, version: str, arch: str) -> str:
    """The package URL of a Debian package: ``pkg:deb/debian/NAME@VERSION?arch=ARCH``, the version percent-encoded."""
    quote = lambda text: urllib.parse.quote(text, safe=".-_~")  # noqa: E731
    return f"pkg:deb/debian/{quote(package)}@{quote(version)}?arch={quote(arch)}"


def _licenses(provenance: Provenance | None) -> dict[str, str]:
    """``licenseDeclared`` (an expression of the SPDX ids Nix gave, or NOASSERTION) and, for licenses without
    an SPDX id, ``licenseComments`` naming them."""
    known = provenance.licenses if provenance else ()
    ids = [license.spdx_id for license in known if license.spdx_id]
    others = [license.name for license in known if not license.spdx_id]
    fields = {"licenseDeclared": " AND ".join(ids) if ids else "NOASSERTION"}
    if others:
        fields["licenseComments"] = "licenses without an SPDX identifier: " + "; ".join(others)
    return fields


def package(path: str, provenance: Provenance | None) -> dict[str, Any]:
    """The SPDX package of one store path, with what ``provenance`` knows of it (None: nothing)."""
    name, version = parse_name(os.path.basename(path)[HASH_LENGTH + 1 :])
    references = [{"referenceCategory": "OTHER", "referenceType": "nix-store-path", "referenceLocator": path}]
    references += [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": debian_purl(debian.package, debian.version, debian.arch),
        }
        for debian in (provenance.debian if provenance else ())
    ]
    document: dict[str, Any] = {
        "SPDXID": package_id(path),
        "name": name,
        **({"versionInfo": version} if version else {}),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": nar_sha256(path)}],
        "licenseConcluded": "NOASSERTION",
        **_licenses(provenance),
        "copyrightText": "NOASSERTION",
        "externalRefs": references,
        "comment": "a Nix store path; the checksum is the sha256 of its NAR serialisation (nix-store --query --hash)",
    }
    if provenance and provenance.homepage:
        document["homepage"] = provenance.homepage
    return document


def spdx_time(created: str) -> str:
    """An RFC 3339 time as SPDX writes it: ``YYYY-MM-DDThh:mm:ssZ``, in UTC, seconds."""
    try:
        moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Nix2AciError(f"created must be an RFC 3339 time, got {created!r}") from None
    if moment.tzinfo is None:
        raise Nix2AciError(f"created must be an RFC 3339 time with its offset (Z for UTC), got {created!r}")
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def document(
    closure: Closure, roots: Iterable[str], provenance: Mapping[str, Provenance], name: str, created: str
) -> dict[str, Any]:
    """The SPDX document of the closure of ``roots``, called ``name``, created at ``created`` (RFC 3339).

    Its namespace is derived from the sha256 of the document without it, so equal
    inputs give equal documents, and different closures different namespaces.
    """
    roots = sorted(set(roots))
    paths = closure.paths_needed_by(roots)
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": package_id(root)}
        for root in roots
    ]
    relationships += [
        {"spdxElementId": package_id(path), "relationshipType": "DEPENDS_ON", "relatedSpdxElement": package_id(other)}
        for path in paths
        for other in closure.references[path]
        if other != path
    ]
    result = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "",
        "creationInfo": {"created": spdx_time(created), "creators": [f"Tool: nix2aci-{__version__}"]},
        "packages": [package(path, provenance.get(path)) for path in paths],
        "relationships": relationships,
    }
    content = hashlib.sha256(reference_free_json(result)).hexdigest()
    result["documentNamespace"] = f"https://spdx.org/spdxdocs/nix2aci-{content}"
    return result


def _string(text: str) -> str:
    """``text`` as a JSON string in which no 32 characters of Nix's base-32 alphabet follow each other."""
    out, run = ['"'], 0
    for character in text:
        if character in NIX32 and run == HASH_LENGTH - 1:
            out.append(f"\\u{ord(character):04x}")
            run = 4  # the escape's four hex digits
        elif character in NIX32:
            out.append(character)
            run += 1
        elif character in '"\\':
            out.append("\\" + character)
            run = 0
        elif ord(character) < 0x20:
            out.append(f"\\u{ord(character):04x}")
            run = 4
        else:
            out.append(character)
            run = 0
    return "".join(out) + '"'


def _json(value: Any, indent: str) -> Iterator[str]:
    """The pieces of ``value`` as indented JSON with sorted keys, strings written by :func:`_string`."""
    inner = indent + "  "
    if isinstance(value, str):
        yield _string(value)
    elif isinstance(value, bool) or value is None:
        yield {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, dict) and value:
        yield "{"
        for number, key in enumerate(sorted(value)):
            yield f"{',' if number else ''}\n{inner}{_string(key)}: "
            yield from _json(value[key], inner)
        yield f"\n{indent}}}"
    elif isinstance(value, list) and value:
        yield "["
        for number, item in enumerate(value):
            yield f"{',' if number else ''}\n{inner}"
            yield from _json(item, inner)
        yield f"\n{indent}]"
    else:
        yield "{}" if isinstance(value, dict) else "[]"


def reference_free_json(value: Any) -> bytes:
    """``value`` as UTF-8 JSON in which Nix finds no store path hash (see the module's docstring)."""
    return ("".join(_json(value, "")) + "\n").encode()


def sbom_bytes(
    closure: Closure, roots: Iterable[str], provenance: Mapping[str, Provenance], name: str, created: str
) -> bytes:
    """The SBOM of the closure of ``roots`` as a file's bytes (see :func:`document`)."""
    return reference_free_json(document(closure, roots, provenance, name, created))


def sha256_digest(content: bytes) -> str:
    """``sha256:HEX`` of ``content``: how annotations and descriptors name an SBOM."""
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def write(directory: str, file_name: str, content: bytes) -> None:
    """Write the SBOM ``content`` as ``directory/file_name``, a new file."""
    with open(os.path.join(directory, file_name), "xb") as file:
        file.write(content)

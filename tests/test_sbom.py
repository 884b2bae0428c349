"""The SBOM every image gets (nix2aci/build/sbom.py), end to end with real builds and the SPDX project's tool.

Expected values come from the store at test time: ``nix-store -qR`` of the image's
roots, ``nix-store -q --hash`` and ``--references`` of each path, and dpkg for the
Debian imports. ``spdx-tools`` (a test dependency) validates every document.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import nix2aci, nix_build, nix_eval_json, run

from nix2aci.build import sbom

pytestmark = pytest.mark.slow

NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"
# Nix's reference scanner looks for 32 characters of its base-32 alphabet.
HASH_RUN = re.compile(rb"[0-9a-df-np-sv-z]{32}")
# Each format's image in default.nix, and the attribute whose spec names the SBOM's roots.
IMAGES = {
    "bbpython": "bbpython",
    "helloThin": "helloThin",
    "busyboxImage": "busyboxImage.sbom",
    "busyboxArchive": "busyboxArchive.sbom",
    "helloContainer": "helloContainer",
}


def nix32_hex(text: str) -> str:
    """Nix's base-32 as hex: character i from the end holds bits 5i..5i+4 of the little-endian digest."""
    value = 0
    for index, character in enumerate(reversed(text)):
        value |= NIX32.index(character) << (5 * index)
    return value.to_bytes(33, "little")[:32].hex()


def store_hash_hex(path: str) -> str:
    """``nix-store -q --hash`` of ``path`` (``sha256:NIX32``) as hex."""
    algorithm, _, encoded = run(["nix-store", "-q", "--hash", path]).stdout.strip().partition(":")
    assert algorithm == "sha256"
    return nix32_hex(encoded)


def printed_sbom(output: Path) -> tuple[bytes, dict]:
    """``nix2aci sbom`` of a built image (the .aci of an ACI output), as bytes and as a document."""
    target = next(output.glob("*.aci"), output)
    printed = nix2aci("sbom", target).stdout.encode()
    return printed, json.loads(printed)


def store_paths(document: dict) -> dict[str, dict]:
    """{store path: package} of an SBOM."""
    found = {}
    for package in document["packages"]:
        (path,) = (
            ref["referenceLocator"] for ref in package["externalRefs"] if ref["referenceType"] == "nix-store-path"
        )
        found[path] = package
    return found


@pytest.fixture(scope="module", params=sorted(IMAGES))
def built(request) -> tuple[str, Path, bytes, dict]:
    """(attribute, output, the SBOM's bytes, its document) of each format's image."""
    output = nix_build(request.param)
    printed, document = printed_sbom(output)
    return request.param, output, printed, document


def test_the_sbom_is_valid_spdx_by_the_spdx_tool(built, tmp_path):
    _, _, printed, _ = built
    tool = shutil.which("pyspdxtools", path=os.path.dirname(sys.executable))
    if tool is None:
        pytest.fail("pyspdxtools (spdx-tools, the test extras) is missing: run scripts/setup")
    (tmp_path / "sbom.spdx.json").write_bytes(printed)
    checked = subprocess.run([tool, "-i", str(tmp_path / "sbom.spdx.json")], capture_output=True, text=True)
    assert checked.returncode == 0 and "error" not in (checked.stdout + checked.stderr).lower(), checked
    # The tool does refuse a broken document (a package without its SPDXID).
    broken = json.loads(printed)
    del broken["packages"][0]["SPDXID"]
    (tmp_path / "broken.spdx.json").write_text(json.dumps(broken))
    refused = subprocess.run([tool, "-i", str(tmp_path / "broken.spdx.json")], capture_output=True, text=True)
    assert refused.returncode != 0, refused


def test_the_sbom_lists_exactly_the_closure_of_the_roots(built):
    attribute, _, _, document = built
    roots = nix_eval_json(f"map builtins.unsafeDiscardStringContext n.{IMAGES[attribute]}.nix2aci.roots")
    closure = set(run(["nix-store", "-qR", *roots]).stdout.split())
    assert set(store_paths(document)) == closure
    described = {
        rel["relatedSpdxElement"] for rel in document["relationships"] if rel["relationshipType"] == "DESCRIBES"
    }
    assert described == {sbom.package_id(root) for root in roots}


def test_checksums_are_nar_hashes_and_relationships_are_references(built):
    _, _, _, document = built
    paths = store_paths(document)
    ids = {sbom.package_id(path): path for path in paths}
    depends: dict[str, set[str]] = {path: set() for path in paths}
    for relationship in document["relationships"]:
        if relationship["relationshipType"] == "DEPENDS_ON":
            depends[ids[relationship["spdxElementId"]]].add(ids[relationship["relatedSpdxElement"]])
    for path, package in paths.items():
        assert package["checksums"] == [{"algorithm": "SHA256", "checksumValue": store_hash_hex(path)}], path
        references = set(run(["nix-store", "-q", "--references", path]).stdout.split()) - {path}
        assert depends[path] == references, path


def test_the_sbom_adds_no_reference(built):
    attribute, output, printed, _ = built
    assert not HASH_RUN.search(printed)
    references = set(run(["nix-store", "-q", "--references", str(output)]).stdout.split()) - {str(output)}
    if attribute in ("bbpython", "busyboxArchive"):
        # A fat ACI and a docker-archive reference nothing; an OCI layout its layers' builds alone.
        assert references == set()
    if attribute == "busyboxImage":
        assert references == set(nix_eval_json("map (layer: layer.outPath) n.busyboxImage.layers"))
    if attribute.startswith("busybox"):
        step = nix_build(IMAGES[attribute])
        assert run(["nix-store", "-q", "--references", str(step)]).stdout.split() in ([], [str(step)])


def test_debian_imports_have_their_purls(built):
    attribute, _, _, document = built
    if attribute != "bbpython":
        return
    purls = {
        ref["referenceLocator"]
        for package in document["packages"]
        for ref in package["externalRefs"]
        if ref["referenceType"] == "purl"
    }
    # The package of the host's Python interpreter, by its file (its name carries Python's version).
    python = run(["dpkg-query", "-S", os.path.realpath("/usr/bin/python3")]).stdout.partition(":")[0]
    for name in ("libc6", "libssl3", "busybox-static", python):
        version, arch = run(["dpkg-query", "-W", "-f", "${Version} ${Architecture}", name]).stdout.split()
        assert sbom.debian_purl(name, version, arch) in purls, name
    assert "pkg:deb/debian/busybox-static@" in " ".join(purls)
    # The version is percent-encoded as purl wants (an epoch's ":" and "+").
    assert sbom.debian_purl("busybox-static", "1:9.9.9-4+b3", "amd64") == (
        "pkg:deb/debian/busybox-static@1%3A9.9.9-4%2Bb3?arch=amd64"
    )


def test_the_layout_holds_an_artifact_whose_subject_is_the_image(tmp_path):
    output = nix_build("busyboxImage")
    index = json.loads((output / "index.json").read_text())
    image, artifact = index["manifests"]
    assert artifact["artifactType"] == sbom.MEDIA_TYPE and "annotations" not in artifact
    manifest = json.loads((output / "blobs/sha256" / artifact["digest"][7:]).read_text())
    assert manifest["subject"] == {key: image[key] for key in ("mediaType", "digest", "size")}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert (output / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes() == b"{}"
    assert nix2aci("validate", output).returncode == 0
    # A subject that names no image of the layout is a problem of validate's.
    copy = tmp_path / "layout"
    shutil.copytree(output, copy, symlinks=True)
    copy.chmod(0o755)
    (copy / "index.json").chmod(0o644)
    wrong = {**manifest, "subject": {**manifest["subject"], "size": manifest["subject"]["size"] + 1}}
    content = json.dumps(wrong).encode()
    digest = hashlib.sha256(content).hexdigest()
    (copy / "blobs/sha256").chmod(0o755)
    (copy / "blobs/sha256" / digest).write_bytes(content)
    index["manifests"][1] = {**artifact, "digest": f"sha256:{digest}", "size": len(content)}
    (copy / "index.json").write_text(json.dumps(index))
    found = nix2aci("validate", copy, check=False)
    assert found.returncode == 1 and "subject: must be the descriptor of an image manifest" in found.stdout, found


def test_hostile_inputs_to_sbom_are_one_line(tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("keep")
    output = nix_build("busyboxImage")
    layout = tmp_path / "layout"
    shutil.copytree(output, layout, symlinks=True)
    for path in [layout, *layout.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    artifact = json.loads((layout / "index.json").read_text())["manifests"][1]
    manifest = json.loads((layout / "blobs/sha256" / artifact["digest"][7:]).read_text())
    sbom_blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    sbom_blob.write_bytes(sbom_blob.read_bytes().replace(b"busybox", b"bosybux"))
    fifo = tmp_path / "fifo.aci"
    os.mkfifo(fifo)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps({"annotations": {"org.nix2aci.sbom": "../canary", "org.nix2aci.sbom.digest": "x"}})
    )
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "index.json").write_bytes(b"\xff{")
    cases = {
        tmp_path / "missing.aci": (2, "does not exist"),
        fifo: (2, "not a regular file"),
        layout: (1, "does not match its recorded digest"),
        bundle: (1, "no *.spdx.json file beside it"),
        garbage: (1, "is not a JSON document"),
        tmp_path: (1, "is no image nix2aci built"),
        canary: (1, "is no image nix2aci built"),
    }
    for image, (status, says) in cases.items():
        result = nix2aci("sbom", image, check=False)
        assert result.returncode == status and says in result.stderr, (image, result)
        assert result.stderr.count("\n") == 1 and not result.stdout, (image, result)
    assert canary.read_text() == "keep"


def test_nar_hash_of_a_tree_with_links_and_executables_is_nix_store_s(tmp_path):
    # bbpython's closure has directories, symlinks, executables and empty files.
    roots = nix_eval_json("map builtins.unsafeDiscardStringContext n.bbpython.nix2aci.roots")
    for path in run(["nix-store", "-qR", *roots]).stdout.split():
        assert sbom.nar_sha256(path) == store_hash_hex(path), path


def test_nar_hash_of_a_tree_deeper_than_python_recurses_is_nix_s(tmp_path):
    # Deeper than Python's recursion limit (1000), within PATH_MAX: the NAR hash recursed per level and failed here.
    root = deepest = tmp_path / "deep"
    root.mkdir()
    for _ in range(1200):  # one level at a time: mkdir(parents=True) recurses too
        deepest = deepest / "a"
        deepest.mkdir()
    (deepest / "file").write_bytes(b"x")
    (deepest / "link").symlink_to("../..")
    (root / "sibling\N{SNOWMAN}").write_bytes(b"")
    try:
        dumped = subprocess.run(["nix-store", "--dump", str(root)], capture_output=True, check=True).stdout
        assert sbom.nar_sha256(str(root)) == hashlib.sha256(dumped).hexdigest()
    finally:  # rm, not pytest's cleanup: shutil.rmtree recurses per level too
        run(["rm", "-rf", str(root)])


def test_names_split_as_nix_parse_drv_name():
    expected = nix_eval_json(
        'map builtins.parseDrvName [ "glibc-host-9.99" "busybox-static-host" "python3-9.9.9" '
        '"libbz2-1.0-1.0.8" "cacert-host-20990101+deb99u1" "a--1" "x-y-z" ]'
    )
    for given, want in zip(
        ["glibc-host-9.99", "busybox-static-host", "python3-9.9.9", "libbz2-1.0-1.0.8",
         "cacert-host-20990101+deb99u1", "a--1", "x-y-z"],
        expected,
        strict=True,
    ):  # fmt: skip
        assert sbom.parse_name(given) == (want["name"], want["version"]), given


def test_reference_free_json_round_trips_and_never_holds_a_hash():
    hashes = ["".join(NIX32[(i * 7 + j) % 32] for j in range(32)) for i in range(40)]
    value = {
        "paths": [f"/nix/store/{h}-x" for h in hashes],
        "long": NIX32 * 10,
        "control": "\n" + "n" * 40 + "\x1f" + "0" * 40,
        "quotes": 'a"b\\c',
        "unicode": "é" + "z" * 33,
        "numbers": [0, 12345, True, None, False],
        "empty": [{}, []],
    }
    written = sbom.reference_free_json(value)
    assert json.loads(written) == value
    assert not HASH_RUN.search(written)

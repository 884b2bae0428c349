"""End to end: an OCI image's postprocess.sh (issue 16) with real nix-build, real GC roots and real skopeo.

postprocess.sh runs as a user runs it: from another directory, with a bare
environment (no .venv on PATH), so it runs the nix2aci command line the image was
built with. ``--push`` runs ``nix2aci push`` (tests/test_push.py tests the push itself).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import image_entry, nix2aci, nix_build, nix_build_expression, nix_eval_json, require, run
from test_signing import bare_env, postprocess, remove_test_gc_roots  # noqa: F401 (a fixture, used by name)

pytestmark = pytest.mark.slow

IMAGE = 'n.lib.buildOCIImage { packages = [ n.pkgs.busybox ]; cmd = [ "/bin/sh" ]; %s }'
NO_KEY = Path("/nonexistent/nix2aci-test-no-key")  # postprocess of an OCI image reads no key


def built(expression: str) -> Path:
    """The output of ``expression`` (``n`` is default.nix) built with the sandbox on."""
    return Path(nix_build_expression(expression).stdout.strip().splitlines()[-1])


def image_label(attribute: str) -> str:
    """``NAME-TAG`` (NAME's last part) of the image ``attribute`` of default.nix, as its spec says."""
    image = nix_eval_json(f"n.{attribute}.nix2aci.image")
    return f"{os.path.basename(image['name'])}-{image['tag']}"


def gc_roots() -> str:
    """Nix's list of GC roots, ``LINK -> STORE PATH`` per line."""
    return run(["nix-store", "--gc", "--print-roots"]).stdout


def manifest_digest(layout: Path) -> str:
    """The digest of the one image manifest an OCI image layout's index names (its SBOM's aside)."""
    return image_entry(layout)["digest"]


@pytest.fixture(scope="module")
def layout() -> Path:
    return nix_build("busyboxImage")


@pytest.fixture(scope="module")
def archive() -> Path:
    return nix_build("busyboxArchive")


# --- linking ----------------------------------------------------------------------


def test_postprocess_links_a_layout_into_images_as_a_gc_root_that_skopeo_reads(layout, tmp_path):
    label = image_label("busyboxImage")
    result = postprocess(layout, tmp_path, NO_KEY)
    link = tmp_path / "images" / label
    assert link.is_symlink() and os.readlink(link) == str(layout)
    assert result.stdout.splitlines() == [
        f"images/{label} -> {layout}",
        "  image:     an OCI image layout, a GC root while the link exists",
        f"  push:      nix2aci push --sign images/{label} DEST   (or postprocess.sh --push DEST)",
    ]
    assert f"{link} -> {layout}" in gc_roots().splitlines()
    # The link is a layout the field's tools read: the image nix2aci built.
    tag = json.loads((layout / "index.json").read_text())["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"
    ]
    inspected = json.loads(run([require("skopeo"), "inspect", "--raw", f"oci:{link}:{tag}"]).stdout)
    assert inspected == json.loads((layout / "blobs" / "sha256" / manifest_digest(layout).split(":")[1]).read_text())
    # Rerun: its own link is replaced without --force.
    assert postprocess(layout, tmp_path, NO_KEY).returncode == 0
    assert os.readlink(link) == str(layout)


def test_postprocess_links_a_docker_archive_into_the_outdir_given(archive, tmp_path):
    (tarball,) = archive.glob("*.tar")
    assert tarball.name == f"{image_label('busyboxArchive')}.tar"
    result = postprocess(archive, tmp_path, NO_KEY, "out/oci")
    link = tmp_path / "out" / "oci" / tarball.name
    assert link.is_symlink() and os.readlink(link) == str(tarball)
    assert result.stdout.splitlines()[:2] == [
        f"out/oci/{tarball.name} -> {tarball}",
        "  image:     a docker-archive, a GC root while the link exists",
    ]
    assert f"{link} -> {archive}" in gc_roots().splitlines()
    assert not (tmp_path / "images").exists()


def test_a_users_file_or_directory_in_the_way_is_kept_and_named_in_one_line(layout, tmp_path):
    label = image_label("busyboxImage")
    images = tmp_path / "images"
    images.mkdir()
    mine = images / label
    mine.write_bytes(b"my notes, not an image\n")

    refused = postprocess(layout, tmp_path, NO_KEY, check=False)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"nix2aci: error: will not replace images/{label} (a regular file), not made by nix2aci: "
        "move it away, or rerun with --force\n"
    )
    assert mine.read_bytes() == b"my notes, not an image\n"
    assert sorted(images.iterdir()) == [mine]

    forced = postprocess(layout, tmp_path, NO_KEY, "--force")
    assert forced.returncode == 0 and os.readlink(mine) == str(layout)

    # A directory (an image skopeo copied there, say) is never replaced, not even with --force.
    mine.unlink()
    (mine / "blobs").mkdir(parents=True)
    (mine / "index.json").write_text("{}")
    never = postprocess(layout, tmp_path, NO_KEY, "--force", check=False)
    assert never.returncode == 1
    assert never.stderr == (
        f"nix2aci: error: will not replace images/{label} (a directory): move it away; nix2aci never replaces those\n"
    )
    assert (mine / "index.json").read_text() == "{}" and not mine.is_symlink()


# --- sign = false, and the image apart from postprocess.sh ----------------------------


def test_sign_false_pushes_unsigned_and_changes_no_layer_and_no_byte_of_the_image(layout, tmp_path):
    """``sign`` is the image derivation's alone: the layers' derivations, the layout's documents and its
    blobs are the same; only postprocess.sh says --no-sign, and a link of ours moves to the new image."""
    signed_expression, unsigned_expression = IMAGE % "", IMAGE % "sign = false;"
    derivations = nix_eval_json(
        f"map (image: {{ image = image.drvPath; layers = map (layer: layer.drvPath) image.layers; }}) "
        f"[ ({signed_expression}) ({unsigned_expression}) ]"
    )
    assert derivations[0]["layers"] == derivations[1]["layers"] and derivations[0]["layers"]
    assert derivations[0]["image"] != derivations[1]["image"]

    signed, unsigned = built(signed_expression), built(unsigned_expression)

    def image_files(output: Path) -> dict[str, bytes | str]:
        """Each file of a layout but postprocess.sh: a document's bytes, a layer's link target."""
        return {
            str(path.relative_to(output)): os.readlink(path) if path.is_symlink() else path.read_bytes()
            for path in sorted(output.rglob("*"))
            if path.name != "postprocess.sh" and (path.is_symlink() or path.is_file())
        }

    assert image_files(signed) == image_files(unsigned)
    assert any(name.startswith("blobs/sha256/") for name in image_files(signed))
    assert " --no-sign " not in (signed / "postprocess.sh").read_text()
    assert " --no-sign " in (unsigned / "postprocess.sh").read_text()

    label = f"busybox-{nix_eval_json(f'({signed_expression}).nix2aci.image.tag')}"
    postprocess(signed, tmp_path, NO_KEY)
    result = postprocess(unsigned, tmp_path, NO_KEY)
    assert os.readlink(tmp_path / "images" / label) == str(unsigned)
    assert f"  push:      nix2aci push images/{label} DEST   (or postprocess.sh --push DEST)" in result.stdout


# --- hostile arguments ------------------------------------------------------------------


def test_a_name_with_a_slash_or_an_output_that_is_no_image_is_one_line_and_writes_nothing(layout, archive, tmp_path):
    canary = tmp_path / "canary"
    canary.write_bytes(b"canary\n")
    outdir = tmp_path / "out"
    cases = [
        (("--oci-layout", "../canary"), 2, "--oci-layout: '../canary' is not a file name: give the image's name"),
        (("--docker-archive", ".."), 2, "--docker-archive: '..' is not a file name"),
        (("--oci-layout", "x"), 1, None),  # the archive's output is no layout
        (("--docker-archive", "missing.tar"), 1, f"{archive} holds no docker-archive missing.tar"),
    ]
    for arguments, status, message in cases:
        result = nix2aci("postprocess", "--build-output", archive, *arguments, outdir, cwd=tmp_path, check=False)
        assert result.returncode == status, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("nix2aci: error: ")
        expected = message or f"{archive} is no OCI image layout: it has no oci-layout or index.json file"
        assert expected in result.stderr
    assert canary.read_bytes() == b"canary\n"
    assert not outdir.exists()


def test_push_on_an_aci_output_is_one_line_and_links_nothing(tmp_path):
    aci = nix_build("busybox")
    result = postprocess(aci, tmp_path, NO_KEY, "--push", "docker://127.0.0.1:1/busybox:latest", check=False)
    assert result.returncode == 2
    assert result.stderr == (
        "nix2aci: error: --push: only an OCI image (buildOCIImage) is pushed; this postprocess.sh is an ACI build's\n"
    )
    assert list(tmp_path.iterdir()) == []


# --- pushing ---------------------------------------------------------------------------------


def test_postprocess_push_writes_the_image_to_an_oci_destination(tmp_path):
    """``postprocess.sh --push oci:DIR:TAG`` of an image built with ``sign = false`` runs ``nix2aci push`` (an
    ``oci:`` layout takes no signature): DIR holds the manifest nix2aci built, under TAG."""
    image = built(IMAGE % "sign = false;")
    destination = tmp_path / "pushed"
    result = postprocess(image, tmp_path, NO_KEY, "--push", f"oci:{destination}:pushed-tag")
    assert result.returncode == 0, result.stderr
    (manifest,) = json.loads((destination / "index.json").read_text())["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "pushed-tag"
    assert manifest["digest"] == manifest_digest(image)


def test_postprocess_push_takes_the_link_itself_whatever_characters_outdir_has(layout, tmp_path):
    """An OUTDIR whose name has a newline and a control character: push is given the link's real path (what is
    printed of it escapes them, on one line)."""
    label = image_label("busyboxImage")
    outdir = "new\nline\x01dir"
    destination = tmp_path / "pushed"
    result = postprocess(layout, tmp_path / "work", NO_KEY, "--no-sign", "--push", f"oci:{destination}", outdir)
    assert result.returncode == 0, result.stderr
    assert os.readlink(tmp_path / "work" / outdir / label) == str(layout)
    escaped = repr(f"{outdir}/{label}")  # the link relative to the directory postprocess ran in
    tag = image_entry(layout)["annotations"]["org.opencontainers.image.ref.name"]
    assert f"{escaped}: pushed to oci:{destination}:{tag}" in result.stdout.splitlines()
    (manifest,) = json.loads((destination / "index.json").read_text())["manifests"]
    assert manifest["digest"] == manifest_digest(layout)

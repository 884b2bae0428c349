"""scripts/bench runs end to end (--quick, one repetition): a benchmark nobody can run measures nothing.

Only what it built and reports is checked, never a time: speed is read from its ratios by people.
"""

from __future__ import annotations

import re

import pytest
from conftest import REPO, run_guarded

pytestmark = pytest.mark.slow


def row(report: str, first_cell: str) -> list[str]:
    """The cells of the report's table row that starts with ``first_cell``."""
    (line,) = [line for line in report.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_benchmark_runs_and_writes_its_tables(tmp_path):
    output = tmp_path / "bench.md"
    result = run_guarded(
        [str(REPO / "scripts/bench"), "--quick", "--repetitions", "1", "--output", str(output)], timeout=1800
    )
    report = output.read_text()
    assert report in result.stdout
    for line in ("| builder alone, every core |", "| chain of N = 100 paths |", "| peak RSS, generated closure"):
        assert line in report
    assert "identical: met" in report  # the ACI's bytes do not depend on the number of cores

    # The layered OCI image: a first build packs a layer per store path and the last one ...
    closure = re.search(r"of a Python application: (\d+) store paths, ([\d.]+) MB", report)
    paths, size = int(closure[1]), float(closure[2])
    assert size >= 40  # the closure of at least 40 MB
    assert row(report, "100")[1] == str(paths + 1)
    assert row(report, "first build, maxLayers = 100")[4] == str(paths + 1)
    # ... a rebuild after the application changed packs only its layer and the last one: Nix has the rest
    # (6 derivations: the application, the layering, those two layers, the image and its SBOM)
    rebuild = row(report, "rebuild after the application changed, maxLayers = 100")
    assert rebuild[3:5] == ["6", "2: bench-app, rootfs-bench-python-bench"]
    # with maxLayers = 4 the shared layer holds the other paths, never the application, and is not repacked
    assert row(report, "4")[1] == "4"
    assert re.fullmatch(rf"[\d.]+ MB, {paths - 2} store paths", row(report, "4")[3])
    assert row(report, "4")[4].startswith("alone, ")
    assert row(report, "rebuild after the application changed, maxLayers = 4")[3:5] == rebuild[3:5]
    # one layer: everything in the last layer, repacked whatever changed
    assert row(report, "1")[1:5] == ["1", row(report, "1")[2], "none", "in the one layer"]
    assert row(report, "rebuild after the application changed, maxLayers = 1")[4] == "1: rootfs-bench-python-bench"
    # the layers of Python's closure are shared with another image: same digest, one file in the store
    assert "each shared layer stored once: met" in report

    # Pushes, each repetition to a fresh registry, on loopback and over the limited link: the same bytes on both
    for link in ("", "100 Mbit/s each way: "):
        check_pushes(report, link, paths)
    assert report.count("no layer bytes: met") == 2


def check_pushes(report: str, link: str, paths: int) -> None:
    """The push rows whose names start with ``link``: the uploads a push of each kind must make."""
    # The first uploads every layer and the config ...
    first = row(report, f"{link}first push")
    assert first[3] == f"{paths + 1} layers, config"
    layer_bytes = int(first[5].replace(",", ""))
    assert 0 < layer_bytes < int(first[4].replace(",", ""))
    # ... the same image again uploads nothing, not even its manifest (nix2aci finds the tag names it: no copy);
    # skopeo copy alone uploads the manifest only ...
    assert row(report, f"{link}second push, unchanged")[3:6] == ["nothing", "0", "0"]
    skopeo_again = row(report, f"{link}the same again, unchanged, by skopeo copy alone")
    assert skopeo_again[3] == "the manifest only"
    assert int(skopeo_again[4].replace(",", "")) > 0 and skopeo_again[5] == "0"
    # ... and after the application changed, its layer, the last layer (its profile links the app) and the config
    changed = row(report, f"{link}push after the application changed")
    assert changed[3] == "bench-app, the last layer, config"
    assert 0 < int(changed[5].replace(",", "")) < layer_bytes / 100
    # the anchors' way, one layer: every push of a changed image uploads that whole layer again
    single = [
        row(report, f"{link}single layer: {push}") for push in ("first push", "push after the application changed")
    ]
    for cells in single:
        assert cells[3] == "the one layer, config"
    assert int(single[1][5].replace(",", "")) > 0.9 * int(single[0][5].replace(",", ""))

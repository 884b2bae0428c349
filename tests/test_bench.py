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
    # ... a rebuild after the application changed packs only its layer and the last one (and lists it in the SBOM)
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

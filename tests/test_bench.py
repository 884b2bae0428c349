"""scripts/bench runs end to end (--quick, one repetition): a benchmark nobody can run measures nothing.

Only that it runs and reports is checked, never a time: speed is read from its ratios by people.
"""

from __future__ import annotations

import pytest
from conftest import REPO, run_guarded

pytestmark = pytest.mark.slow


def test_the_benchmark_runs_and_writes_its_tables(tmp_path):
    output = tmp_path / "bench.md"
    result = run_guarded(
        [str(REPO / "scripts/bench"), "--quick", "--repetitions", "1", "--output", str(output)], timeout=1800
    )
    report = output.read_text()
    assert report in result.stdout
    for row in ("| builder alone, every core |", "| chain of N = 100 paths |", "| peak RSS, generated closure"):
        assert row in report
    assert "identical: met" in report  # the ACI's bytes do not depend on the number of cores

"""benchmarks/vs_trl.py: the summary of its runs, and (slow) a smoke run of both frameworks."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import vs_trl  # noqa: E402


def test_summary_ratios_per_round():
    runs = pd.DataFrame(
        [
            {"kind": "speed", "framework": fw, "round": r, "steps_per_cpu_s": speed, "steps_per_s": speed / 2}
            for r, speeds in enumerate(((5.0, 10.0, 4.0), (6.0, 12.0, 6.0)))
            for fw, speed in zip(vs_trl.FRAMEWORKS, speeds)
        ]
        + [
            {"kind": "curve", "framework": fw, "seed": s, "pass1_before": 0.4, "pass1_after": 0.7 + s / 100}
            for fw in ("ours", "trl")
            for s in range(2)
        ]
    )
    table = vs_trl.summarise(runs).set_index("framework")
    assert table.loc["ours", "steps_per_cpu_s_vs_trl"] == pytest.approx((10 / 4 + 12 / 6) / 2)
    assert table.loc["ours", "steps_per_cpu_s_vs_trl_min"] == pytest.approx(2.0)
    assert table.loc["trl", "steps_per_cpu_s_vs_trl"] == 1.0
    assert table.loc["ours-hf", "steps_per_s"] == pytest.approx(2.75)
    assert table.loc["ours", "pass1_after"] == pytest.approx(0.705)


@pytest.mark.slow
def test_quick_run_writes_the_tables(tmp_path):
    out = tmp_path / "vs_trl.csv"
    subprocess.run(
        [sys.executable, "benchmarks/vs_trl.py", "--quick", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    table = pd.read_csv(out).set_index("framework")
    assert list(table.index) == list(vs_trl.FRAMEWORKS)
    assert (table["steps_per_cpu_s"] > 0).all()
    curves = pd.read_csv(tmp_path / "vs_trl.curves.csv")
    assert set(curves["framework"]) == {"ours", "trl"} and len(curves) == 8

"""The few-shot digits benchmark meets the issue's targets (reduced: 3 episodes, 10 shots)."""
import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "edge_learning.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("edge_learning_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_shots_meet_the_targets():
    bench = load_bench()
    summary = bench.run(episodes=3, shots=(10,))
    row = summary["shots"][10]
    edge, ncm = row["edge_new"]["mean"], row["ncm_new"]["mean"]
    assert edge >= 0.80 and edge >= ncm - 0.05, (edge, ncm)
    assert row["edge_all"]["mean"] >= 0.75
    text, ok = bench.report(summary)
    assert ok and "PASS" in text


@pytest.mark.slow
def test_full_benchmark_passes():
    assert load_bench().main(["--episodes", "10"]) == 0

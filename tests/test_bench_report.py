"""BENCHMARKS.md's nodes table and targets, from a results dict like `make bench` writes."""

from bench.report import TWO_PROCESSES_TARGET, _targets, nodes_report


def _rounds(*rps: float) -> list[dict[str, float]]:
    return [{"rps": value, "p99_ms": 10.0, "errors": 0} for value in rps]


NODES = {
    "db": "postgresql",
    "cores_per_node": 0.4,
    "rounds": 3,
    "seconds": 8,
    "one": {"stk_push": _rounds(100, 80, 90), "status": _rounds(400, 410, 390)},
    "two": {"stk_push": _rounds(150, 170, 100), "status": _rounds(600, 610, 620)},
}


def test_the_nodes_table_gives_medians_and_the_ratio() -> None:
    text = "\n".join(nodes_report(NODES))
    assert "| STK push | 90 (10) (100, 80, 90) | 150 (10) (150, 170, 100) | 1.67 |" in text
    assert "| status | 400 (10) (400, 410, 390) | 610 (10) (600, 610, 620) | 1.52 |" in text


def test_nodes_that_could_not_be_capped_are_reported_as_not_measured() -> None:
    assert "not measured (no cgroups)" in nodes_report({"skipped": "no cgroups"})[0]


def test_the_targets_judge_two_nodes_against_one() -> None:
    results = {
        "runs": [],
        "scale": {"db": "postgresql", "status_rps_1k": 1.0, "stk_push_rps_1k": 1.0},
        "nodes": NODES,
    }
    rows = [line for line in _targets(results) if "2 nodes / 1" in line]
    assert rows == [
        f"| postgresql | STK push, 2 nodes / 1 (0.4 core each) | >= {TWO_PROCESSES_TARGET} "
        "| 1.67 | yes |",
        f"| postgresql | status, 2 nodes / 1 (0.4 core each) | >= {TWO_PROCESSES_TARGET} "
        "| 1.52 | no |",
    ]

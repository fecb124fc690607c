"""The run-if rule, cycles and workflow status (domain), and the graph's layout (dashboard)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from corral.api.dashboard.graph import layout
from corral.cli.workflow_cmd import load_document
from corral.domain.dependencies import (
    RunIf,
    Verdict,
    cancel_reason,
    check_depends_on,
    decide,
    topological_order,
    workflow_status,
)
from corral.errors import InvalidInput


@pytest.mark.parametrize(
    ("run_if", "left", "bad", "verdict"),
    [
        (RunIf.SUCCESS, 2, 0, Verdict.WAIT),
        (RunIf.SUCCESS, 2, 1, Verdict.CANCEL),  # at once, not at the end
        (RunIf.SUCCESS, 0, 0, Verdict.RUN),
        (RunIf.FAILURE, 1, 1, Verdict.WAIT),  # waits for the last one all the same
        (RunIf.FAILURE, 0, 1, Verdict.RUN),
        (RunIf.FAILURE, 0, 0, Verdict.CANCEL),
        (RunIf.ALWAYS, 1, 1, Verdict.WAIT),
        (RunIf.ALWAYS, 0, 3, Verdict.RUN),
    ],
)
def test_item15_decide(run_if: RunIf, left: int, bad: int, verdict: Verdict) -> None:
    assert decide(run_if, left, bad) is verdict


def test_item15_cancel_reasons_name_the_decider() -> None:
    assert cancel_reason(RunIf.SUCCESS, "j1", "failed") == "not run: dependency j1 failed"
    assert "the last was j2" in cancel_reason(RunIf.FAILURE, "j2", "completed")


def test_item15_topological_order_and_cycles() -> None:
    graph = {"package": ["test", "lint"], "test": ["build"], "lint": ["build"], "build": []}
    order = topological_order(graph)
    assert order.index("build") < order.index("test") < order.index("package")
    assert order.index("lint") < order.index("package")
    assert topological_order({"a": ["outside-id"]}) == ["a"]
    with pytest.raises(InvalidInput, match=r"cycle: a -> a"):
        topological_order({"a": ["a"]})
    with pytest.raises(InvalidInput, match=r"b -> c -> b"):
        topological_order({"a": [], "b": ["c"], "c": ["b"]})


def test_item15_deep_chains_are_not_recursion() -> None:
    graph = {f"k{i}": [f"k{i - 1}"] if i else [] for i in range(5000)}
    assert topological_order(graph)[:2] == ["k0", "k1"]


def test_item15_depends_on_limits() -> None:
    assert check_depends_on(["a", "b", "a"]) == ("a", "b")
    with pytest.raises(InvalidInput, match="at most 1000"):
        check_depends_on([str(i) for i in range(1001)])


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["pending", "pending"], "pending"),
        (["completed", "pending"], "running"),
        (["completed", "completed"], "completed"),
        (["completed", "cancelled"], "cancelled"),
        (["failed", "cancelled"], "failed"),
    ],
)
def test_item15_workflow_status(statuses: list[str], expected: str) -> None:
    assert workflow_status(statuses) == expected


def test_item15_graph_layers_point_rightwards() -> None:
    keys = ["build", "test", "lint", "package"]
    edges = [("test", "build"), ("lint", "build"), ("package", "test"), ("package", "lint")]
    drawn = layout(keys, edges)
    x = {k: n.x for k, n in drawn.nodes.items()}
    assert x["build"] < x["test"] == x["lint"] < x["package"]
    assert drawn.nodes["test"].y != drawn.nodes["lint"].y
    assert len(drawn.edges) == 4 and all(e.path.startswith("M") for e in drawn.edges)
    assert drawn.width >= drawn.nodes["package"].right


def test_item15_workflow_files_yaml_json_and_bad_ones(tmp_path: Path) -> None:
    good = tmp_path / "release.yml"
    good.write_text("jobs:\n  - key: build\n    command: make\n")
    assert load_document(good) == {"name": "release", "jobs": [{"key": "build", "command": "make"}]}
    (tmp_path / "w.json").write_text('{"name": "n", "jobs": []}')
    assert load_document(tmp_path / "w.json")["name"] == "n"
    for name, text in (("bad.yaml", "name: [unclosed\n"), ("list.json", "[1]"), ("x.json", "{")):
        (tmp_path / name).write_text(text)
        with pytest.raises(typer.Exit):
            load_document(tmp_path / name)

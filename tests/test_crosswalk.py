"""Tests for rl4lrm.crosswalk: rl4lrm names are real config fields, the table renders completely."""

from dataclasses import fields
from pathlib import Path

import pytest

from rl4lrm import crosswalk
from rl4lrm.crosswalk import (
    COLUMNS,
    CROSSWALK,
    DOC_HEADER,
    crosswalk_frame,
    crosswalk_markdown,
)
from rl4lrm.presets import Preset
from rl4lrm.trainer import TrainConfig

CONFIG_FIELDS = {f.name for f in fields(Preset)} | {f.name for f in fields(TrainConfig)}


def _field_name(cell: str) -> str:
    """The field a cell names: ``"advantage"`` for both ``advantage`` and ``advantage="dr_grpo"``."""
    return cell.split("=", 1)[0].strip()


@pytest.mark.parametrize("knob", CROSSWALK, ids=lambda knob: knob.rl4lrm)
def test_rl4lrm_cells_name_config_fields(knob):
    name = _field_name(knob.rl4lrm)
    if name.isidentifier():
        assert name in CONFIG_FIELDS, f"{knob.concept!r}: {name!r} is not a field of Preset or TrainConfig"


def test_concepts_are_unique():
    concepts = [knob.concept for knob in CROSSWALK]
    assert len(set(concepts)) == len(concepts)


def test_frame_has_the_columns_and_no_empty_cells():
    frame = crosswalk_frame()
    assert list(frame.columns) == COLUMNS == ["concept", "rl4lrm", "TRL", "verl", "OpenRLHF", "note"]
    assert len(frame) == len(CROSSWALK)
    name_columns = frame[COLUMNS[:-1]]
    assert name_columns.notna().all().all()
    assert (name_columns.map(str.strip) != "").all().all(), "write '—' for a missing knob, not an empty cell"


def _cells(line: str) -> list[str]:
    """Splits a markdown table line on unescaped pipes, dropping the outer empty strings."""
    parts = line.replace("\\|", "\0").split("|")
    assert parts[0] == "" and parts[-1] == "", f"line must start and end with '|': {line!r}"
    return [part.replace("\0", "\\|").strip() for part in parts[1:-1]]


def test_markdown_has_header_separator_and_one_line_per_knob():
    lines = crosswalk_markdown().split("\n")
    assert len(lines) == 2 + len(CROSSWALK)
    assert _cells(lines[0]) == COLUMNS
    assert all(cell == "---" for cell in _cells(lines[1]))
    assert {len(_cells(line)) for line in lines} == {len(COLUMNS)}
    for line, knob in zip(lines[2:], CROSSWALK):
        assert _cells(line)[:2] == [knob.concept, knob.rl4lrm]


def test_markdown_escapes_pipes(monkeypatch):
    knob = crosswalk.Knob("a|b", "group_size", "x", "y", "z")
    monkeypatch.setattr(crosswalk, "CROSSWALK", (knob,))
    row = crosswalk.crosswalk_markdown().split("\n")[2]
    assert _cells(row)[0] == "a\\|b"
    assert len(_cells(row)) == len(COLUMNS)


def test_docs_copy_is_up_to_date():
    doc = Path(__file__).parent.parent / "docs" / "crosswalk.md"
    assert doc.read_text() == DOC_HEADER + crosswalk_markdown() + "\n", (
        "regenerate it: python -m rl4lrm.crosswalk > docs/crosswalk.md"
    )

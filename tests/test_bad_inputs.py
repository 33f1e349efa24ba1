"""Issue 13's bad-input matrix (`benchmarks/bad_inputs.py`) through `mlip-preprocess`: every bad
input is refused with exit 2 and one line naming the file, nothing usable is written, and the good
controls pass. The full report with time and memory limits: `python -m benchmarks.hostile_inputs`."""

from __future__ import annotations

import pytest

from benchmarks.bad_inputs import CASES, classify
from benchmarks.hostile_inputs import run_case
from mlip.data.cli import main


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_bad_input_is_refused_in_one_line_naming_the_file(case, tmp_path, capsys):
    expected = "refused" if case.bad else "accepted"
    if case.file_size_limit is not None:  # a full disk needs a process of its own (RLIMIT_FSIZE)
        row = run_case(case, tmp_path / "case")
        assert row["outcome"] == expected, row
        return
    inputs = case.build(tmp_path)
    out = tmp_path / "out"
    code = main([*map(str, inputs), "--out", str(out), "--workers", "1", "--quiet", *case.arguments])
    stderr = capsys.readouterr().err
    assert classify(case, code, stderr, [str(p) for p in inputs]) == expected, stderr
    assert (out / "manifest.json").exists() == (not case.bad)

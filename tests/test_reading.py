"""The one reader of results files: rows, the interrupted last line, damaged and foreign files."""

from __future__ import annotations

import json

import pytest

from smoothcert.runs.reading import parse_table, read_run_record, read_table, run_json_path

HEADER = "idx\tlabel\tprediction\tp_lower\tradius_l2\tcorrect\tsamples\tseconds\n"
ROW = "{i}\t3\t3\t0.9\t0.5\t1\t100\t0.25\n"


def test_rows_indices_and_the_partial_last_line(tmp_path):
    path = tmp_path / "r.tsv"
    text = HEADER + ROW.format(i=0) + "\n" + ROW.format(i=5) + "7\t3\t3\t0.9"
    path.write_text(text)
    table = read_table(path)
    assert table.columns[0] == "idx" and table.columns[-1] == "seconds"
    assert table.idx == (0, 5)
    assert table.rows == (ROW.format(i=0)[:-1], ROW.format(i=5)[:-1])
    assert table.partial == "7\t3\t3\t0.9"
    assert table.complete_bytes == len(text.encode()) - len("7\t3\t3\t0.9")
    assert table.column("label") == ["3", "3"]
    with pytest.raises(ValueError, match="incomplete line"):
        read_table(path, partial="refuse")
    # "keep": a last line is kept only when it has every field (only its time can be cut)
    assert read_table(path, partial="keep").idx == (0, 5)
    path.write_text(HEADER + ROW.format(i=0) + ROW.format(i=1)[:-3])
    assert read_table(path, partial="keep").idx == (0, 1)
    assert read_table(path).idx == (0,)


@pytest.mark.parametrize("content,match", [
    (b"\x80\x02}q\x00(X\x06\x00\x00\x00formatq", "not UTF-8 text"),
    (b"label\tidx\n1\t0\n", "does not start with the column idx"),
    ((HEADER + "0\t3\n").encode(), "line 2 has 2 fields, but its header has 8"),
    ((HEADER + ROW.format(i="x")).encode(), "idx 'x' is not an integer"),
])
def test_files_that_are_not_results_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_table(path)


def test_empty_and_missing_files(tmp_path):
    assert parse_table(b"").header is None
    assert parse_table(b"idx\tlab").header is None and parse_table(b"idx\tlab").complete_bytes == 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_table(tmp_path / "none.tsv")


def test_run_record_beside_the_file(tmp_path):
    path = tmp_path / "run.tsv"
    assert run_json_path(path) == tmp_path / "run.json"
    assert run_json_path(tmp_path / "a.b" / "run") == tmp_path / "a.b" / "run.json"
    assert read_run_record(path) is None
    run_json_path(path).write_text(json.dumps({"configuration": {"seed": 1}}))
    assert read_run_record(path) == {"configuration": {"seed": 1}}
    run_json_path(path).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_run_record(path)
    run_json_path(path).write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_run_record(path)
    assert read_run_record(tmp_path / "x.json") is None  # a record is never its own results

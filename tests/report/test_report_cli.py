"""``convscope report --json``: the verdict and the ranking it rests on, the same as the library's."""

from __future__ import annotations

import json

from convscope.cli.app import main
from convscope.embed.projection import ProjectionParams
from convscope.report.collect import collect_ranking
from convscope.store import open_store


def test_json_is_the_libraries_ranking_and_writes_no_file(recorded_runs, capsys, tmp_path):
    root, _ = recorded_runs
    status = main(["report", "tiny", "--store", str(root), "--method", "pca", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    document = json.loads(captured.out)
    with open_store(root, create=False) as store:
        expected = collect_ranking(store, ["tiny"], params=ProjectionParams(method="pca"))
    assert document == json.loads(json.dumps(expected.to_dict()))
    assert {r["model"] for r in document["ranking"]} == {"sequential", "residual"}
    for entry in document["ranking"]:
        assert set(entry["scores"]) == set(entry["gain_over_epoch0"])
        assert entry["epoch"] == 2 and isinstance(entry["learned"], bool)
    assert document["verdict"].split(" ")[0] in ("sequential", "residual", "Only", "No")
    assert list(tmp_path.iterdir()) == []


def test_no_out_and_no_json_is_a_one_line_error(recorded_runs, capsys) -> None:
    root, _ = recorded_runs
    assert main(["report", "tiny", "--store", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "convscope: error: say where to write the report: --out report.html (or ask for --json)"
    )

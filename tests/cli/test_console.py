"""Output that goes to a pipe or a file is not wrapped: paths and ids stay whole on one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from polyroute.cli import main
from polyroute.data import save_long_jsonl
from polyroute.store import Candidate, RequestRecord, SQLiteStore


def test_a_long_path_is_not_broken_when_stdout_is_a_pipe(tmp_path: Path, two_cluster_factory):
    deep = tmp_path.joinpath(*[f"directory-with-a-long-name-{i}" for i in range(8)])
    deep.mkdir(parents=True)
    data = save_long_jsonl(two_cluster_factory(3).outcomes, deep / "outcomes-file.jsonl")
    assert len(str(data)) > 250
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "polyroute", "data", "check", str(data)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    [first, *_] = proc.stdout.splitlines()
    assert first.startswith(f"ok {data}: ")


def test_logs_table_cells_are_not_folded_when_piped(tmp_path: Path, capsys):
    path = tmp_path / "state.sqlite"
    store = SQLiteStore(path)
    store.finish_request(RequestRecord(
        id="r1", ts=1_700_000_000.0, status="ok", http_status=200, key_id="a-client-key",
        requested_model="polyroute-auto-with-a-long-profile-name",
        candidates=(Candidate("llama-3.3-nemotron-super-49b-v1", 0.9, 0.001),),
        chosen="llama-3.3-nemotron-super-49b-v1", cost=0.001))
    store.close()
    assert main(["logs", "--store", str(path)]) == 0
    text = capsys.readouterr().out
    assert "polyroute-auto-with-a-long-profile-name" in text
    assert "llama-3.3-nemotron-super-49b-v1" in text

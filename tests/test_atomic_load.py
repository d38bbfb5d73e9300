"""A load is all or nothing: kill the loader mid-load, restart, and find no partial batch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from helpers import add_contract, ingest_command, write_csv
from territoria.backends import open_store
from territoria.core.config import WorkspaceConfig

ROWS = 300_000


def _big_file(tmp_path: Path) -> Path:
    rows = [
        [f"P{i}", f"Nom{i % 977}", "1970", "01/02/2024", f"{i % 50},5", "actif"]
        for i in range(ROWS)
    ]
    return write_csv(tmp_path / "big.csv", rows)


def _assert_consistent(workspace: WorkspaceConfig) -> int:
    """After a restart: every visible load is whole, nothing else is visible."""
    store = open_store(workspace)
    try:
        store.recover()
        loaded = [r for r in store.loads("test_people") if r.status == "loaded"]
        rows = store.raw_table("test_people").num_rows if loaded else 0
        assert rows == sum(r.rows_loaded for r in loaded)
        assert all(r.rows_loaded == ROWS for r in loaded)
        assert len(loaded) <= 1
        return len(loaded)
    finally:
        store.close()


# The last instant before a load becomes visible, in each store.
WORST_MOMENT = {"embedded": "embedded_before_ledger", "postgresql": "postgres_before_commit"}


def test_kill_at_the_worst_moment_leaves_nothing(
    workspace: WorkspaceConfig, tmp_path: Path
) -> None:
    fault = WORST_MOMENT[workspace.store.kind]
    add_contract(workspace)
    path = _big_file(tmp_path)
    env = {**os.environ, "TERRITORIA_FAULT": fault}
    proc = subprocess.run(
        ingest_command(workspace, path), env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert _assert_consistent(workspace) == 0
    again = subprocess.run(ingest_command(workspace, path), capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()
    assert _assert_consistent(workspace) == 1


def test_kill_at_random_moments(workspace: WorkspaceConfig, tmp_path: Path) -> None:
    add_contract(workspace)
    path = _big_file(tmp_path)
    rng = random.Random(3)
    for _ in range(4):
        proc = subprocess.Popen(
            ingest_command(workspace, path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        _assert_consistent(workspace)
    final = subprocess.run(ingest_command(workspace, path), capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr.decode()
    assert _assert_consistent(workspace) == 1

"""Shared fixtures: a workspace on every store present (embedded always, PostgreSQL if up)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from identity_fixtures import catalog, load_people, make_sandbox
from territoria.backends import Store, open_store
from territoria.core.config import WorkspaceConfig, init_workspace, load_workspace
from territoria.identity import link_workspace
from territoria.ingest import ingest_files, sandbox_items

PG_URL = os.environ.get("TERRITORIA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("TERRITORIA_REQUIRE_POSTGRES") == "1"


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except Exception:
        return False


_PG_UP = _pg_available()


def _backend_params() -> list[object]:
    pg = pytest.param("postgresql", marks=pytest.mark.postgres)
    return ["embedded", pg]


@pytest.fixture(params=_backend_params())
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkspaceConfig]:
    """A fresh workspace; parametrised over the embedded store and PostgreSQL."""
    if request.param == "embedded":
        yield init_workspace(tmp_path / "ws", name="Test")
        return
    if not _PG_UP:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL injoignable à {PG_URL} (TERRITORIA_REQUIRE_POSTGRES=1)")
        pytest.skip(f"PostgreSQL injoignable à {PG_URL}")
    schema = f"t_{secrets.token_hex(6)}"
    config = init_workspace(tmp_path / "ws", name="Test", store_url=PG_URL, schema=schema)
    yield config
    from territoria.backends.postgres import PostgresStore

    store = open_store(config)
    assert isinstance(store, PostgresStore)
    store.drop_schema()
    store.close()


@pytest.fixture
def store(workspace: WorkspaceConfig) -> Iterator[Store]:
    s = open_store(workspace)
    yield s
    s.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated territory (1,500 inhabitants), generated once per session."""
    return make_sandbox(tmp_path_factory.mktemp("identity") / "sandbox")


@pytest.fixture(scope="session")
def linked_template(tmp_path_factory: pytest.TempPathFactory, sandbox: Path) -> Path:
    """An embedded workspace with the sandbox's persons loaded and linked, built once."""
    config = init_workspace(tmp_path_factory.mktemp("identity") / "ws", name="Test")
    store = open_store(config)
    load_people(store, config, sandbox)
    link_workspace(store, catalog(config))
    store.close()
    return config.root


@pytest.fixture
def linked(linked_template: Path, tmp_path: Path) -> Iterator[tuple[WorkspaceConfig, Store]]:
    """A private copy of the linked workspace (tests may change it)."""
    root = tmp_path / "ws"
    shutil.copytree(linked_template, root)
    config = load_workspace(root)
    store = open_store(config)
    yield config, store
    store.close()


@pytest.fixture(scope="session")
def lifts_template(
    linked_template: Path, sandbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The linked workspace plus the sandbox's bin lifts (events: no linking needed), built once."""
    root = tmp_path_factory.mktemp("lifts") / "ws"
    shutil.copytree(linked_template, root)
    config = load_workspace(root)
    store = open_store(config)
    try:
        items = [(s, p) for s, p in sandbox_items(sandbox) if s == "waste_lifts"]
        assert items and all(o.ok for o in ingest_files(store, catalog(config), items))
    finally:
        store.close()
    return root

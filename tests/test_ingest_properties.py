"""Property: whatever happens to a valid file, rows read = rows loaded + rows quarantined."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import HEADER, add_contract
from territoria.backends import open_store
from territoria.core.config import init_workspace
from territoria.ingest import ContractCatalog, ingest_file

names = st.text(alphabet=st.characters(codec="cp1252", exclude_characters='";\r\n'), max_size=12)
rows = st.lists(
    st.tuples(
        st.integers(0, 10**6).map(lambda i: f"P{i}"),
        names,
        st.sampled_from(["03/04/1971", "1980", "", "04/1971"]),
        st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
        st.decimals(0, 1000, places=2).map(lambda d: str(d).replace(".", ",")),
        st.sampled_from(["actif", "inactif"]),
    ),
    min_size=1,
    max_size=30,
)


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[bytes, str]:
    encoding = draw(st.sampled_from(["utf-8", "cp1252"]))
    lines = [";".join(HEADER)] + [";".join(r) for r in draw(rows)]
    data = bytearray(("\n".join(lines) + "\n").encode(encoding))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(
            st.sampled_from(["flip", "delete", "insert", "truncate", "dupline", "delim", "quote"])
        )
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[pos:]
        elif op == "dupline":
            end = data.find(b"\n", pos)
            start = data.rfind(b"\n", 0, pos) + 1
            if end > 0:
                data[end + 1 : end + 1] = data[start : end + 1]
        else:
            data[pos:pos] = b";" if op == "delim" else b'"'
    return bytes(data), encoding


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_files())
def test_corrupted_files_lose_nothing(case: tuple[bytes, str]) -> None:
    content, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        config = init_workspace(Path(tmp) / "ws")
        add_contract(config)
        contract = ContractCatalog.load(*config.contract_paths).get("test_people")
        path = Path(tmp) / "f.csv"
        path.write_bytes(content)
        store = open_store(config)
        try:
            outcome = ingest_file(store, contract, path)
            r = outcome.record
            assert r.status in ("loaded", "failed")
            if r.status == "failed":
                assert outcome.error is not None and outcome.error.code
                assert store.raw_table("test_people").num_rows == 0
                return
            assert r.rows_read == r.rows_loaded + r.rows_quarantined
            assert store.raw_table("test_people").num_rows == r.rows_loaded
            assert store.quarantine_count("test_people") == r.rows_quarantined
            data_lines = [x for x in content.split(b"\n")[1:] if x.strip(b"\r")]
            if b'"' not in content:
                assert r.rows_read == len(data_lines)
        finally:
            store.close()

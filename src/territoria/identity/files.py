"""Linking a data team's own files: CSV files in, one ``file,record_id,cluster_id`` row out
per record.

The person says which column plays which role (``--map ROLE=COLUMN`` for every file,
``--map FILENAME:ROLE=COLUMN`` for one), the files are read as ingestion reads them (encoding
and delimiter detected by ``sniff_file``), their records become person mentions, and
``link_mentions`` groups them into persons. One file means deduplication, several mean
linking: both are the same job on the union of the records. ``link_frames`` does it on
in-memory tables (pandas or Arrow), ``link_files`` on files, for ``territoria link``.
"""

from __future__ import annotations

import csv
import math
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Union

import pyarrow as pa
import pyarrow.compute as pc

from territoria.core.contract import normalise_header
from territoria.core.errors import InputFileError, TerritoriaError
from territoria.identity.mentions import MENTION_SCHEMA, ROLES, mention_id
from territoria.identity.pipeline import LinkResult, Progress, link_mentions
from territoria.ingest.sniff import FileInfo, sniff_file, utf8_copy

if TYPE_CHECKING:
    import pandas

__all__ = [
    "LINK_ROLES",
    "OUTPUT_COLUMNS",
    "LinkInputError",
    "LinkSummary",
    "file_keys",
    "frames_to_mentions",
    "link_files",
    "link_frames",
    "parse_maps",
    "read_csv_file",
]

RECORD_ID = "record_id"
LINK_ROLES: tuple[str, ...] = (RECORD_ID, *ROLES)
NAME_ROLES: tuple[str, ...] = ("full_name", "family_name")  # given_name alone links no one
SLOT = "person"
OUTPUT_COLUMNS: tuple[str, ...] = ("file", "record_id", "cluster_id")
OUTPUT_SCHEMA = pa.schema([(c, pa.string()) for c in OUTPUT_COLUMNS])
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".tsv")
_SHOWN = 5  # values listed in an error message
_MALFORMED = {
    "MISSING COLUMNS": "colonnes manquantes",
    "TOO MANY COLUMNS": "colonnes en trop",
    "UNQUOTED VALUE": "guillemets incorrects",
    "LINE SIZE OVER MAXIMUM": "ligne trop longue",
}

Frame = Union[pa.Table, "pandas.DataFrame"]


class LinkInputError(TerritoriaError):
    """A ``--map`` specification, a file's columns, its record ids, or the records as a whole
    do not allow linking."""


# --- which column plays which role ---------------------------------------------------------


@dataclass(frozen=True)
class _Specs:
    every_file: dict[str, str]  # role → column
    per_file: dict[str, dict[str, str]]  # file key → role → column


def file_keys(paths: Sequence[Path]) -> list[str]:
    """The name each file goes by (in ``--map`` and the output): its base name, or the path as
    given when two files share a base name."""
    seen: dict[Path, Path] = {}
    for path in paths:
        first = seen.setdefault(path.resolve(), path)
        if first is not path:
            raise LinkInputError(
                f"le fichier {path} est donné deux fois",
                code="file_repeated",
                file=path,
                hint="indiquez chaque fichier une seule fois",
            )
    names = Counter(p.name for p in paths)
    return [p.name if names[p.name] == 1 else str(p) for p in paths]


def parse_maps(specs: Sequence[str], files: Sequence[Path]) -> dict[str, dict[str, str]]:
    """File name → role → column, from ``ROLE=COLUMN`` (every file) and
    ``FILENAME:ROLE=COLUMN`` (one file, overriding the former) specifications.

    Columns are matched to each file's header without regard to case, accents or punctuation
    and returned as the header spells them. Raises ``LinkInputError`` on an unknown role, a
    malformed specification, a file name matching no file, a column absent from a file, or a
    file with no name role (``full_name`` or ``family_name``).

    >>> parse_maps(["full_name=Nom", "b.csv:full_name=NOM_PRENOM"], [Path("a.csv"), Path("b.csv")])  # doctest: +SKIP
    {'a.csv': {'full_name': 'Nom'}, 'b.csv': {'full_name': 'Nom_Prenom'}}
    """
    paths = [Path(f) for f in files]
    keys = file_keys(paths)
    parsed = _parse_specs(specs, paths, keys)
    headers = {k: list(_sniff_csv(p).header or ()) for k, p in zip(keys, paths, strict=True)}
    return _resolve_all(parsed, headers)


def _parse_specs(specs: Sequence[str], paths: Sequence[Path], keys: Sequence[str]) -> _Specs:
    parsed = _Specs({}, {k: {} for k in keys})
    for spec in specs:
        target, role, column = _parse_spec(spec)
        scope = parsed.every_file
        if target is not None:
            scope = parsed.per_file[_target_key(target, paths, keys, spec)]
        if role in scope and scope[role] != column:
            raise LinkInputError(
                f"le rôle « {role} » reçoit deux colonnes : « {scope[role]} » et « {column} »",
                code="map_role_repeated",
                details={"role": role},
                hint="une seule colonne par rôle (et par fichier avec FICHIER:RÔLE=COLONNE)",
            )
        scope[role] = column
    return parsed


def _parse_spec(spec: str) -> tuple[str | None, str, str]:
    left, equals, column = spec.partition("=")
    target, colon, role = left.rpartition(":")
    role, column, target = role.strip().lower(), column.strip(), target.strip()
    if not equals or not role or not column or (colon and not target):
        raise LinkInputError(
            f"correspondance « {spec} » mal formée",
            code="map_malformed",
            expected="RÔLE=COLONNE ou FICHIER:RÔLE=COLONNE, par exemple full_name=Nom",
            hint="rôles possibles : " + ", ".join(LINK_ROLES),
        )
    _check_role(role)
    return (target if colon else None), role, column


def _check_role(role: str) -> None:
    if role not in LINK_ROLES:
        raise LinkInputError(
            f"rôle « {role} » inconnu",
            code="map_role_unknown",
            details={"role": role},
            expected="un des rôles : " + ", ".join(LINK_ROLES),
            hint="full_name est un champ unique « NOM Prénom » ; identifier un identifiant "
            "commun aux fichiers",
        )


def _target_key(target: str, paths: Sequence[Path], keys: Sequence[str], spec: str) -> str:
    matches = [
        key
        for path, key in zip(paths, keys, strict=True)
        if target in (key, path.name) or Path(target) == path
    ]
    if len(matches) == 1:
        return matches[0]
    given = ", ".join(keys)
    if matches:
        raise LinkInputError(
            f"« {target} » (dans « {spec} ») désigne plusieurs fichiers : {', '.join(matches)}",
            code="map_file_ambiguous",
            hint=f"écrivez le chemin du fichier tel que donné : {given}",
        )
    raise LinkInputError(
        f"« {target} » (dans « {spec} ») ne désigne aucun des fichiers donnés",
        code="map_file_unknown",
        expected=f"un de : {given}",
        hint="écrivez le nom du fichier (ou son chemin tel que donné) avant « : »",
    )


def _resolve_all(parsed: _Specs, headers: Mapping[str, Sequence[str]]) -> dict[str, dict[str, str]]:
    return {
        key: _resolve(key, {**parsed.every_file, **parsed.per_file[key]}, header)
        for key, header in headers.items()
    }


def _resolve(file: str, roles: Mapping[str, str], header: Sequence[str]) -> dict[str, str]:
    """Each role's column as the header spells it (case, accents and punctuation ignored)."""
    by_key: dict[str, str] = {}
    for name in header:
        by_key.setdefault(normalise_header(name), name)
    resolved: dict[str, str] = {}
    for role, column in roles.items():
        _check_role(role)
        found = column if column in header else by_key.get(normalise_header(column))
        if found is None:
            raise LinkInputError(
                f"colonne absente de l'en-tête (rôle {role})",
                code="map_column_missing",
                file=file,
                field_name=column,
                expected="une colonne de l'en-tête : " + ", ".join(header),
                hint=f"pour ce fichier seulement : --map {file}:{role}=COLONNE",
            )
        resolved[role] = found
    if not any(role in resolved for role in NAME_ROLES):
        raise LinkInputError(
            "aucune colonne de nom n'est indiquée pour ce fichier",
            code="map_name_missing",
            file=file,
            expected="full_name (« NOM Prénom » en un champ) ou family_name (et given_name)",
            hint=f"par exemple --map {file}:family_name=COLONNE --map {file}:given_name=COLONNE",
        )
    return resolved


# --- reading CSV files ---------------------------------------------------------------------


def read_csv_file(path: Path) -> pa.Table:
    """Every column of a CSV file as text (empty cells null), encoding and delimiter detected
    as in ingestion. Raises ``InputFileError`` on a missing, unreadable or malformed file."""
    return _read_csv(_sniff_csv(Path(path)))


def _sniff_csv(path: Path) -> FileInfo:
    if path.exists() and path.suffix.lower() not in CSV_SUFFIXES:
        raise InputFileError(
            f"format « {path.suffix or '(sans extension)'} » non pris en charge pour la liaison",
            code="kind_unsupported",
            file=path,
            expected="un fichier CSV (.csv, .txt ou .tsv)",
            hint="exportez le fichier au format CSV",
        )
    return sniff_file(path)  # missing, empty, binary, truncated...: InputFileError


def _read_csv(info: FileInfo) -> pa.Table:
    import duckdb

    header = list(info.header or ())
    with tempfile.TemporaryDirectory(prefix="territoria-link-") as work:
        text = utf8_copy(info, Path(work))
        con = duckdb.connect()
        try:
            table = con.sql(_csv_sql(text, info.delimiter or ",", len(header))).to_arrow_table()
            rejected = con.execute(
                "SELECT line, any_value(error_type), any_value(csv_line) FROM reject_errors "
                "GROUP BY line ORDER BY line"
            ).fetchall()
        finally:
            con.close()
    if rejected:
        _malformed(info.path, rejected)
    return table.rename_columns(header)


def _csv_sql(path: Path, delimiter: str, width: int) -> str:
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    picks = ", ".join(f"CASE WHEN trim(c{i}) = '' THEN NULL ELSE c{i} END" for i in range(width))
    return (
        f"SELECT {picks} FROM read_csv({literal(str(path))}, delim={literal(delimiter)}, "
        f"header=true, quote='\"', escape='\"', auto_detect=false, columns={{{columns}}}, "
        "ignore_errors=true, store_rejects=true, max_line_size=1048576)"
    )


def _malformed(path: Path, rejected: list[tuple[Any, Any, Any]]) -> NoReturn:
    shown = "; ".join(
        f"ligne {line} ({_MALFORMED.get(str(kind), str(kind).lower())}) : « {str(text)[:80]} »"
        for line, kind, text in rejected[:_SHOWN]
    )
    raise InputFileError(
        f"{len(rejected)} ligne(s) mal formée(s) : {shown}",
        code="csv_malformed",
        file=path,
        line=int(rejected[0][0]),
        expected="le même nombre de champs que l'en-tête sur chaque ligne",
        hint="corrigez ces lignes (séparateur, guillemets) ; rien n'a été lié",
        details={"lines": [int(r[0]) for r in rejected]},
    )


# --- records to mentions -------------------------------------------------------------------


def frames_to_mentions(
    frames: Mapping[str, Frame], maps: Mapping[str, Mapping[str, str]]
) -> pa.Table:
    """One person mention (``MENTION_SCHEMA``) per row of each frame, in frame then row order.

    ``source`` is the frame's name; ``record_id`` its ``record_id`` column, or the row number
    (from 1) when none is mapped. Values are kept as text, ``identifier`` as is.
    """
    unknown = sorted(set(maps) - set(frames))
    if unknown:
        raise LinkInputError(
            f"correspondances données pour des tables absentes : {', '.join(unknown)}",
            code="map_file_unknown",
            expected="un de : " + ", ".join(frames),
        )
    parts = [_frame_mentions(name, frame, maps.get(name, {})) for name, frame in frames.items()]
    return pa.concat_tables(parts) if parts else MENTION_SCHEMA.empty_table()


def _frame_mentions(name: str, frame: Frame, roles: Mapping[str, str]) -> pa.Table:
    columns = _resolve(name, roles, _header(frame))
    n = _row_count(frame)
    ids = _record_ids(name, frame, columns.get(RECORD_ID), n)
    data: dict[str, Any] = {
        "mention_id": [mention_id(name, rid, SLOT) for rid in ids],
        "source": [name] * n,
        "record_id": ids,
        "slot": [SLOT] * n,
    }
    for role in ROLES:
        column = columns.get(role)
        data[role] = _text(frame, column) if column else pa.nulls(n, pa.string())
    return pa.table(data, schema=MENTION_SCHEMA)


def _record_ids(name: str, frame: Frame, column: str | None, n: int) -> list[str]:
    if column is None:
        return [str(i) for i in range(1, n + 1)]
    values: list[str | None] = _text(frame, column).to_pylist()
    empty = [i for i, v in enumerate(values, 1) if v is None]  # blank cells are null
    if empty:
        raise LinkInputError(
            f"{len(empty)} enregistrement(s) sans identifiant "
            f"(enregistrements n° {', '.join(map(str, empty[:_SHOWN]))}, comptés depuis 1)",
            code="record_id_empty",
            file=name,
            field_name=column,
            hint="chaque enregistrement doit avoir un identifiant, ou n'indiquez pas record_id "
            "(les numéros de ligne servent alors d'identifiants)",
        )
    counts = Counter(values)
    repeated = [str(v) for v, c in counts.items() if c > 1]
    if repeated:
        raise LinkInputError(
            f"{len(repeated)} identifiant(s) en double : "
            + ", ".join(f"« {v} »" for v in repeated[:_SHOWN]),
            code="record_id_duplicate",
            file=name,
            field_name=column,
            expected="un identifiant unique par enregistrement",
            hint="choisissez une colonne unique pour record_id, ou ne l'indiquez pas",
        )
    return [str(v) for v in values]


def _header(frame: Frame) -> list[str]:
    if isinstance(frame, pa.Table):
        return list(frame.column_names)
    return [str(c) for c in frame.columns]


def _row_count(frame: Frame) -> int:
    return frame.num_rows if isinstance(frame, pa.Table) else len(frame)


def _text(frame: Frame, column: str) -> pa.ChunkedArray:
    """A column as text: blank cells null, dates ISO, whole floats without ``.0``."""
    values = frame.column(column) if isinstance(frame, pa.Table) else _pandas_column(frame, column)
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        values = pc.strftime(values, "%Y-%m-%d")
    elif pa.types.is_floating(kind):
        values = pa.chunked_array([[_float_text(v) for v in values.to_pylist()]], pa.string())
    elif not pa.types.is_string(kind):
        values = values.cast(pa.string())
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), values)


def _float_text(value: float | None) -> str | None:
    if value is None or math.isnan(value):  # NaN: pandas' missing value
        return None
    return str(int(value)) if value.is_integer() else repr(value)


def _pandas_column(frame: pandas.DataFrame, column: str) -> pa.ChunkedArray:
    import pandas as pd

    series = frame[next(c for c in frame.columns if str(c) == column)]
    try:
        return pa.chunked_array([pa.Array.from_pandas(series)])
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in an object column
        texts = [None if pd.isna(v) is True else str(v) for v in series.tolist()]
        return pa.chunked_array([texts], pa.string())


# --- linking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Linked:
    table: pa.Table  # OUTPUT_SCHEMA
    result: LinkResult
    without_name: int  # records the feature builder dropped: each its own cluster


def link_frames(
    frames: Mapping[str, Frame],
    maps: Mapping[str, Mapping[str, str]],
    *,
    progress: Progress = lambda _: None,
) -> pa.Table:
    """Persons among the records of ``frames`` (pandas DataFrames or Arrow tables, by name).

    ``maps`` gives, for each frame, the column of each role it has (``LINK_ROLES``: at least
    ``full_name`` or ``family_name``; ``record_id`` defaults to the row number from 1). One
    frame is deduplicated, several are linked. Returns one row per record, in frame then row
    order: ``file`` (the frame's name), ``record_id``, ``cluster_id`` (``C000001``... numbered
    by first appearance). Records without a usable name each get a cluster of their own.

    >>> import pandas as pd
    >>> water = pd.DataFrame({"contrat": ["W1", "W2"], "titulaire": ["TESTMAN Alpha", "TESTMAN Beta"],
    ...                       "naissance": ["01/02/1980", "03/04/1985"]})
    >>> school = pd.DataFrame({"nom": ["Testman"], "prenom": ["Alpha"], "ddn": ["1980-02-01"]})
    >>> link_frames(  # doctest: +SKIP
    ...     {"eau": water, "ecole": school},
    ...     {"eau": {"record_id": "contrat", "full_name": "titulaire", "birth_date": "naissance"},
    ...      "ecole": {"family_name": "nom", "given_name": "prenom", "birth_date": "ddn"}},
    ... ).to_pandas()
        file record_id cluster_id
    0    eau        W1    C000001
    1    eau        W2    C000002
    2  ecole         1    C000001
    """
    return _link(frames, maps, progress).table


def _link(
    frames: Mapping[str, Frame], maps: Mapping[str, Mapping[str, str]], progress: Progress
) -> _Linked:
    mentions = frames_to_mentions(frames, maps)
    result = _link_mentions(mentions, progress)
    label = dict(
        zip(
            result.clusters.column("unique_id").to_pylist(),
            result.clusters.column("cluster").to_pylist(),
            strict=True,
        )
    )
    numbers: dict[str, str] = {}  # cluster label → readable id, by first appearance
    cluster_ids, without_name = [], 0
    for mid in mentions.column("mention_id").to_pylist():
        without_name += mid not in label
        cluster = label.get(mid, mid)  # dropped by the feature builder: a cluster of its own
        cluster_ids.append(numbers.setdefault(cluster, f"C{len(numbers) + 1:06d}"))
    table = pa.table(
        [mentions.column("source"), mentions.column("record_id"), pa.array(cluster_ids)],
        schema=OUTPUT_SCHEMA,
    )
    return _Linked(table, result, without_name)


def _link_mentions(mentions: pa.Table, progress: Progress) -> LinkResult:
    from splink.internals.exceptions import EMTrainingException  # Splink 5 (pinned)

    try:
        return link_mentions(mentions, shared_identifiers=True, progress=progress)
    except EMTrainingException as exc:  # no pair to learn from (no birth dates, few records)
        raise LinkInputError(
            "trop peu de paires d'enregistrements comparables pour entraîner le modèle de liaison",
            code="link_training_failed",
            expected="des dates de naissance (rôle birth_date) et au moins quelques centaines "
            "d'enregistrements",
            hint="indiquez la colonne des dates de naissance si les fichiers en ont une "
            "(--map birth_date=COLONNE)",
            details={"cause": str(exc).splitlines()[0]},
        ) from exc


@dataclass(frozen=True)
class LinkSummary:
    """What ``link_files`` did, for the terminal (``lines_fr``) and ``--json`` (``as_dict``)."""

    out: Path
    files: int
    records: int
    clusters: int
    clusters_with_several: int  # clusters of more than one record
    records_without_name: int  # no usable name: each its own cluster
    threshold: float  # match probability from which two records are the same person
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "files": self.files,
            "records": self.records,
            "clusters": self.clusters,
            "clusters_with_several": self.clusters_with_several,
            "records_without_name": self.records_without_name,
            "threshold": self.threshold,
            "seconds": self.seconds,
        }

    def lines_fr(self) -> list[str]:
        job = "dédoublonnage" if self.files == 1 else "liaison"
        lines = [
            f"{job} de {_fr(self.records, 'enregistrement')} ({_fr(self.files, 'fichier')})",
            f"{_fr(self.clusters, 'personne distincte', 'personnes distinctes')}, dont "
            f"{_fr(self.clusters_with_several, 'regroupement')} de plusieurs enregistrements",
        ]
        if self.records_without_name:
            lines.append(
                f"{_fr(self.records_without_name, 'enregistrement')} sans nom exploitable "
                "(vide ou organisation) : chacun reste seul"
            )
        threshold, seconds = f"{self.threshold:.3f}", f"{self.seconds:.1f}"
        lines.append(f"seuil de décision : probabilité {threshold.replace('.', ',')}")
        lines.append(f"résultat écrit dans {self.out} en {seconds.replace('.', ',')} s")
        return lines


def _fr(n: int, singular: str, plural: str | None = None) -> str:
    """``1 fichier``, ``12\u202f345 fichiers``: French digit grouping and plural."""
    noun = singular if n < 2 else plural or singular + "s"
    return f"{n:,}".replace(",", "\u202f") + f" {noun}"


def link_files(
    paths: Sequence[Path],
    map_specs: Sequence[str],
    out: Path,
    *,
    progress: Progress = lambda _: None,
) -> LinkSummary:
    """Link (or, for one file, deduplicate) CSV files and write ``file,record_id,cluster_id``
    to ``out`` (UTF-8, comma, replaced atomically). ``map_specs`` as for ``parse_maps``."""
    start = time.perf_counter()
    paths, out = [Path(p) for p in paths], Path(out)
    if not paths:
        raise LinkInputError(
            "aucun fichier à lier", code="no_files", hint="donnez un ou plusieurs CSV"
        )
    keys = file_keys(paths)
    parsed = _parse_specs(map_specs, paths, keys)
    _check_output(out, paths)
    frames: dict[str, pa.Table] = {}
    for key, path in zip(keys, paths, strict=True):
        progress(f"lecture de {key}")
        frames[key] = read_csv_file(path)
    maps = _resolve_all(parsed, {k: t.column_names for k, t in frames.items()})
    linked = _link(frames, maps, progress)
    progress(f"écriture de {out}")
    _write_atomically(linked.table, out)
    counts = Counter(linked.table.column("cluster_id").to_pylist())
    return LinkSummary(
        out=out,
        files=len(paths),
        records=linked.table.num_rows,
        clusters=len(counts),
        clusters_with_several=sum(1 for c in counts.values() if c > 1),
        records_without_name=linked.without_name,
        threshold=linked.result.threshold,
        seconds=round(time.perf_counter() - start, 2),
    )


def _check_output(out: Path, inputs: Sequence[Path]) -> None:
    for path in inputs:
        if out.resolve() == path.resolve() or (
            out.exists() and path.exists() and out.samefile(path)
        ):
            raise LinkInputError(
                "le fichier de sortie est un des fichiers à lier",
                code="output_is_input",
                file=out,
                hint="choisissez un autre nom pour --out : les fichiers donnés ne sont jamais "
                "modifiés",
            )
    if out.is_dir() or not out.parent.is_dir():
        raise LinkInputError(
            "le dossier de sortie n'existe pas" if not out.parent.is_dir() else "c'est un dossier",
            code="output_invalid",
            file=out,
            expected="un chemin de fichier dans un dossier existant",
        )


def _write_atomically(table: pa.Table, out: Path) -> None:
    """Write to a temporary file beside ``out``, then rename: ``out`` is never half-written."""
    temp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"  # "x": the umask applies
    try:
        with temp.open("x", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(OUTPUT_COLUMNS)
            columns = (table.column(c).to_pylist() for c in OUTPUT_COLUMNS)
            writer.writerows(zip(*columns, strict=True))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, out)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise TerritoriaError(
            f"écriture impossible : {exc.strerror or exc}",
            code="output_write_failed",
            file=out,
            hint="vérifiez l'espace disque et les droits sur le dossier",
        ) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise

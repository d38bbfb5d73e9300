"""The register of processing activities (GDPR art. 30) as a file a DPO files and publishes.

The register is generated from the policy (``register.yaml``, ``actors.yaml``) and the source
contracts, so it cannot drift from what the governed read enforces: the data listed for each
purpose are the fields that purpose may actually see (``decide.visible_fields``), grouped by
category, with each source's title. The columns follow the CNIL's register template ("Modèle
de registre"): controller, purposes, legal basis, persons, data categories, recipients,
transfers, retention, security measures, plus what Territoria adds (output form, proactive
processing, consent, DPIA).

Four renderings of the same rows: CSV for Excel in French (``;``, UTF-8 with BOM), ODS for
LibreOffice, JSON for tools, and a public HTML page: the CADA holds the register to be a
communicable administrative document, so the page names no agent, only the controller and
the DPO's contact. Every file is written beside its target, then renamed, so a reader never
sees half a register.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape

from territoria.core.contract import SourceContract
from territoria.core.errors import TerritoriaError
from territoria.core.files import write_atomically
from territoria.core.types import FIELD_CATEGORY_LABELS, LEGAL_BASIS_LABELS
from territoria.governance.decide import visible_fields
from territoria.governance.policy import OUTPUT_LABELS, Policy, Purpose
from territoria.ingest.catalog import ContractCatalog

__all__ = [
    "REGISTER_COLUMNS",
    "REGISTER_FORMATS",
    "RegisterFormat",
    "plain_durations",
    "register_rows",
    "render_register_html",
    "write_register",
    "write_register_csv",
    "write_register_json",
    "write_register_ods",
]

RegisterFormat = Literal["csv", "ods", "html", "json"]

REGISTER_COLUMNS: list[tuple[str, str]] = [
    ("name", "Nom du traitement / finalité"),
    ("reference", "Référence"),
    ("controller", "Responsable du traitement"),
    ("service", "Service mettant en œuvre"),
    ("description", "Finalité(s) (description)"),
    ("legal_basis", "Base légale (art. 6)"),
    ("legal_reference", "Référence juridique"),
    ("special_category_basis", "Base art. 9 (catégories particulières)"),
    ("persons", "Catégories de personnes concernées"),
    ("data_categories", "Catégories de données"),
    ("sources", "Sources"),
    ("recipients", "Destinataires"),
    ("transfers", "Transferts hors UE"),
    ("retention", "Durée de conservation"),
    ("security", "Mesures de sécurité"),
    ("output", "Forme des résultats"),
    ("proactive", "Traitement proactif (droit d'opposition)"),
    ("consent", "Consentement requis"),
    ("dpia", "AIPD"),
    ("dpo", "Délégué à la protection des données"),
    ("updated", "Date de mise à jour"),
]

NOT_GIVEN = "Non renseigné"
# What the platform itself guarantees for every purpose (deny by default, one ledger record
# per read); a purpose's own ``security`` text is added to it.
BASELINE_SECURITY = (
    "Accès réservé aux rôles habilités pour cette finalité (refus par défaut) ; "
    "chaque consultation est journalisée"
)
REGISTER_FORMATS: tuple[str, ...] = RegisterFormat.__args__  # type: ignore[attr-defined]
_ISO_DURATION = re.compile(r"(?<![\w-])P(?:\d+[YMWD])+(?!\w)")
_DURATION_PART = re.compile(r"(\d+)([YMWD])")
_DURATION_WORDS = {"Y": ("an", "ans"), "M": ("mois", "mois"), "W": ("semaine", "semaines"),
                   "D": ("jour", "jours")}  # fmt: skip


# --- the register as data ---------------------------------------------------------------------


def _data_groups(
    purpose: Purpose, policy: Policy, catalog: ContractCatalog
) -> list[dict[str, Any]]:
    """The fields a purpose sees, by category then source, with their French titles."""
    seen = visible_fields(policy, purpose, catalog.contracts)
    groups: list[dict[str, Any]] = []
    for category, label in FIELD_CATEGORY_LABELS.items():
        sources = []
        for source, names in sorted(seen.items()):
            contract = catalog.contracts[source]
            titles = [
                f.title or f.name
                for f in contract.fields
                if f.category == category and f.name in names
            ]
            if titles:
                sources.append({"source": source, "title": contract.title, "fields": titles})
        if sources:
            groups.append({"category": category, "label": label, "sources": sources})
    return groups


def _source_entry(source: str, contract: SourceContract | None) -> dict[str, str]:
    if contract is None:
        return {"id": source, "title": f"{source} (source sans contrat)", "operator": ""}
    operator = contract.operator.name if contract.operator else ""
    return {"id": source, "title": contract.title, "operator": operator}


def _duration_fr(match: re.Match[str]) -> str:
    parts = []
    for number, unit in _DURATION_PART.findall(match.group(0)):
        singular, plural = _DURATION_WORDS[unit]
        parts.append(f"{number} {singular if int(number) <= 1 else plural}")
    return " et ".join(parts)


def plain_durations(text: str | None) -> str:
    """ISO 8601 durations in a text, in words: ``P5Y après la fin`` → ``5 ans après la fin``."""
    return _ISO_DURATION.sub(_duration_fr, text or "")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _controller(policy: Policy, purpose: Purpose) -> str:
    if purpose.controller:
        return purpose.controller
    c = policy.controller
    return f"{c.name}, {c.address}" if c.address else c.name


def _dpo(policy: Policy) -> str:
    c = policy.controller
    return " — ".join(x for x in (c.dpo_name, c.dpo_contact) if x) or "Non désigné"


def _purpose_view(
    purpose: Purpose, policy: Policy, catalog: ContractCatalog, updated: str
) -> dict[str, Any]:
    """Everything the register says of one purpose, structured (lists stay lists)."""
    service = policy.services.get(purpose.service)
    basis = purpose.legal_basis
    return {
        "name": purpose.name,
        "reference": purpose.id,
        "controller": _controller(policy, purpose),
        "service": service.name if service else purpose.service,
        "description": purpose.description or purpose.name,
        "legal_basis": LEGAL_BASIS_LABELS[basis] if basis else NOT_GIVEN,
        "legal_reference": purpose.legal_reference or NOT_GIVEN,
        "special_category_basis": purpose.special_category_basis
        or "Sans objet (aucune donnée de catégorie particulière)",
        "persons": purpose.persons,
        "data_groups": _data_groups(purpose, policy, catalog),
        "sources": [_source_entry(s, catalog.contracts.get(s)) for s in sorted(purpose.sources)],
        "recipients": purpose.recipients,
        "transfers": purpose.transfers or NOT_GIVEN,
        "retention": plain_durations(purpose.retention) or NOT_GIVEN,
        "security": ". ".join(x.rstrip(".") for x in (BASELINE_SECURITY, purpose.security) if x),
        "output": _capitalised(OUTPUT_LABELS[purpose.output]),
        "proactive": purpose.proactive,
        "consent": purpose.optional,
        "dpia": purpose.dpia or "Aucune AIPD référencée",
        "dpo": _dpo(policy),
        "transparency_delay": plain_durations(purpose.transparency_delay),
        "updated": updated,
    }


def _flat_data(groups: list[dict[str, Any]]) -> str:
    if not groups:
        return "Aucune donnée issue des sources"
    lines = []
    for group in groups:
        per_source = " ; ".join(
            f"{s['title']} ({', '.join(s['fields'])})" for s in group["sources"]
        )
        lines.append(f"{group['label']} : {per_source}")
    return "\n".join(lines)


def _flat_sources(sources: list[dict[str, str]]) -> str:
    if not sources:
        return "Aucune source de données (journaux de la plateforme uniquement)"
    return " ; ".join(
        f"{s['title']} ({s['id']})" + (f", délégataire {s['operator']}" if s["operator"] else "")
        for s in sources
    )


def _row(view: dict[str, Any]) -> dict[str, str]:
    flat = {
        **{key: view[key] for key, _header in REGISTER_COLUMNS if isinstance(view.get(key), str)},
        "persons": " ; ".join(view["persons"]) or NOT_GIVEN,
        "data_categories": _flat_data(view["data_groups"]),
        "sources": _flat_sources(view["sources"]),
        "recipients": " ; ".join(view["recipients"]) or NOT_GIVEN,
        "proactive": "Oui : les résidents peuvent s'y opposer (RGPD art. 21)"
        if view["proactive"]
        else "Non",
        "consent": "Oui : seuls les résidents qui ont consenti, retrait à tout moment"
        if view["consent"]
        else "Non",
    }
    return {key: flat[key] for key, _header in REGISTER_COLUMNS}


def _views(policy: Policy, catalog: ContractCatalog, updated: str | None) -> list[dict[str, Any]]:
    day = updated or date.today().isoformat()
    return [_purpose_view(p, policy, catalog, day) for p in policy.purposes.values()]


def register_rows(
    policy: Policy, catalog: ContractCatalog, *, updated: str | None = None
) -> list[dict[str, str]]:
    """One row per purpose, keyed by ``REGISTER_COLUMNS`` (``updated`` defaults to today).

    >>> from territoria.governance.policy import load_policy
    >>> rows = register_rows(load_policy(), ContractCatalog.load(), updated="2026-01-01")
    >>> rows[0]["legal_basis"]
    "Mission d'intérêt public (RGPD art. 6-1-e)"
    """
    return [_row(view) for view in _views(policy, catalog, updated)]


# --- files ------------------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, data, what="registre")


def write_register_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """``;``-separated, UTF-8 with BOM: Excel in French opens it with accents and columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([header for _key, header in REGISTER_COLUMNS])
    writer.writerows([row.get(key, "") for key, _header in REGISTER_COLUMNS] for row in rows)
    _write_atomically(path, buffer.getvalue().encode("utf-8-sig"))


def _ods_cell(text: str, style: Any = None) -> Any:
    from odf.table import TableCell
    from odf.text import P

    cell = (
        TableCell(valuetype="string", stylename=style) if style else TableCell(valuetype="string")
    )
    for line in text.split("\n"):
        cell.addElement(P(text=line))
    return cell


def write_register_ods(path: Path, rows: list[dict[str, str]]) -> None:
    """One sheet « Registre », header row in bold, multi-line cells as paragraphs."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TextProperties
    from odf.table import Table, TableRow

    doc = OpenDocumentSpreadsheet()
    bold = Style(name="Entete", family="table-cell")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
    sheet = Table(name="Registre")
    header = TableRow()
    for _key, title in REGISTER_COLUMNS:
        header.addElement(_ods_cell(title, bold))
    sheet.addElement(header)
    for row in rows:
        line = TableRow()
        for key, _title in REGISTER_COLUMNS:
            line.addElement(_ods_cell(row.get(key, "")))
        sheet.addElement(line)
    doc.spreadsheet.addElement(sheet)
    buffer = io.BytesIO()
    doc.write(buffer)
    _write_atomically(path, buffer.getvalue())


def _register_document(
    policy: Policy, catalog: ContractCatalog, updated: str | None
) -> dict[str, Any]:
    rows = register_rows(policy, catalog, updated=updated)
    c = policy.controller
    return {
        "controller": {
            "name": c.name,
            "address": c.address,
            "dpo_name": c.dpo_name,
            "dpo_contact": c.dpo_contact,
        },
        "updated": rows[0]["updated"] if rows else (updated or date.today().isoformat()),
        "policy_digest": policy.digest,
        "columns": [{"key": k, "header": h} for k, h in REGISTER_COLUMNS],
        "purposes": rows,
    }


def write_register_json(
    path: Path, policy: Policy, catalog: ContractCatalog, *, updated: str | None = None
) -> None:
    """The rows with their headers, the controller and the policy digest they come from."""
    document = _register_document(policy, catalog, updated)
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    _write_atomically(path, text.encode("utf-8"))


def render_register_html(
    policy: Policy, catalog: ContractCatalog, *, updated: str | None = None
) -> str:
    """The public register: a self-contained French page with no agent's name."""
    views = _views(policy, catalog, updated)
    folder = str(resources.files("territoria.governance") / "templates")
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]))
    return env.get_template("register.html").render(
        controller=policy.controller,
        purposes=views,
        updated=updated or date.today().isoformat(),
        legal_basis_labels=LEGAL_BASIS_LABELS,
    )


def write_register(
    path: Path,
    policy: Policy,
    catalog: ContractCatalog,
    fmt: RegisterFormat,
    *,
    updated: str | None = None,
) -> Path:
    """Write the register in ``fmt``; a folder gets ``registre-des-traitements.<fmt>``."""
    if fmt not in REGISTER_FORMATS:
        raise TerritoriaError(
            f"format de registre inconnu : {fmt!r}",
            code="format_unknown",
            expected=", ".join(REGISTER_FORMATS),
        )
    if path.is_dir():
        path = path / f"registre-des-traitements.{fmt}"
    if fmt == "csv":
        write_register_csv(path, register_rows(policy, catalog, updated=updated))
    elif fmt == "ods":
        write_register_ods(path, register_rows(policy, catalog, updated=updated))
    elif fmt == "json":
        write_register_json(path, policy, catalog, updated=updated)
    else:
        html = render_register_html(policy, catalog, updated=updated)
        _write_atomically(path, html.encode("utf-8"))
    return path

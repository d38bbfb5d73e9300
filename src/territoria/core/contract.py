"""Source contracts: a Table Schema plus who owns the data, why it is held, and how.

A contract is a YAML file a DPO can read. It follows the frictionless Table Schema conventions
used on schema.data.gouv.fr (``fields`` with ``name``, ``type``, ``format``, ``constraints``,
``missingValues``), and adds what a local authority must know of each source: owner service,
delegated operator, legal basis, the category of each field, the fields used for linking,
retention, delivery frequency and the policy when the source's columns drift.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from territoria.core.errors import ContractError
from territoria.core.types import FieldCategory, LegalBasis

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime", "year"]
Frequency = Literal[
    "continuous", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "on_demand"
]
LinkageRole = Literal[
    "record_id",
    "full_name",
    "given_name",
    "family_name",
    "birth_name",
    "birth_date",
    "sex",
    "address",
    "street_number",
    "street_name",
    "postcode",
    "commune",
    "phone",
    "email",
    "identifier",
    "household_id",
]
__all__ = [
    "AttachedTo",
    "Constraints",
    "Delivery",
    "FieldSpec",
    "FieldType",
    "FileFormat",
    "Frequency",
    "Linkage",
    "LinkageRole",
    "Operator",
    "PersonSlot",
    "Relationship",
    "Retention",
    "SchemaDrift",
    "SourceContract",
    "TableSchema",
    "load_contract",
    "normalise_header",
]

_UNSUPPORTED_REGEX = re.compile(r"\(\?<?[=!]|\\[1-9]")


def _parses_as_number(value: str, *, integer: bool) -> bool:
    try:
        int(value) if integer else float(value)
    except ValueError:
        return False
    return True


_ISO_DURATION = re.compile(r"^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Constraints(_Strict):
    """Table Schema constraints checked, vectorised, on every row."""

    required: bool = False
    enum: list[str] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = Field(default=None, alias="minLength")
    max_length: int | None = Field(default=None, alias="maxLength")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class FieldSpec(_Strict):
    """One column of a source: its Table Schema description and its category."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType = "string"
    title: str | None = None
    description: str | None = None
    category: FieldCategory
    format: str | list[str] | None = None
    aliases: list[str] = Field(default_factory=list)
    constraints: Constraints = Field(default_factory=Constraints)
    decimal_char: str = Field(default=".", alias="decimalChar")
    group_char: str | None = Field(default=None, alias="groupChar")
    true_values: list[str] = Field(
        default_factory=lambda: ["true", "True", "TRUE", "1", "oui", "Oui", "OUI", "O"],
        alias="trueValues",
    )
    false_values: list[str] = Field(
        default_factory=lambda: ["false", "False", "FALSE", "0", "non", "Non", "NON", "N"],
        alias="falseValues",
    )

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> FieldSpec:
        c = self.constraints
        numeric = self.type in ("integer", "number", "year")
        if (c.minimum is not None or c.maximum is not None) and not numeric:
            raise ValueError(
                "minimum/maximum ne s'appliquent qu'aux champs integer, number ou year"
            )
        if (c.min_length is not None or c.max_length is not None) and self.type != "string":
            raise ValueError("minLength/maxLength ne s'appliquent qu'aux champs string")
        if set(self.true_values) & set(self.false_values):
            raise ValueError("trueValues et falseValues ont des valeurs communes")
        if c.pattern is not None and _UNSUPPORTED_REGEX.search(c.pattern):
            raise ValueError(
                "pattern : les assertions (?=, (?!, (?<= et les références arrière \\1 "
                "ne sont pas prises en charge par le moteur de contrôle (RE2)"
            )
        for value in c.enum or []:
            if numeric and not _parses_as_number(value, integer=self.type != "number"):
                raise ValueError(f"enum : « {value} » n'est pas une valeur de type {self.type}")
        return self

    @property
    def formats(self) -> list[str]:
        """The strptime formats accepted for a date, datetime or year field."""
        if self.format is None or self.format == "default":
            return {
                "date": ["%Y-%m-%d"],
                "datetime": ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
                "year": ["%Y"],
            }.get(self.type, [])
        return [self.format] if isinstance(self.format, str) else list(self.format)

    def header_names(self) -> list[str]:
        """Names a header may use for this field: its name, then its aliases."""
        return [self.name, *self.aliases]


class TableSchema(_Strict):
    fields: list[FieldSpec]
    missing_values: list[str] = Field(default_factory=lambda: [""], alias="missingValues")
    primary_key: list[str] = Field(default_factory=list, alias="primaryKey")


class Operator(_Strict):
    """A delegated operator (délégation de service public) or contractor."""

    name: str
    siret: str | None = Field(default=None, pattern=r"^\d{14}$")
    contract_reference: str | None = None
    contract_end: str | None = None


class Retention(_Strict):
    duration: str = Field(description="ISO 8601 duration, e.g. P5Y")
    starts: str = "from_record_date"
    final_fate: Literal["eliminate", "archive", "sort"] = "eliminate"
    reference: str | None = None
    date_field: str | None = Field(
        default=None,
        description="date or datetime field whose value starts the retention clock",
    )

    @field_validator("duration")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if not _ISO_DURATION.match(value) or value == "P":
            raise ValueError("durée ISO 8601 attendue, par exemple P5Y ou P18M")
        return value


class Delivery(_Strict):
    frequency: Frequency
    description: str | None = None


class FileFormat(_Strict):
    """Hints on how the files of this source are written; ``auto`` means detected."""

    kind: Literal["auto", "csv", "json", "ndjson", "parquet", "xlsx"] = "auto"
    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | None = None


class SchemaDrift(_Strict):
    """What happens when a delivery's columns differ from the contract (dlt's schema contracts).

    ``new_columns``: ``ignore`` drops unknown columns and records them on the load, ``keep``
    stores them as text, ``reject`` fails the load. ``missing_optional_columns``: ``allow``
    loads them as empty, ``reject`` fails the load. A missing required column always fails.
    """

    new_columns: Literal["ignore", "keep", "reject"] = "ignore"
    missing_optional_columns: Literal["allow", "reject"] = "allow"


class PersonSlot(_Strict):
    """One person a row describes (a row may describe several: a pupil and two guardians)."""

    slot: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    roles: dict[LinkageRole, str]


class Relationship(_Strict):
    """A relationship a row states between two of its person slots."""

    kind: Literal["guardian_of", "household_member", "co_holder"]
    from_slot: str
    to_slot: str
    description: str | None = None


class AttachedTo(_Strict):
    """Events that name no person but belong to a record of another source (a bin's lifts).

    A row belongs to the row of ``source`` whose ``parent_key`` equals its ``key`` and whose
    period [``parent_from``, ``parent_until``) holds its ``at`` date (an empty end: still
    running): it is about that record's persons, and the governed reads attribute it to them
    (a resident sees the lifts of their own bin while it was theirs, not the previous
    occupant's).
    """

    source: str
    key: str
    parent_key: str
    at: str
    parent_from: str | None = None
    parent_until: str | None = None


class Linkage(_Strict):
    """Which fields play which role for record linkage (only ``identifying`` fields).

    ``record_id`` names the field that identifies a row within the source; ``persons`` lists
    the persons a row describes, each with its role → field map; ``relationships`` the links
    between them that the source states; ``dwelling`` the fields that give the address a row
    is about (service address, bin address), used to form households.
    """

    record_id: str | None = None
    persons: list[PersonSlot] = Field(default_factory=list)
    relationships: list[Relationship] = Field(default_factory=list)
    dwelling: dict[LinkageRole, str] = Field(default_factory=dict)
    attached_to: AttachedTo | None = None


def _check_attached(attached: AttachedTo | None, by_name: dict[str, FieldSpec]) -> None:
    """``linkage.attached_to`` names fields of the source, ``at`` a date or datetime one."""
    if attached is None:
        return
    for role, name in (("key", attached.key), ("at", attached.at)):
        if name not in by_name:
            raise ValueError(f"linkage.attached_to.{role} désigne un champ inconnu : {name}")
    if by_name[attached.at].type not in ("date", "datetime"):
        raise ValueError(
            f"linkage.attached_to.at désigne « {attached.at} », qui n'est pas de type date ou "
            "datetime"
        )


def _check_retention_date_field(retention: Retention, by_name: dict[str, FieldSpec]) -> None:
    """``retention.date_field`` must name a date or datetime field of the source."""
    name = retention.date_field
    if name is None:
        return
    if name not in by_name:
        raise ValueError(f"retention.date_field désigne un champ inconnu : {name}")
    if by_name[name].type not in ("date", "datetime"):
        raise ValueError(
            f"retention.date_field désigne « {name} », qui n'est pas de type date ou datetime"
        )


class SourceContract(_Strict):
    """A source's data contract (see the module docstring)."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str
    description: str | None = None
    owner_service: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    operator: Operator | None = None
    legal_basis: LegalBasis
    legal_reference: str
    special_category_basis: str | None = None
    retention: Retention
    delivery: Delivery
    file_format: FileFormat = Field(default_factory=FileFormat)
    schema_drift: SchemaDrift = Field(default_factory=SchemaDrift)
    linkage: Linkage = Field(default_factory=Linkage)
    table_schema: TableSchema = Field(alias="schema")

    @model_validator(mode="after")
    def _consistent(self) -> SourceContract:
        names = [f.name for f in self.table_schema.fields]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"champs en double : {sorted(duplicates)}")
        by_name = {f.name: f for f in self.table_schema.fields}
        for role, name in self._linkage_fields():
            if name not in by_name:
                raise ValueError(f"linkage.{role} désigne un champ inconnu : {name}")
            if by_name[name].category != "identifying" and role != "record_id":
                raise ValueError(
                    f"linkage.{role} désigne « {name} », qui n'est pas une donnée d'identification"
                )
        slots = {p.slot for p in self.linkage.persons}
        for rel in self.linkage.relationships:
            for slot in (rel.from_slot, rel.to_slot):
                if slot not in slots:
                    raise ValueError(f"linkage.relationships désigne un slot inconnu : {slot}")
        _check_attached(self.linkage.attached_to, by_name)
        for key in self.table_schema.primary_key:
            if key not in by_name:
                raise ValueError(f"primaryKey désigne un champ inconnu : {key}")
        _check_retention_date_field(self.retention, by_name)
        has_special = any(f.category == "special_category" for f in self.table_schema.fields)
        if has_special and not self.special_category_basis:
            raise ValueError(
                "des champs de catégorie particulière exigent special_category_basis (RGPD art. 9)"
            )
        return self

    def _linkage_fields(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.linkage.record_id:
            pairs.append(("record_id", self.linkage.record_id))
        for person in self.linkage.persons:
            pairs.extend((f"{person.slot}.{role}", name) for role, name in person.roles.items())
        pairs.extend((f"dwelling.{role}", name) for role, name in self.linkage.dwelling.items())
        return pairs

    @property
    def fields(self) -> list[FieldSpec]:
        return self.table_schema.fields

    def field(self, name: str) -> FieldSpec:
        for spec in self.table_schema.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def fields_of(self, *categories: FieldCategory) -> list[FieldSpec]:
        return [f for f in self.table_schema.fields if f.category in categories]

    @property
    def is_delegated(self) -> bool:
        return self.operator is not None


def load_contract(path: Path) -> SourceContract:
    """Read one contract file; a ``ContractError`` names the file and the faulty key."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContractError(
            f"contrat illisible : {exc}", code="contract_unreadable", file=path
        ) from None
    if not isinstance(data, dict):
        raise ContractError(
            "un contrat doit être un objet YAML", code="contract_invalid", file=path
        )
    try:
        return SourceContract.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        raise ContractError(
            f"contrat invalide : {first['msg']}",
            code="contract_invalid",
            file=path,
            field_name=location or None,
            details={"errors": len(exc.errors())},
        ) from None


def normalise_header(text: str) -> str:
    """Header comparison key: no accents, no case, no punctuation (``"N° Contrat"`` → ``n_contrat``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")

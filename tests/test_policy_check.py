"""``territoria policy check``: one test per rule, each pointing at the file and line at fault.

Every test writes a small valid policy into ``tmp_path``, breaks one thing, and asserts the
finding's code, severity, file and line. The shipped sandbox policy must raise no error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from territoria.governance.lint import RULE_CODES, Finding, check_policy
from territoria.governance.policy import VIEWS, load_policy
from territoria.ingest.catalog import ContractCatalog

REGISTER = """\
controller:
  name: Commune de Test
  dpo_contact: dpo@test.example
purposes:
  - id: social_support
    name: Accompagnement social
    service: ccas
    legal_basis: public_task
    legal_reference: CASF art. L123-5
    special_category_basis: RGPD art. 9-2-b
    sources:
      ccas_aid: "*"
      library_members: [card_number, family_name]
    scope:
      known_to: [ccas_aid]
    retention: P5Y après la dernière aide
    recipients: [Travailleurs sociaux]
  - id: lending
    name: Prêts des médiathèques
    service: lecture_publique
    legal_basis: public_task
    legal_reference: Code du patrimoine art. L310-1
    sources:
      library_members: "*"
    retention: P1Y
    recipients: [Médiathèques]
  - id: water_billing
    name: Facturation de l'eau
    service: eau_assainissement
    legal_basis: contract
    legal_reference: Règlement du service de l'eau
    sources:
      water_subscribers: "*"
    retention: P5Y
    transparency_delay: P6M
    recipients: [Service de l'eau]
  - id: synergies
    name: Usagers communs (agrégé)
    service: donnees
    legal_basis: public_task
    legal_reference: CGCT art. L2121-29
    sources:
      ccas_aid: [aid_id]
      library_members: [card_number]
    output: aggregate
    retention: P5Y
    recipients: [Direction générale]
"""

ACTORS = """\
services:
  - {id: ccas, name: CCAS, social: true}
  - {id: lecture_publique, name: Médiathèques}
  - {id: eau_assainissement, name: Eau}
  - {id: donnees, name: Données}
roles:
  - id: social_worker
    name: Travailleur social
    service: ccas
    grants:
      - {purpose: social_support, views: [person_360, search]}
  - id: librarian
    name: Bibliothécaire
    service: lecture_publique
    grants:
      - {purpose: lending, views: [person_360, search]}
  - id: water_agent
    name: Agent de l'eau
    service: eau_assainissement
    grants:
      - {purpose: water_billing, views: [records]}
  - id: data_officer
    name: Administrateur des données
    service: donnees
    grants:
      - {purpose: synergies, views: [synergies, count]}
agents:
  - {id: claire.ccas, name: Claire Test, roles: [social_worker]}
  - {id: lea.biblio, name: Léa Test, roles: [librarian]}
operators:
  - {id: eaux-test, name: Eaux Test, service: eau_assainissement, sources: [water_subscribers]}
"""

SOURCES = ("ccas_aid", "library_members", "water_subscribers")

ANOTHER_PURPOSE = """\
  - id: extra
    name: Finalité ajoutée
    service: {service}
    legal_basis: {basis}
    legal_reference: Texte de référence
    sources:
      {source}: {fields}
{more}    retention: P1Y
    recipients: [Quelqu'un]
"""


def _catalog(*source_ids: str) -> ContractCatalog:
    full = ContractCatalog.load()
    keep = source_ids or SOURCES
    return ContractCatalog({s: full.contracts[s] for s in keep}, {s: full.origins[s] for s in keep})


@dataclass
class Checked:
    findings: list[Finding]
    folder: Path
    register: str
    actors: str

    def only(self, code: str) -> Finding:
        hits = [f for f in self.findings if f.code == code]
        assert len(hits) == 1, (code, self.findings)
        return hits[0]

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def line(self, needle: str, *, actors: bool = False, nth: int = 1) -> int:
        """The 1-based line of the ``nth`` line containing ``needle``."""
        text = self.actors if actors else self.register
        lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
        return lines[nth - 1]

    @property
    def register_file(self) -> str:
        return str(self.folder / "register.yaml")

    @property
    def actors_file(self) -> str:
        return str(self.folder / "actors.yaml")


def check(
    tmp_path: Path,
    *,
    register: str = REGISTER,
    actors: str = ACTORS,
    catalog: ContractCatalog | None = None,
) -> Checked:
    folder = tmp_path / "policy"
    folder.mkdir(exist_ok=True)
    (folder / "register.yaml").write_text(register, encoding="utf-8")
    (folder / "actors.yaml").write_text(actors, encoding="utf-8")
    findings = check_policy(load_policy(folder), catalog or _catalog())
    return Checked(findings, folder, register, actors)


def with_purpose(
    service: str = "lecture_publique",
    basis: str = "public_task",
    source: str = "library_members",
    fields: str = '"*"',
    more: str = "",
) -> str:
    """The small policy plus a purpose ``extra``; ``more`` adds YAML lines to it."""
    extra = ANOTHER_PURPOSE.format(
        service=service, basis=basis, source=source, fields=fields, more=more
    )
    return REGISTER + extra


def granting_extra(role: str = "librarian") -> str:
    marker = f"  - id: {role}\n"
    head, tail = ACTORS.split(marker)
    grants_end = tail.index("grants:\n") + len("grants:\n")
    grant = "      - {purpose: extra, views: [records]}\n"
    return head + marker + tail[:grants_end] + grant + tail[grants_end:]


# --- the baselines ----------------------------------------------------------------------------


def test_shipped_policy_has_no_error() -> None:
    findings = check_policy(load_policy(), ContractCatalog.load())
    assert [f for f in findings if f.severity == "error"] == []
    assert len(findings) <= 3, findings  # warnings stay few and meaningful


def test_small_valid_policy_is_clean(tmp_path: Path) -> None:
    assert check(tmp_path).findings == []


# --- purposes ---------------------------------------------------------------------------------


def test_purpose_without_legal_basis(tmp_path: Path) -> None:
    register = REGISTER.replace("    legal_basis: contract\n", "")
    checked = check(tmp_path, register=register)
    finding = checked.only("purpose_no_legal_basis")
    assert finding.severity == "error"
    assert finding.file == checked.register_file
    assert finding.line == checked.line("id: water_billing")
    assert finding.subject == "purpose:water_billing"
    assert "base légale" in finding.message


def test_purpose_without_legal_reference_is_a_warning(tmp_path: Path) -> None:
    register = REGISTER.replace("    legal_reference: Code du patrimoine art. L310-1\n", "")
    checked = check(tmp_path, register=register)
    finding = checked.only("purpose_no_legal_reference")
    assert (finding.severity, finding.line) == ("warning", checked.line("id: lending"))


def test_purpose_without_retention(tmp_path: Path) -> None:
    register = REGISTER.replace("    retention: P1Y\n", "")
    checked = check(tmp_path, register=register)
    finding = checked.only("purpose_no_retention")
    assert (finding.severity, finding.line) == ("error", checked.line("id: lending"))


def test_special_category_without_art9_basis(tmp_path: Path) -> None:
    register = REGISTER.replace("    special_category_basis: RGPD art. 9-2-b\n", "")
    checked = check(tmp_path, register=register)
    finding = checked.only("special_category_without_art9")
    assert finding.severity == "error"
    assert finding.line == checked.line('ccas_aid: "*"')  # the source key, not the purpose
    assert "disability" in finding.message


def test_unknown_source(tmp_path: Path) -> None:
    checked = check(tmp_path, register=with_purpose(source="nowhere"), actors=granting_extra())
    finding = checked.only("unknown_source")
    assert finding.line == checked.line("nowhere:")
    assert finding.subject == "purpose:extra"
    assert "library_members" in finding.message  # lists the known sources


def test_unknown_field(tmp_path: Path) -> None:
    register = with_purpose(fields="[card_number, shoe_size]")
    checked = check(tmp_path, register=register, actors=granting_extra())
    finding = checked.only("unknown_field")
    assert finding.line == checked.line("library_members: [card_number, shoe_size]")
    assert "shoe_size" in finding.message and "card_number" not in finding.message


def test_scope_naming_a_source_not_read(tmp_path: Path) -> None:
    register = REGISTER.replace("known_to: [ccas_aid]", "known_to: [ccas_aid, water_subscribers]")
    checked = check(tmp_path, register=register)
    finding = checked.only("scope_source_not_read")
    assert finding.line == checked.line("known_to:")
    assert "water_subscribers" in finding.message


def test_unknown_service_of_a_purpose(tmp_path: Path) -> None:
    register = REGISTER.replace("service: eau_assainissement\n", "service: eaux\n")
    checked = check(tmp_path, register=register)
    finding = checked.only("unknown_service")
    assert (finding.file, finding.line) == (checked.register_file, checked.line("water_billing"))


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "    service: lecture_publique\n    grants",
            "    service: biblio\n    grants",
            "librarian",
        ),
        (
            "name: Eaux Test, service: eau_assainissement,",
            "name: Eaux Test, service: eaux,",
            "eaux-test",
        ),
    ],
    ids=["role", "operator"],
)
def test_unknown_service_of_a_role_or_operator(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    checked = check(tmp_path, actors=ACTORS.replace(old, new))
    errors = [f for f in checked.findings if f.code == "unknown_service"]
    assert len(errors) == 1, checked.findings
    assert (errors[0].file, errors[0].line) == (
        checked.actors_file,
        checked.line(needle, actors=True),
    )


def test_unknown_owner_service_of_a_contract(tmp_path: Path) -> None:
    checked = check(tmp_path, catalog=_catalog(*SOURCES, "transport_passes"))
    owner = [f for f in checked.findings if f.code == "unknown_service"]
    assert [f.subject for f in owner] == ["source:transport_passes"]
    assert owner[0].file.endswith("transport_passes.yaml")


def test_sensitive_social_data_to_a_non_social_service(tmp_path: Path) -> None:
    register = with_purpose(
        source="ccas_aid",
        fields="[aid_id, family_name, amount, disability]",
        more="    special_category_basis: art. 9-2-h\n",
    )
    checked = check(tmp_path, register=register, actors=granting_extra())
    finding = checked.only("sensitive_to_non_social")
    assert finding.severity == "error"
    assert finding.line == checked.line("ccas_aid: [aid_id, family_name")
    assert "amount, disability" in finding.message
    assert "lecture_publique" in finding.message and "ccas_aid" in finding.message
    assert "family_name" not in finding.message  # identifying fields are not social secrets


@pytest.mark.parametrize(
    ("service", "basis", "scope"),
    [
        ("ccas", "public_task", ""),  # a social service
        ("lecture_publique", "public_task", "    scope:\n      self_only: true\n"),  # own data
        ("dpo", "legal_obligation", ""),  # the DPO's rights handling
    ],
    ids=["social", "self_only", "dpo"],
)
def test_sensitive_social_data_allowed_cases(
    tmp_path: Path, service: str, basis: str, scope: str
) -> None:
    register = with_purpose(
        service=service, basis=basis, source="ccas_aid", fields="[amount]", more=scope
    )
    actors = granting_extra().replace(
        "  - {id: donnees, name: Données}",
        "  - {id: donnees, name: Données}\n  - {id: dpo, name: DPO}",
    )
    checked = check(tmp_path, register=register, actors=actors)
    assert "sensitive_to_non_social" not in checked.codes()


def test_dpo_needs_legal_obligation_to_read_social_secrets(tmp_path: Path) -> None:
    register = with_purpose(
        service="dpo", basis="public_task", source="ccas_aid", fields="[amount]"
    )
    actors = ACTORS.replace(
        "  - {id: donnees, name: Données}",
        "  - {id: donnees, name: Données}\n  - {id: dpo, name: DPO}",
    )
    assert "sensitive_to_non_social" in check(tmp_path, register=register, actors=actors).codes()


def test_aggregate_purpose_granted_an_individual_view(tmp_path: Path) -> None:
    actors = ACTORS.replace("views: [synergies, count]", "views: [synergies, count, person_360]")
    checked = check(tmp_path, actors=actors)
    finding = checked.only("aggregate_view_granted")
    assert (finding.file, finding.line) == (
        checked.actors_file,
        checked.line("views: [synergies, count, person_360]", actors=True),
    )
    assert finding.subject == "grant:data_officer:synergies"
    assert "person_360" in finding.message


def test_grant_to_an_unknown_purpose(tmp_path: Path) -> None:
    actors = ACTORS.replace("{purpose: lending,", "{purpose: lendings,")
    checked = check(tmp_path, actors=actors)
    finding = checked.only("unknown_purpose")
    assert (finding.file, finding.line) == (
        checked.actors_file,
        checked.line("lendings", actors=True),
    )
    assert "purpose_unused" in checked.codes()  # and lending is now granted to no one


def test_grant_of_an_unknown_view(tmp_path: Path) -> None:
    actors = ACTORS.replace("views: [records]", "views: [records, everything]")
    checked = check(tmp_path, actors=actors)
    finding = checked.only("unknown_view")
    assert finding.line == checked.line("everything", actors=True)
    assert "everything" in finding.message
    assert all(view in finding.message for view in VIEWS)


def test_cross_service_grant_is_a_warning(tmp_path: Path) -> None:
    actors = ACTORS.replace(
        "views: [records]}", "views: [records]}\n      - {purpose: lending, views: [count]}"
    )
    checked = check(tmp_path, actors=actors)
    finding = checked.only("cross_service_grant")
    assert finding.severity == "warning"
    assert finding.line == checked.line("{purpose: lending, views: [count]}", actors=True)
    assert finding.subject == "grant:water_agent:lending"


def test_resident_role_is_not_a_cross_service_grant(tmp_path: Path) -> None:
    resident = (
        "  - id: resident\n    name: Résident\n    service: eau_assainissement\n    resident: true\n"
        "    grants:\n      - {purpose: lending, views: [person_360]}\n"
    )
    actors = ACTORS.replace("agents:\n", resident + "agents:\n")
    assert "cross_service_grant" not in check(tmp_path, actors=actors).codes()


def test_agent_with_an_unknown_role(tmp_path: Path) -> None:
    actors = ACTORS.replace("roles: [librarian]", "roles: [librarian, archivist]")
    checked = check(tmp_path, actors=actors)
    finding = checked.only("unknown_role")
    assert (finding.line, finding.subject) == (
        checked.line("lea.biblio", actors=True),
        "agent:lea.biblio",
    )
    assert "archivist" in finding.message


def test_agent_without_roles_is_a_warning(tmp_path: Path) -> None:
    actors = ACTORS.replace("roles: [librarian]", "roles: []")
    checked = check(tmp_path, actors=actors)
    finding = checked.only("agent_no_roles")
    assert (finding.severity, finding.line) == ("warning", checked.line("lea.biblio", actors=True))


def test_role_without_grants_is_a_warning(tmp_path: Path) -> None:
    idle = "  - {id: idle, name: Sans habilitation, service: eau_assainissement}\n"
    actors = ACTORS.replace("agents:\n", idle + "agents:\n")
    finding = check(tmp_path, actors=actors).only("role_no_grants")
    assert (finding.severity, finding.subject) == ("warning", "role:idle")


def test_purpose_never_granted_is_a_warning(tmp_path: Path) -> None:
    checked = check(tmp_path, register=with_purpose())
    finding = checked.only("purpose_unused")
    assert (finding.severity, finding.line) == ("warning", checked.line("id: extra"))


@pytest.mark.parametrize(
    ("file", "duplicate", "subject"),
    [
        ("register", with_purpose().replace("id: extra", "id: lending"), "purpose:lending"),
        ("actors", ACTORS.replace("id: lea.biblio", "id: claire.ccas"), "agent:claire.ccas"),
        (
            "actors",
            ACTORS
            + "  - {id: tal, name: TAL, service: eau_assainissement, sources: []}\n  - {id: tal, name: Bis, service: eau_assainissement}\n",
            "operator:tal",
        ),
        (
            "actors",
            ACTORS.replace("{id: donnees, name: Données}", "{id: ccas, name: Données}"),
            "service:ccas",
        ),
    ],
    ids=["purpose", "agent", "operator", "service"],
)
def test_duplicate_ids(tmp_path: Path, file: str, duplicate: str, subject: str) -> None:
    kwargs = {"register": duplicate} if file == "register" else {"actors": duplicate}
    checked = check(tmp_path, **kwargs)
    finding = [f for f in checked.findings if f.code == "duplicate_id"]
    assert len(finding) == 1, checked.findings
    ident = subject.split(":", 1)[1]
    text_line = checked.line(f"id: {ident}", actors=file == "actors", nth=2)
    assert (finding[0].subject, finding[0].line) == (subject, text_line)
    assert finding[0].file == (checked.register_file if file == "register" else checked.actors_file)
    assert f"ligne {checked.line(f'id: {ident}', actors=file == 'actors')}" in finding[0].message


def test_duplicate_role(tmp_path: Path) -> None:
    twin = "  - {id: librarian, name: Bis, service: lecture_publique}\n"
    checked = check(tmp_path, actors=ACTORS.replace("agents:\n", twin + "agents:\n"))
    finding = [f for f in checked.findings if f.code == "duplicate_id"]
    assert [(f.subject, f.line) for f in finding] == [
        ("role:librarian", checked.line("id: librarian, name: Bis", actors=True))
    ]


def test_proactive_consent_is_a_warning(tmp_path: Path) -> None:
    register = with_purpose(basis="consent", more="    proactive: true\n")
    checked = check(tmp_path, register=register, actors=granting_extra())
    finding = checked.only("proactive_consent")
    assert (finding.severity, finding.line) == ("warning", checked.line("id: extra"))
    assert "proactive_without_objection" not in checked.codes()


@pytest.mark.parametrize(
    ("basis", "flagged"),
    [
        ("contract", True),
        ("legal_obligation", True),
        ("public_task", False),
        ("legitimate_interests", False),
    ],
)
def test_proactive_without_a_right_to_object(tmp_path: Path, basis: str, flagged: bool) -> None:
    register = with_purpose(basis=basis, more="    proactive: true\n")
    checked = check(tmp_path, register=register, actors=granting_extra())
    assert ("proactive_without_objection" in checked.codes()) is flagged
    if flagged:
        finding = checked.only("proactive_without_objection")
        assert finding.severity == "warning" and basis in finding.message


def test_consent_without_recipients_is_a_warning(tmp_path: Path) -> None:
    register = with_purpose(basis="consent").replace("    recipients: [Quelqu'un]\n", "")
    checked = check(tmp_path, register=register, actors=granting_extra())
    finding = checked.only("consent_no_recipients")
    assert (finding.severity, finding.line) == ("warning", checked.line("id: extra"))


def test_operator_delivering_a_source_of_another_service(tmp_path: Path) -> None:
    actors = ACTORS.replace(
        "sources: [water_subscribers]", "sources: [water_subscribers, library_members]"
    )
    checked = check(tmp_path, actors=actors)
    finding = checked.only("operator_source_not_owned")
    assert (finding.file, finding.line) == (
        checked.actors_file,
        checked.line("eaux-test", actors=True),
    )
    assert "library_members" in finding.message and "lecture_publique" in finding.message


def test_operator_delivering_an_unknown_source(tmp_path: Path) -> None:
    actors = ACTORS.replace("sources: [water_subscribers]", "sources: [water_subscribers, pipes]")
    finding = check(tmp_path, actors=actors).only("unknown_source")
    assert finding.subject == "operator:eaux-test"


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("transparency_delay: P6M", "transparency_delay: 6 mois", "transparency_delay"),
        ("transparency_delay: P6M", "transparency_delay: P6MONTHS", "transparency_delay"),
        ("retention: P1Y\n", "retention: P1A après la fin de l'adhésion\n", "id: lending"),
    ],
    ids=["delay-words", "delay-typo", "retention-typo"],
)
def test_invalid_durations(tmp_path: Path, old: str, new: str, needle: str) -> None:
    checked = check(tmp_path, register=REGISTER.replace(old, new))
    finding = checked.only("invalid_duration")
    purpose_line = checked.line("id: water_billing" if "delay" in needle else needle)
    assert (finding.severity, finding.line) == ("error", purpose_line)


@pytest.mark.parametrize(
    "retention",
    ["P5Y.", "P18M après la fin", "jusqu'au retrait du consentement", "P1Y (journal), puis P3Y"],
)
def test_valid_retention_texts(tmp_path: Path, retention: str) -> None:
    register = REGISTER.replace("retention: P1Y\n", f"retention: {retention}\n")
    assert "invalid_duration" not in check(tmp_path, register=register).codes()


def test_personal_source_without_purpose_is_a_warning(tmp_path: Path) -> None:
    catalog = _catalog(*SOURCES, "traffic_counts", "waste_bins")
    actors = ACTORS.replace(
        "  - {id: donnees, name: Données}",
        "  - {id: donnees, name: Données}\n  - {id: voirie_mobilite, name: Voirie}\n"
        "  - {id: proprete, name: Propreté}",
    )
    checked = check(tmp_path, actors=actors, catalog=catalog)
    finding = checked.only("source_without_purpose")
    assert (finding.severity, finding.subject) == ("warning", "source:waste_bins")
    # traffic counts hold no personal data: no purpose is needed for them


# --- the report as a whole --------------------------------------------------------------------


def test_findings_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    register = REGISTER.replace("    legal_basis: contract\n", "").replace(
        "    legal_reference: Code du patrimoine art. L310-1\n", ""
    )
    actors = ACTORS.replace("roles: [librarian]", "roles: [ghost]")
    checked = check(tmp_path, register=register, actors=actors)
    keys = [(f.file, f.line or 0) for f in checked.findings]
    assert keys == sorted(keys)
    assert [f.code for f in checked.findings] == [
        "unknown_role",
        "purpose_no_legal_reference",
        "purpose_no_legal_basis",
    ]


def test_finding_as_dict_and_codes(tmp_path: Path) -> None:
    checked = check(tmp_path, register=REGISTER.replace("    legal_basis: contract\n", ""))
    data = checked.only("purpose_no_legal_basis").as_dict()
    assert set(data) == {"severity", "code", "message", "file", "line", "subject"}
    assert all(RULE_CODES[f.code] == f.severity for f in checked.findings)

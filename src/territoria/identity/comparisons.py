"""What the model compares, declared once: each level as SQL (for Splink) and as Python.

The SQL conditions run in Splink on any of its backends (written in DuckDB's dialect, which
Splink transpiles with sqlglot); the Python predicates score one new record against its
candidates in milliseconds (incremental linking) and explain any pair field by field. A test
checks that both give the same match weights on real pairs.

Households are where linkers fail, so the name comparison separates "same person" evidence
(same given name) from "same family" evidence (same surname only), and the clustering adds
hard conflicts (``conflicts``) that no address or surname agreement can outweigh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import JaroWinkler, Levenshtein

from territoria.identity.standardise import is_given_name

Row = Mapping[str, Any]
Test = Callable[[Row, Row], bool]


@dataclass(frozen=True)
class Level:
    label: str  # French, shown to agents
    sql: str
    test: Test
    is_null: bool = False
    tf_column: str | None = None
    fixed_m: float | None = None  # m set from domain knowledge instead of estimated by EM


@dataclass(frozen=True)
class Comparison:
    name: str
    title: str  # French
    levels: tuple[Level, ...]


def _eq(col: str) -> Test:
    def test(a: Row, b: Row) -> bool:
        x, y = a[col], b[col]
        return x is not None and y is not None and x == y

    return test


def _null(*cols: str) -> Test:
    def test(a: Row, b: Row) -> bool:
        return any(a[c] is None or b[c] is None for c in cols)

    return test


def jw(x: str | None, y: str | None) -> float:
    if x is None or y is None:
        return 0.0
    return float(JaroWinkler.similarity(x, y))


def _jw_at_least(col: str, threshold: float) -> Test:
    def test(a: Row, b: Row) -> bool:
        return jw(a[col], b[col]) >= threshold

    return test


def _all(*tests: Test) -> Test:
    return lambda a, b: all(t(a, b) for t in tests)


def _any(*tests: Test) -> Test:
    return lambda a, b: any(t(a, b) for t in tests)


def _sql_jw(col: str, threshold: float) -> str:
    return f"jaro_winkler_similarity({col}_l, {col}_r) >= {threshold}"


def _prefix(a: Row, b: Row) -> bool:
    x, y = a["gk"], b["gk"]
    if x is None or y is None:
        return False
    return bool(x.startswith(y + " ") or y.startswith(x + " "))


def _cross_family(a: Row, b: Row) -> bool:
    return any(
        x is not None and y is not None and x == y
        for x, y in ((a["fn"], b["bn"]), (a["bn"], b["fn"]), (a["bn"], b["bn"]))
    )


def _swapped(a: Row, b: Row) -> bool:
    return _eq_pair(a["fn"], b["gn1"]) and _eq_pair(a["gn1"], b["fn"])


def _eq_pair(x: str | None, y: str | None) -> bool:
    return x is not None and y is not None and x == y


def _name_missing(a: Row, b: Row) -> bool:
    if a["fn"] is None or b["fn"] is None:
        return True
    return (a["gk"] is None or b["gk"] is None) and a["fn"] != b["fn"]


def _dob_close(a: Row, b: Row) -> bool:
    x, y = a["dob"], b["dob"]
    if x is None or y is None:
        return False
    swapped = a["dob_d"] == b["dob_m"] and a["dob_m"] == b["dob_d"] and a["dob_y"] == b["dob_y"]
    return swapped or Levenshtein.distance(x, y) <= 1


def _dob_partial(a: Row, b: Row) -> bool:
    if a["dob_y"] is None or a["dob_y"] != b["dob_y"]:
        return False
    if a["dob"] is not None and b["dob"] is not None:
        return False
    return a["dob_m"] is None or b["dob_m"] is None or a["dob_m"] == b["dob_m"]


NAME = Comparison(
    "name",
    "Nom et prénom",
    (
        Level(
            "nom absent, ou prénom absent et noms différents",
            "fn_l IS NULL OR fn_r IS NULL OR ((gk_l IS NULL OR gk_r IS NULL) AND fn_l <> fn_r)",
            _name_missing,
            is_null=True,
        ),
        Level(
            "même nom, prénom absent",
            "gk_l IS NULL OR gk_r IS NULL",
            _null("gk"),
            tf_column="fn",
        ),
        Level(
            "même nom et même prénom",
            "fn_l = fn_r AND gk_l = gk_r",
            _all(_eq("fn"), _eq("gk")),
            tf_column="fullname",
        ),
        Level(
            "même prénom, nom de naissance et nom d'usage concordants",
            "gk_l = gk_r AND (fn_l = bn_r OR bn_l = fn_r OR bn_l = bn_r)",
            _all(_eq("gk"), _cross_family),
        ),
        Level("nom et prénom inversés", "fn_l = gn1_r AND gn1_l = fn_r", _swapped),
        Level(
            "nom et prénom presque identiques (faute de frappe, prénom composé)",
            f"({_sql_jw('gk', 0.92)} OR starts_with(gk_l, gk_r || ' ') "
            f"OR starts_with(gk_r, gk_l || ' ')) AND {_sql_jw('fn', 0.92)}",
            _all(_any(_jw_at_least("gk", 0.92), _prefix), _jw_at_least("fn", 0.92)),
        ),
        Level(
            "nom et prénom proches",
            f"{_sql_jw('gk', 0.85)} AND {_sql_jw('fn', 0.85)}",
            _all(_jw_at_least("gk", 0.85), _jw_at_least("fn", 0.85)),
        ),
        Level("même prénom, nom différent", "gk_l = gk_r", _eq("gk")),
        Level("même nom, prénom différent", "fn_l = fn_r", _eq("fn"), tf_column="fn"),
        Level("noms et prénoms différents", "ELSE", lambda a, b: True),
    ),
)

BIRTH_DATE = Comparison(
    "birth_date",
    "Date de naissance",
    (
        Level(
            "date de naissance absente",
            "dob_y_l IS NULL OR dob_y_r IS NULL",
            _null("dob_y"),
            is_null=True,
        ),
        Level("même date de naissance", "dob_l = dob_r", _eq("dob")),
        Level(
            "jour et mois inversés ou un chiffre différent",
            "(dob_d_l = dob_m_r AND dob_m_l = dob_d_r AND dob_y_l = dob_y_r) "
            "OR levenshtein(dob_l, dob_r) <= 1",
            _dob_close,
        ),
        Level(
            "date partielle compatible (même année, mois compatible)",
            "dob_y_l = dob_y_r AND (dob_l IS NULL OR dob_r IS NULL) "
            "AND (dob_m_l IS NULL OR dob_m_r IS NULL OR dob_m_l = dob_m_r)",
            _dob_partial,
        ),
        Level("même année de naissance seulement", "dob_y_l = dob_y_r", _eq("dob_y")),
        Level("dates de naissance différentes", "ELSE", lambda a, b: True),
    ),
)

ADDRESS = Comparison(
    "address",
    "Adresse",
    (
        Level(
            "adresse absente",
            "(bkey_l IS NULL OR bkey_r IS NULL) AND (pc_l IS NULL OR pc_r IS NULL)",
            _all(_null("bkey"), _null("pc")),
            is_null=True,
        ),
        Level(
            "même logement (numéro, voie et appartement)",
            "dkey_l = dkey_r AND cpl_l IS NOT NULL",
            lambda a, b: _eq("dkey")(a, b) and a["cpl"] is not None,
        ),
        Level("même immeuble ou maison", "bkey_l = bkey_r", _eq("bkey"), tf_column="bkey"),
        Level(
            "même numéro et même voie, code postal ou commune différents",
            "num_l = num_r AND street_l = street_r",
            _all(_eq("num"), _eq("street")),
        ),
        Level(
            "même voie, même commune",
            "street_l = street_r AND (pc_l = pc_r OR commune_l = commune_r)",
            _all(_eq("street"), _any(_eq("pc"), _eq("commune"))),
        ),
        Level(
            "même code postal, adresse incomplète",
            "pc_l = pc_r AND (bkey_l IS NULL OR bkey_r IS NULL)",
            lambda a, b: _eq("pc")(a, b) and (a["bkey"] is None or b["bkey"] is None),
        ),
        Level("même code postal, voies différentes", "pc_l = pc_r", _eq("pc")),
        Level(
            "même commune, adresse incomplète",
            "commune_l = commune_r AND (bkey_l IS NULL OR bkey_r IS NULL)",
            lambda a, b: _eq("commune")(a, b) and (a["bkey"] is None or b["bkey"] is None),
        ),
        Level("adresses différentes", "ELSE", lambda a, b: True),
    ),
)


def _exact(name: str, col: str, title: str, what: str, m_same: float) -> Comparison:
    """Same value or not, with ``m`` fixed: on small territories EM can see no true pair with
    two different phone numbers and drive that level's m to zero, which Splink refuses; the
    share of true pairs that agree is domain knowledge (people change numbers, share one)."""
    return Comparison(
        name,
        title,
        (
            Level(
                f"{what} absent", f"{col}_l IS NULL OR {col}_r IS NULL", _null(col), is_null=True
            ),
            Level(f"même {what}", f"{col}_l = {col}_r", _eq(col), fixed_m=m_same),
            Level(f"{what} différent", "ELSE", lambda a, b: True, fixed_m=1 - m_same),
        ),
    )


PHONE = _exact("phone", "phone", "Téléphone", "téléphone", m_same=0.9)
EMAIL = _exact("email", "email", "Courriel", "courriel", m_same=0.85)
SEX = _exact("sex", "sex", "Sexe", "sexe", m_same=0.98)
IDENTIFIER = _exact("identifier", "ident", "Identifiant", "identifiant", m_same=0.98)

COMPARISONS: tuple[Comparison, ...] = (NAME, BIRTH_DATE, ADDRESS, PHONE, EMAIL, SEX, IDENTIFIER)


def level_of(comparison: Comparison, a: Row, b: Row) -> int:
    """Index of the first level whose condition holds (Splink's gamma is ``len - 1 - index``)."""
    for i, level in enumerate(comparison.levels):
        if level.test(a, b):
            return i
    return len(comparison.levels) - 1


# -- hard conflicts: two records that cannot be one person, whatever their score -------------


def given_names_compatible(x: str, y: str) -> bool:
    """Two folded given names (variant keys) that may be the same person's.

    Equal, a compound and its first part (JEAN PIERRE / JEAN), or a typo (one edit, or
    Jaro-Winkler at least 0.9) — but never a name and its extension (LOUIS / LOUISE, MAEL /
    MAELYA, JEAN / JEANNE) nor two distinct known names (MAEL / MANEL): those are usually two
    people, often twins, siblings or parent and child.
    """
    if x == y or x.startswith(y + " ") or y.startswith(x + " "):
        return True
    if x.startswith(y) or y.startswith(x) or (is_given_name(x) and is_given_name(y)):
        return False  # two real names (MAEL / MANEL), not a name and its typo
    return Levenshtein.distance(x, y) <= 1 or jw(x, y) >= 0.9


def names_conflict(a: Row, b: Row) -> bool:
    """Given names that cannot be the same person's (twins, siblings, parent and child)."""
    x, y = a["gk"], b["gk"]
    if x is None or y is None or given_names_compatible(x, y):
        return False
    return not (_eq_pair(a["fn"], b["gn1"]) or _eq_pair(a["gn1"], b["fn"]))


def dates_conflict(a: Row, b: Row) -> bool:
    """Birth dates that cannot be the same person's (beyond a typo or a day/month swap)."""
    if a["dob_y"] is None or b["dob_y"] is None:
        return False
    if a["dob"] is not None and b["dob"] is not None:
        return not _dob_close(a, b)
    if a["dob_y"] != b["dob_y"]:
        return True
    return a["dob_m"] is not None and b["dob_m"] is not None and a["dob_m"] != b["dob_m"]


def conflict_reason(a: Row, b: Row) -> str | None:
    """Why two mentions cannot be one person (French), or None.

    Besides names and birth dates: two persons of one record (the holder and co-holder of a
    contract, a child and a guardian) are different people, a guardian is born at least
    ``GUARDIAN_MIN_AGE`` years before the child, and recorded sexes must agree.
    """
    if a.get("rec") is not None and a.get("rec") == b.get("rec"):
        return "deux personnes d'une même fiche"
    if dates_conflict(a, b):
        return "dates de naissance incompatibles"
    if _born_too_late(a, b) or _born_too_late(b, a):
        return "un responsable légal né après son enfant"
    if names_conflict(a, b):
        return "prénoms incompatibles"
    if a.get("sex") is not None and b.get("sex") is not None and a["sex"] != b["sex"]:
        return "sexes différents"
    return None


GUARDIAN_MIN_AGE = 14


def _born_too_late(guardian: Row, other: Row) -> bool:
    latest = guardian.get("max_y")
    return latest is not None and other["dob_y"] is not None and other["dob_y"] > latest

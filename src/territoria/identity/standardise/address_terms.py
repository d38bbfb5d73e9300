"""Vocabulary of French postal addresses, as data: street types, flat markers, arrondissements."""

from __future__ import annotations

# Canonical street type -> the folded spellings services use for it.
_STREET_TYPE_SPELLINGS = {
    "RUE": "R RUE RU",
    "AVENUE": "AV AVE AVN AVEN AVENUE",
    "BOULEVARD": "BD BLD BLVD BVD BOUL BOULD BOULEVARD",
    "PLACE": "PL PLACE",
    "CHEMIN": "CH CHE CHEM CHMN CHEMIN",
    "IMPASSE": "IMP IMPASSE",
    "ALLEE": "ALL ALLEE ALLEES",
    "QUAI": "Q QU QUAI",
    "COURS": "CRS COURS",
    "COUR": "COUR",
    "MONTEE": "MTE MTEE MONTEE",
    "ROUTE": "RTE RT ROUTE",
    "SQUARE": "SQ SQR SQUARE",
    "PASSAGE": "PAS PASS PSG PASSAGE",
    "RESIDENCE": "RES RESID RESIDENCE",
    "CHAUSSEE": "CHS CHAU CHAUSSEE",
    "FAUBOURG": "FBG FG FAUB FAUBOURG",
    "QUARTIER": "QUA QRT QUART QUARTIER",
    "LOTISSEMENT": "LOT LOTIS LOTISSEMENT",
    "SENTIER": "SEN SENT SENTIER",
    "SENTE": "SENTE",
    "VOIE": "VOIE",
    "PROMENADE": "PROM PRM PROMENADE",
    "ESPLANADE": "ESP ESPL ESPLANADE",
    "CITE": "CITE",
    "CLOS": "CLOS",
    "HAMEAU": "HAM HAMEAU",
    "PARVIS": "PRV PARVIS",
    "RUELLE": "RLE RUELLE",
    "VILLA": "VLA VILLA",
    "DOMAINE": "DOM DOMAINE",
    "TRAVERSE": "TRA TRAV TRAVERSE",
    "MAIL": "MAIL",
    "GALERIE": "GALERIE",
    "CARREFOUR": "CARR CARREFOUR",
    "PLACETTE": "PLACETTE",
    "ROND POINT": "RPT",
    "LIEU DIT": "LD LIEUDIT",
}
STREET_TYPES: dict[str, str] = {
    spelling: canonical
    for canonical, spellings in _STREET_TYPE_SPELLINGS.items()
    for spelling in spellings.split()
}
TWO_WORD_STREET_TYPES: dict[tuple[str, str], str] = {
    ("ROND", "POINT"): "ROND POINT",
    ("RD", "PT"): "ROND POINT",
    ("LIEU", "DIT"): "LIEU DIT",
}

# Abbreviations expanded inside street and commune names ("R ST JEAN" = "RUE SAINT JEAN").
NAME_ABBREVIATIONS = {
    "ST": "SAINT", "STE": "SAINTE", "GAL": "GENERAL", "MAL": "MARECHAL", "PDT": "PRESIDENT",
    "DR": "DOCTEUR", "CDT": "COMMANDANT",
}  # fmt: skip
COMMUNE_ABBREVIATIONS = {"ST": "SAINT", "STE": "SAINTE", "STS": "SAINTS", "STES": "SAINTES"}

# Flat and building markers -> the kind they introduce, in the order the complement lists them.
_UNIT_SPELLINGS = {
    "BAT": "BAT BATIMENT BATIMENTS BT BLOC",
    "ESC": "ESC ESCALIER ESCAL",
    "ETAGE": "ETAGE ETG",
    "PORTE": "PORTE PTE",
    "APT": "APT APPT APP APPART APPARTEMENT APPARTEMENTS LOGEMENT LGT LOG",
}
UNIT_KINDS: dict[str, str] = {
    spelling: kind for kind, spellings in _UNIT_SPELLINGS.items() for spelling in spellings.split()
}
UNIT_ORDER: tuple[str, ...] = tuple(_UNIT_SPELLINGS)
RESIDENCE_WORDS = frozenset({"RESIDENCE", "RES", "RESID"})
POSTAL_BOXES = frozenset({"BP", "CS", "TSA"})
NUMBER_WORDS = frozenset({"N", "NO", "NUM", "NUMERO"})
GROUND_FLOOR = frozenset({"RDC"})
# A marker right after one of these is a word of the street name ("RUE DE LA PORTE").
ARTICLES = frozenset({"DE", "DU", "DES", "LA", "LE", "LES", "L", "D", "AU", "AUX"})
SUFFIX_WORDS = {"BIS": "B", "TER": "T", "QUATER": "Q"}
SEPARATE_SUFFIXES = frozenset({"B", "T"})  # "12 B VICTOR HUGO": a lone B or T is bis / ter

# City -> (department prefix, number of arrondissements, extra postcodes per arrondissement).
ARRONDISSEMENTS: dict[str, tuple[str, int, dict[int, tuple[str, ...]]]] = {
    "PARIS": ("75", 20, {16: ("75116",)}),
    "LYON": ("69", 9, {}),
    "MARSEILLE": ("13", 16, {}),
}

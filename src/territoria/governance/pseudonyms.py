"""Per-domain keyed pseudonyms, and the custody of their keys.

Each pseudonymisation domain (a service, a purpose, an operator exchange) sees its own
pseudonym for the same person: HMAC-SHA-256 with one secret key per domain (EDPB guidelines
01/2025; AEPD/EDPS on hashing). Plain hashes of phone numbers or birth dates fall to a
dictionary; keyed ones do not, and two domains' pseudonyms cannot be joined without both keys.

The keys live in a folder outside the data store (never in SQLite, Parquet or PostgreSQL):
``TERRITORIA_KEYS_DIR``, else ``<workspace>/keys``. One sub-folder per domain holds ``k1.key``,
``k2.key``… (32 random bytes, mode 0600, written atomically and never overwritten) and, for a
retired key, a ``kN.retired`` tombstone so that a key id is never reused. The current key is the
highest live one; every pseudonym carries its key id, so rotation keeps old pseudonyms
resolvable until their key is retired (crypto-shredding). No message, repr or error ever shows
key material; ``secret_forms`` gives a test the forms to grep logs and exports for.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from territoria.core.errors import GovernanceError

__all__ = [
    "DOMAIN_PATTERN",
    "KEYS_ENV",
    "KEY_BYTES",
    "NORMALISATION_VERSION",
    "PSEUDONYM_CHARS",
    "IdentifierKind",
    "KeyInfo",
    "KeyStatus",
    "Keyring",
    "Pseudonymiser",
    "domain_tag",
    "normalise_identifier",
    "secret_forms",
]

DOMAIN_PATTERN = r"^[a-z][a-z0-9_]*$"
DOMAIN_MAX_LENGTH = 48
KEYS_ENV = "TERRITORIA_KEYS_DIR"
KEY_BYTES = 32
PSEUDONYM_CHARS = 26  # base-32 characters kept from the 256-bit MAC: 130 bits
NORMALISATION_VERSION = 1

KeyStatus = Literal["current", "previous", "retired"]
IdentifierKind = Literal["phone", "email", "date", "text"]

_DOMAIN = re.compile(DOMAIN_PATTERN)
_KID = re.compile(r"^k([1-9][0-9]{0,8})$")
_ENTRY = re.compile(r"^k([1-9][0-9]{0,8})\.(key|retired)$")
_RACY_NS = 1_000_000_000  # a listing this recent may miss a change made in the same mtime tick
_PROTECTED = 0o077  # group and other permission bits


def _error(
    message: str,
    code: str,
    *,
    file: Path | None = None,
    hint: str | None = None,
    expected: str | None = None,
    details: dict[str, object] | None = None,
) -> GovernanceError:
    return GovernanceError(
        message, code=code, file=file, hint=hint, expected=expected, details=details or {}
    )


def _check_domain(domain: object) -> str:
    if not isinstance(domain, str) or len(domain) > DOMAIN_MAX_LENGTH or not _DOMAIN.match(domain):
        raise _error(
            f"nom de domaine de pseudonymisation invalide : {domain!r}",
            "domain_invalid",
            expected=f"minuscules, chiffres et _, commençant par une lettre, {DOMAIN_MAX_LENGTH} "
            "caractères au plus (ex. « bibliotheque », « ccas », « statistiques »)",
        )
    return domain


def domain_tag(domain: str) -> str:
    """The readable tag a pseudonym starts with: ``domain_tag("library") == "LIB"``."""
    return _check_domain(domain).replace("_", "")[:3].upper()


# -- the key folder ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """One key id of a domain, for ``territoria policy keys list`` (never the key itself)."""

    domain: str
    kid: str
    status: KeyStatus
    created_at: str | None
    retired_at: str | None


@dataclass(frozen=True)
class _Listing:
    live: tuple[int, ...]  # key numbers with a key file, ascending
    retired: tuple[int, ...]  # key numbers with a tombstone
    stamp: tuple[int, int, int] | None  # the folder's (mtime, ctime, inode) when trustworthy


_EMPTY = _Listing((), (), None)


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write a 0600 file via a temporary one; ``exclusive`` never replaces an existing file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if exclusive:
            os.link(tmp, path)  # fails if another process created the same key id first
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class Keyring:
    """The per-domain HMAC keys in one folder outside the data store."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._listings: dict[str, _Listing] = {}
        self._keys: dict[tuple[str, int], tuple[bytes, tuple[int, int, int]]] = {}
        self._prepare()

    @classmethod
    def for_workspace(cls, root: Path) -> Keyring:
        """``TERRITORIA_KEYS_DIR`` if set, else ``<root>/keys``; never inside the store."""
        configured = os.environ.get(KEYS_ENV, "").strip()
        folder = Path(configured).expanduser() if configured else Path(root) / "keys"
        _refuse_inside_store(folder, Path(root) / "store")
        return cls(folder)

    def __repr__(self) -> str:
        return f"Keyring({str(self.folder)!r})"

    # -- public API ------------------------------------------------------------------------

    def current(self, domain: str) -> tuple[str, bytes]:
        """The domain's current (kid, key); the first key is created on first use."""
        listing = self._listing(_check_domain(domain))
        if not listing.live:
            self._add_key(domain, listing)
            listing = self._listing(domain)
        number = listing.live[-1]
        return f"k{number}", self._load(domain, number)

    def key(self, domain: str, kid: str) -> bytes:
        """The key ``kid`` of ``domain``; ``key_unknown`` if it never existed or was retired."""
        number = self._live_number(_check_domain(domain), kid)
        return self._load(domain, number)

    def rotate(self, domain: str) -> str:
        """Create a new current key and return its kid; older keys stay until retired."""
        listing = self._listing(_check_domain(domain))
        return f"k{self._add_key(domain, listing)}"

    def retire(self, domain: str, kid: str) -> None:
        """Delete an old key: the pseudonyms written under it can no longer be resolved."""
        number = self._live_number(_check_domain(domain), kid)
        if number == self._listing(domain).live[-1]:
            raise _error(
                f"la clé {kid} est la clé courante du domaine « {domain} » : elle ne peut pas "
                "être retirée",
                "key_current",
                hint=f"faites d'abord « territoria policy keys rotate {domain} »",
            )
        folder = self.folder / domain
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self._writing():  # the tombstone first: a crash in between still reads as retired
            _write_atomic(folder / f"{kid}.retired", stamp.encode(), exclusive=False)
            (folder / f"{kid}.key").unlink(missing_ok=True)
        _fsync_dir(folder)
        self._keys.pop((domain, number), None)
        self._listings.pop(domain, None)

    def domains(self) -> list[str]:
        """The domains that have a key folder."""
        try:
            names = [p.name for p in self.folder.iterdir() if p.is_dir()]
        except OSError as exc:
            raise self._unreadable(self.folder, exc) from None
        return sorted(n for n in names if _DOMAIN.match(n) and len(n) <= DOMAIN_MAX_LENGTH)

    def kids(self, domain: str) -> list[str]:
        """The live key ids of ``domain``, oldest first (the last one is current)."""
        return [f"k{n}" for n in self._listing(_check_domain(domain)).live]

    def retired_kids(self, domain: str) -> list[str]:
        """The key ids of ``domain`` that were retired (their keys are gone)."""
        return [f"k{n}" for n in self._listing(_check_domain(domain)).retired]

    def describe(self, domain: str | None = None) -> list[KeyInfo]:
        """Every key id of one or all domains with its status and dates (no key material)."""
        names = self.domains() if domain is None else [_check_domain(domain)]
        return [info for name in names for info in self._describe(name)]

    # -- internals -------------------------------------------------------------------------

    def _prepare(self) -> None:
        existed = self.folder.exists()
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not existed:
                os.chmod(self.folder, 0o700)
                (self.folder / ".gitignore").write_text("*\n", encoding="utf-8")
            st = self.folder.stat()
        except OSError as exc:
            raise self._unreadable(self.folder, exc) from None
        if not stat.S_ISDIR(st.st_mode) or not os.access(self.folder, os.R_OK | os.X_OK):
            raise self._unreadable(self.folder, None)
        _check_private(self.folder, st, "700")

    def _unreadable(self, path: Path, exc: OSError | None) -> GovernanceError:
        reason = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
        return _error(
            f"le dossier des clés de pseudonymisation est inaccessible{reason}",
            "keys_unreadable",
            file=path,
            hint=f"il faut un dossier lisible par Territoria seul (mode 700) ; définissez "
            f"{KEYS_ENV} vers un autre dossier ou corrigez celui-ci",
        )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write into an error a person can act on (a lost race passes)."""
        try:
            yield
        except FileExistsError:
            raise
        except OSError as exc:
            raise _error(
                f"impossible d'écrire dans le dossier des clés ({exc.strerror or exc})",
                "keys_unwritable",
                file=self.folder,
                hint="les clés se créent et se retirent là où Territoria peut écrire ; "
                "vérifiez le propriétaire et les droits du dossier",
            ) from None

    def _listing(self, domain: str) -> _Listing:
        """The domain's key numbers, re-read whenever the domain folder has changed."""
        folder = self.folder / domain
        try:
            st = folder.stat()
        except FileNotFoundError:
            return _EMPTY
        except OSError as exc:
            raise self._unreadable(folder, exc) from None
        cached = self._listings.get(domain)
        if cached is not None and cached.stamp == _stamp(st):
            return cached
        listing = self._read_listing(domain, folder, st)
        self._forget_stale_keys(domain, listing.live)
        self._listings[domain] = listing
        return listing

    def _read_listing(self, domain: str, folder: Path, st: os.stat_result) -> _Listing:
        if not stat.S_ISDIR(st.st_mode):
            raise self._unreadable(folder, None)
        _check_private(folder, st, "700")
        try:
            names = os.listdir(folder)
        except OSError as exc:
            raise self._unreadable(folder, exc) from None
        found: dict[str, set[int]] = {"key": set(), "retired": set()}
        for name in names:
            if match := _ENTRY.match(name):
                found[match.group(2)].add(int(match.group(1)))
        retired = tuple(sorted(found["retired"]))
        live = tuple(sorted(found["key"] - found["retired"]))
        if retired and (not live or retired[-1] > live[-1]):
            raise _error(
                f"les clés du domaine « {domain} » sont incohérentes : la clé la plus récente "
                "a disparu ou a été retirée",
                "keys_inconsistent",
                file=folder,
                hint="restaurez le dossier des clés depuis sa sauvegarde ; ne supprimez jamais "
                "une clé à la main (territoria policy keys retire)",
            )
        trusted = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS
        return _Listing(live, retired, _stamp(st) if trusted else None)

    def _forget_stale_keys(self, domain: str, live: tuple[int, ...]) -> None:
        """Drop cached keys that were retired, or whose file changed (restored, re-created)."""
        for cached in [k for k in self._keys if k[0] == domain]:
            path = self.folder / domain / f"k{cached[1]}.key"
            if cached[1] not in live or _signature(path) != self._keys[cached][1]:
                del self._keys[cached]

    def _live_number(self, domain: str, kid: str) -> int:
        match = _KID.match(kid) if isinstance(kid, str) else None
        if match is None or int(match.group(1)) not in self._listing(domain).live:
            retired = match is not None and int(match.group(1)) in self._listing(domain).retired
            raise _error(
                f"clé inconnue pour le domaine « {domain} » : {kid!r}"
                + (" (clé retirée)" if retired else ""),
                "key_unknown",
                details={"domain": domain, "kid": str(kid)},
                hint=f"voir « territoria policy keys list » ; clés du domaine : "
                f"{', '.join(self.kids(domain)) or 'aucune'}",
            )
        return int(match.group(1))

    def _add_key(self, domain: str, listing: _Listing) -> int:
        """Create the next key id (never reused); another process may win the race."""
        folder = self.folder / domain
        with self._writing():
            folder.mkdir(mode=0o700, exist_ok=True)
        number = max(listing.live + listing.retired, default=0) + 1
        while True:
            path = folder / f"k{number}.key"
            try:
                with self._writing():
                    _write_atomic(path, secrets.token_bytes(KEY_BYTES), exclusive=True)
            except FileExistsError:
                if not listing.live:  # first key: use the one the other process created
                    return self._listing(domain).live[-1]
                number += 1
                continue
            self._listings.pop(domain, None)
            return number

    def _load(self, domain: str, number: int) -> bytes:
        cached = self._keys.get((domain, number))
        if cached is not None:
            return cached[0]
        path = self.folder / domain / f"k{number}.key"
        try:
            with path.open("rb") as handle:
                st = os.fstat(handle.fileno())
                _check_private(path, st, "600")
                key = handle.read(KEY_BYTES + 1)
        except OSError as exc:
            raise self._unreadable(path, exc) from None
        if len(key) != KEY_BYTES:
            raise _error(
                f"fichier de clé corrompu : il doit contenir exactement {KEY_BYTES} octets",
                "key_corrupt",
                file=path,
                hint="restaurez ce fichier depuis la sauvegarde du dossier des clés",
            )
        self._keys[(domain, number)] = (key, _stamp(st))
        return key

    def _describe(self, domain: str) -> list[KeyInfo]:
        listing = self._listing(domain)
        folder = self.folder / domain
        infos = [
            KeyInfo(
                domain,
                f"k{n}",
                "current" if n == listing.live[-1] else "previous",
                _modified(folder / f"k{n}.key"),
                None,
            )
            for n in listing.live
        ]
        for n in listing.retired:
            retired_at = _read_text(folder / f"k{n}.retired")
            infos.append(KeyInfo(domain, f"k{n}", "retired", None, retired_at))
        return sorted(infos, key=lambda info: int(info.kid[1:]))


def _check_private(path: Path, st: os.stat_result, mode: str) -> None:
    if os.name == "posix" and st.st_mode & _PROTECTED:
        raise _error(
            "les clés de pseudonymisation sont lisibles par d'autres comptes que Territoria",
            "keys_unprotected",
            file=path,
            hint=f"chmod {mode} {path}",
        )


def _refuse_inside_store(keys: Path, store: Path) -> None:
    keys_abs, store_abs = keys.resolve(), store.resolve()
    if keys_abs == store_abs or store_abs in keys_abs.parents or keys_abs in store_abs.parents:
        raise _error(
            "le dossier des clés ne doit ni être dans le magasin de données ni le contenir",
            "keys_in_store",
            file=keys,
            hint=f"définissez {KEYS_ENV} vers un dossier séparé (par défaut <espace>/keys)",
        )


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        return _stamp(path.stat())
    except OSError:
        return None


def _modified(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def secret_forms(keyring: Keyring) -> list[str]:
    """Every key in the usual text forms, so a test can grep logs and exports for them."""
    forms: list[str] = []
    for domain in keyring.domains():
        for kid in keyring.kids(domain):
            key = keyring.key(domain, kid)
            b64, url = base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()
            forms += [key.hex(), key.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("=")]
            forms.append(repr(key)[2:-1])
    return forms


# -- pseudonyms ----------------------------------------------------------------------------


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits -> 2 characters


def _base32_130(mac: bytes) -> str:
    """``base64.b32encode(mac)[:26]``, five times faster on Python 3.11 (pure-Python there)."""
    n = int.from_bytes(mac[:17], "big") >> 6  # the first 130 bits
    t = _B32_PAIRS
    return (
        t[n >> 120] + t[(n >> 110) & 1023] + t[(n >> 100) & 1023] + t[(n >> 90) & 1023]
        + t[(n >> 80) & 1023] + t[(n >> 70) & 1023] + t[(n >> 60) & 1023] + t[(n >> 50) & 1023]
        + t[(n >> 40) & 1023] + t[(n >> 30) & 1023] + t[(n >> 20) & 1023] + t[(n >> 10) & 1023]
        + t[n & 1023]
    )  # fmt: skip


class _KeyCache:
    """Pseudonyms already computed under one (domain, kid), both ways."""

    __slots__ = ("_mac", "forward", "key", "prefix", "reverse")

    def __init__(self, prefix: str, key: bytes) -> None:
        self.prefix = prefix
        self.key = key
        self._mac = hmac.new(key, digestmod="sha256")  # keyed once, copied per value
        self.forward: dict[str, str] = {}
        self.reverse: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<pseudonymes {self.prefix}… : {len(self.forward)} en cache>"

    def add(self, value: str) -> str:
        if not isinstance(value, str):
            raise _error(
                f"seul un texte peut être pseudonymisé, pas {type(value).__name__}",
                "value_invalid",
            )
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        pseudonym = self.prefix + _base32_130(mac.digest())
        self.forward[value] = pseudonym
        self.reverse[pseudonym] = value
        return pseudonym


class Pseudonymiser:
    """Per-domain pseudonyms ``TAG.kid.<26 base-32>`` of values, and their resolution."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._caches: dict[tuple[str, str], _KeyCache] = {}

    def __repr__(self) -> str:
        return f"Pseudonymiser({self.keyring!r})"

    def pseudonym(self, domain: str, value: str) -> str:
        """The pseudonym of ``value`` in ``domain`` under the domain's current key."""
        kid, key = self.keyring.current(domain)
        cache = self._cache(domain, kid, key)
        found = cache.forward.get(value)
        return found if found is not None else cache.add(value)

    def pseudonyms(self, domain: str, values: Iterable[str]) -> dict[str, str]:
        """value -> pseudonym for many values (one key look-up)."""
        kid, key = self.keyring.current(domain)
        cache = self._cache(domain, kid, key)
        forward = cache.forward
        return {v: forward[v] if v in forward else cache.add(v) for v in values}

    def resolve(self, domain: str, pseudonym: str, candidates: Iterable[str]) -> str | None:
        """The candidate whose pseudonym (under the kid it names) is ``pseudonym``, or None."""
        parts = pseudonym.split(".") if isinstance(pseudonym, str) else []
        if len(parts) != 3 or parts[0] != domain_tag(domain) or len(parts[2]) != PSEUDONYM_CHARS:
            return None
        try:
            key = self.keyring.key(domain, parts[1])
        except GovernanceError as exc:
            if exc.code != "key_unknown":
                raise
            self._caches.pop((domain, parts[1]), None)
            return None
        cache = self._cache(domain, parts[1], key)
        return _search(cache, pseudonym, candidates)

    def _cache(self, domain: str, kid: str, key: bytes) -> _KeyCache:
        cache = self._caches.get((domain, kid))
        if cache is None or not hmac.compare_digest(cache.key, key):
            cache = _KeyCache(f"{domain_tag(domain)}.{kid}.", key)
            self._caches[(domain, kid)] = cache
        return cache


def _search(cache: _KeyCache, pseudonym: str, candidates: Iterable[str]) -> str | None:
    """Find ``pseudonym`` among ``candidates``, computing only pseudonyms not yet cached.

    A pseudonym already in the reverse map costs a membership test (O(1) for a set or a
    mapping). Otherwise every candidate never seen is pseudonymised once, so that a later call
    with the same population is a dictionary look-up; a miss costs one set difference.
    """
    known = cache.reverse.get(pseudonym)
    if known is not None:
        return known if known in candidates else None
    pool = candidates if isinstance(candidates, set | frozenset) else set(candidates)
    for value in pool.difference(cache.forward):
        if isinstance(value, str):
            cache.add(value)
    return cache.reverse.get(pseudonym)


# -- normalisation before hashing (PS-4) ---------------------------------------------------

# Letters that lose nothing but their accent yet have no Unicode decomposition.
_SPECIAL = str.maketrans(
    {"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
     "ħ": "h", "ŋ": "n", "ĸ": "k"}
)  # fmt: skip
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_DIGITS = re.compile(r"[0-9]")
_FRENCH = re.compile(r"0[1-9][0-9]{8}")
_OVERSEAS = ("262", "590", "594", "596")  # Réunion and Mayotte, Guadeloupe, Guyane, Martinique
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_YMD = re.compile(rf"(\d{{4}})[-/. ](\d{{1,2}})[-/. ](\d{{1,2}}){_TIME}", re.ASCII)
_DMY = re.compile(rf"(\d{{1,2}})[-/. ](\d{{1,2}})[-/. ](\d{{4}}){_TIME}", re.ASCII)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_IN_WORDS = re.compile(r"(?:le )?(\d{1,2})(?:er|e)? ([a-z]+)\.? (\d{4})", re.ASCII)
_MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4,
    "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9, "sept": 9,
    "sep": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "decembre": 12, "dec": 12,
}  # fmt: skip


def _folded(value: str) -> str:
    """NFKC, case-folded, accents removed (letters, digits and other characters kept)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", value).casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).translate(_SPECIAL)


def _text(value: str) -> str:
    """Letters and digits only: "Jean-Pierre  D'Élan" and "JEAN PIERRE DELAN" agree."""
    if value.isascii():
        return "".join(c for c in value.lower() if c.isalnum())
    return "".join(c for c in _folded(value) if unicodedata.category(c)[0] in "LN")


def _email(value: str) -> str:
    """Lower-case address without spaces, brackets or "mailto:" (accents kept: EAI)."""
    text = value
    for _ in range(8):  # until stable: folding may uncover another bracket or prefix
        previous, text = text, _email_once(text)
        if text == previous:
            break
    return text


def _email_once(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold()
    text = unicodedata.normalize("NFKC", "".join(text.split()))
    if (start := text.rfind("<")) >= 0 and (end := text.find(">", start)) > start:
        text = text[start + 1 : end]
    return text.strip(".,;:'\"<>").removeprefix("mailto:")


def _phone(value: str) -> str:
    """French numbers as 0XXXXXXXXX (from +33, 0033, 33…, overseas +262/590/594/596)."""
    text = _TRUNK_ZERO.sub("", unicodedata.normalize("NFKC", value))
    digits = "".join(_DIGITS.findall(text))
    if not digits:
        return _text(value)
    if text.lstrip().startswith("+"):
        return _international(digits) or "+" + digits
    if digits.startswith("00") and len(digits) != 10:
        return _international(digits[2:]) or digits
    if len(digits) == 11 and digits.startswith("33"):
        return _french(digits[2:]) or digits
    if len(digits) == 9 and digits[0] != "0":  # leading zero lost in a spreadsheet
        return "0" + digits if _FRENCH.fullmatch("0" + digits) else digits
    return digits


def _international(digits: str) -> str | None:
    if digits.startswith("33"):
        return _french(digits[2:])
    if digits[:3] in _OVERSEAS and len(digits) == 12:
        return "0" + digits[3:]
    return None


def _french(subscriber: str) -> str | None:
    national = subscriber if subscriber.startswith("0") else "0" + subscriber
    return national if _FRENCH.fullmatch(national) else None


def _date(value: str) -> str:
    """YYYY-MM-DD when the text is a whole date with a four-digit year, else its text form."""
    text = unicodedata.normalize("NFKC", value).strip()
    parts: tuple[int, int, int] | None = None
    if match := _YMD.fullmatch(text):
        parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    elif match := _DMY.fullmatch(text):
        parts = (int(match.group(3)), int(match.group(2)), int(match.group(1)))
    elif match := _IN_WORDS.fullmatch(" ".join(re.split(r"[^a-z0-9.]+", _folded(text))).strip()):
        month = _MONTHS.get(match.group(2), 0)
        parts = (int(match.group(3)), month, int(match.group(1)))
    iso = _iso(parts)
    if iso is not None:
        return iso
    folded = _text(value)
    if match := _COMPACT.fullmatch(folded):
        iso = _iso((int(match.group(1)), int(match.group(2)), int(match.group(3))))
    return iso or folded


def _iso(parts: tuple[int, int, int] | None) -> str | None:
    if parts is None:
        return None
    try:
        return date(*parts).isoformat()
    except ValueError:
        return None


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "phone": _phone,
    "email": _email,
    "date": _date,
    "text": _text,
}


def normalise_identifier(kind: IdentifierKind, value: str) -> str:
    """The versioned form of an identifier that is hashed (``NORMALISATION_VERSION``).

    ``normalise_identifier("phone", "+33 6 12 34 56 78") == "0612345678"``;
    ``normalise_identifier("date", "03/04/1971") == "1971-04-03"``. An empty result means
    there is nothing to pseudonymise.
    """
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        raise _error(
            f"type d'identifiant inconnu : {kind!r}",
            "identifier_kind_invalid",
            expected=", ".join(_NORMALISERS),
        )
    if not isinstance(value, str):
        raise _error(
            f"un identifiant se normalise depuis un texte, pas {type(value).__name__}",
            "value_invalid",
        )
    return normaliser(value)

"""The custody of the per-domain pseudonymisation keys, in a folder outside the data store.

Why a module of its own: who may read a key, where it lives and how it is rotated or shredded is
a security concern separate from computing pseudonyms (``pseudonyms.py``). The keys live in
``TERRITORIA_KEYS_DIR``, else ``<workspace>/keys`` (never in SQLite, Parquet or PostgreSQL). One
sub-folder per domain holds ``k1.key``, ``k2.key``… (32 random bytes, mode 0600, written
atomically and never overwritten) and, for a retired key, a ``kN.retired`` tombstone so that a
key id is never reused. The current key is the highest live one; every pseudonym carries its key
id, so rotation keeps old pseudonyms resolvable until their key is retired (crypto-shredding).
No message or repr ever shows key material.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from territoria.core.errors import GovernanceError

__all__ = [
    "DOMAIN_MAX_LENGTH",
    "DOMAIN_PATTERN",
    "KEYS_ENV",
    "KEY_BYTES",
    "KeyInfo",
    "KeyStatus",
    "Keyring",
    "check_domain",
]

DOMAIN_PATTERN = r"^[a-z][a-z0-9_]*$"
DOMAIN_MAX_LENGTH = 48
KEYS_ENV = "TERRITORIA_KEYS_DIR"
KEY_BYTES = 32

KeyStatus = Literal["current", "previous", "retired"]

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


def check_domain(domain: object) -> str:
    """``domain`` if it is a valid domain name (a key folder's name); ``domain_invalid`` else."""
    if not isinstance(domain, str) or len(domain) > DOMAIN_MAX_LENGTH or not _DOMAIN.match(domain):
        raise _error(
            f"nom de domaine de pseudonymisation invalide : {domain!r}",
            "domain_invalid",
            expected=f"minuscules, chiffres et _, commençant par une lettre, {DOMAIN_MAX_LENGTH} "
            "caractères au plus (ex. « bibliotheque », « ccas », « statistiques »)",
        )
    return domain


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
        listing = self._listing(check_domain(domain))
        if not listing.live:
            self._add_key(domain, listing)
            listing = self._listing(domain)
        number = listing.live[-1]
        return f"k{number}", self._load(domain, number)

    def key(self, domain: str, kid: str) -> bytes:
        """The key ``kid`` of ``domain``; ``key_unknown`` if it never existed or was retired."""
        number = self._live_number(check_domain(domain), kid)
        return self._load(domain, number)

    def rotate(self, domain: str) -> str:
        """Create a new current key and return its kid; older keys stay until retired."""
        listing = self._listing(check_domain(domain))
        return f"k{self._add_key(domain, listing)}"

    def retire(self, domain: str, kid: str) -> None:
        """Delete an old key: the pseudonyms written under it can no longer be resolved."""
        number = self._live_number(check_domain(domain), kid)
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
        return [f"k{n}" for n in self._listing(check_domain(domain)).live]

    def retired_kids(self, domain: str) -> list[str]:
        """The key ids of ``domain`` that were retired (their keys are gone)."""
        return [f"k{n}" for n in self._listing(check_domain(domain)).retired]

    def describe(self, domain: str | None = None) -> list[KeyInfo]:
        """Every key id of one or all domains with its status and dates (no key material)."""
        names = self.domains() if domain is None else [check_domain(domain)]
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

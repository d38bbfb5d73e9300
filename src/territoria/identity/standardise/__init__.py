"""Pure standardisers of French identity data for record linkage.

Every function takes any text (or None) and never raises: what cannot be read comes back
as None, an empty field or a French ``problem``. Outputs are folded to upper-case ASCII (names,
addresses) or to a canonical form (dates, phones, e-mails), and standardising an output again
leaves it unchanged.
"""

from __future__ import annotations

from territoria.identity.standardise.addresses import Address, standardise_address
from territoria.identity.standardise.contact import (
    standardise_email,
    standardise_phone,
    standardise_sex,
)
from territoria.identity.standardise.dates import BirthDate, standardise_birth_date
from territoria.identity.standardise.fullname import (
    is_given_name,
    is_organisation,
    split_full_name,
)
from territoria.identity.standardise.names import (
    PersonName,
    given_name_key,
    names_compatible,
    standardise_name,
)
from territoria.identity.standardise.text import fold, jaro_winkler

__all__ = [
    "Address",
    "BirthDate",
    "PersonName",
    "fold",
    "given_name_key",
    "is_given_name",
    "is_organisation",
    "jaro_winkler",
    "names_compatible",
    "split_full_name",
    "standardise_address",
    "standardise_birth_date",
    "standardise_email",
    "standardise_name",
    "standardise_phone",
    "standardise_sex",
]

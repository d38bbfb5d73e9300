"""Money in integer cents: parsing grid prices, rounding as a grid says, French formatting.

Every amount the engine computes is an integer number of cents; a bill's total is the sum of its
lines, so totals are exact to the cent. Prices in grids are decimals (euros, or euros per kg
with up to four decimals); they are converted once, here.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

Rounding = Literal["half_up", "down"]

_MODES = {"half_up": ROUND_HALF_UP, "down": ROUND_DOWN}


def to_cents(euros: Decimal, rounding: Rounding = "half_up") -> int:
    """Euros to whole cents, rounded as the grid says (``half_up`` or ``down``)."""
    return int((euros * 100).quantize(Decimal(1), rounding=_MODES[rounding]))


def divide(numerator: int, denominator: int, rounding: Rounding = "half_up") -> int:
    """``numerator / denominator`` rounded to an integer (both non-negative)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if rounding == "down":
        return numerator // denominator
    return (2 * numerator + denominator) // (2 * denominator)


def period_share(annual_cents: int, index: int, count: int, rounding: Rounding) -> int:
    """The ``index``-th (1-based) of ``count`` equal shares of an annual amount.

    Shares are rounded cumulatively (share k = round(k/n) − round((k−1)/n)), so the shares of
    a year always add up to the annual amount exactly: 312,25 € billed per semester gives
    156,13 € then 156,12 €.
    """
    return divide(annual_cents * index, count, rounding) - divide(
        annual_cents * (index - 1), count, rounding
    )


def euros(cents: int) -> str:
    """``31225`` → ``312,25 €`` (French notation, narrow no-break space between thousands)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{rest:02d} €"


def price(value: Decimal) -> str:
    """A unit price as written in a grid: ``Decimal('0.2350')`` → ``0,235 €``."""
    text = format(value.normalize(), "f")
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.ljust(2, "0")
    else:
        whole, frac = text, "00"
    return f"{whole},{frac} €"

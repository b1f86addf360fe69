"""How numbers read in a brief: one formatter per kind, so wording and checks agree.

>>> usd(1234.5), usd(12.345), usd(-2.5e6), signed_usd(980.0), pct(12.34), signed_pct(-3.0)
('$1,234', '$12.35', '-$2.50M', '+$980.00', '12.3%', '-3.0%')
>>> tokens(1_234_567), tokens(950.0)
('1.23M', '950')
"""

from __future__ import annotations

__all__ = ["pct", "plain", "renderings", "signed_pct", "signed_usd", "tokens", "usd"]

_SCALES = ((1e9, "B"), (1e6, "M"))


def usd(value: float) -> str:
    """Dollars: cents below $1,000, whole dollars below $1M, then $1.23M and $4.56B."""
    sign = "-" if value < 0 else ""
    a = abs(value)
    for scale, suffix in _SCALES:
        if a >= scale:
            return f"{sign}${a / scale:,.2f}{suffix}"
    if a >= 1000:
        return f"{sign}${a:,.0f}"
    return f"{sign}${a:,.2f}"


def signed_usd(value: float) -> str:
    """Dollars with an explicit sign, for changes."""
    text = usd(value)
    return text if text.startswith("-") else "+" + text


def pct(value: float) -> str:
    """A percentage with one decimal (``value`` is already in percent)."""
    return f"{value:,.1f}%"


def signed_pct(value: float) -> str:
    return f"{value:+,.1f}%"


def tokens(value: float) -> str:
    """A count: 950, 12,345, 1.23M, 4.56B."""
    a = abs(value)
    for scale, suffix in _SCALES:
        if a >= scale:
            return f"{value / scale:,.2f}{suffix}"
    return f"{value:,.0f}"


def plain(value: float) -> str:
    """A plain quantity with two decimals (feature values, ratios)."""
    return f"{value:,.2f}"


def renderings(value: float) -> set[str]:
    """Every way a brief may print ``value`` (used to check that wording matches the numbers)."""
    out = {usd(value), signed_usd(value), pct(value), signed_pct(value), tokens(value), plain(value)}
    return {s.lstrip("+") for s in out} | out

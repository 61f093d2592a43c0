"""`NA`: the value of a field a GPU does not report, so that missing data never raises."""

from __future__ import annotations

import math
from typing import Any


class NaType:
    """The type of the `NA` singleton: falsy, prints "N/A", absorbs arithmetic, formats safely.

    Modelled on nvitop's `NaType`: a widget can format `f"{gpu.power_w:.0f} W"` without first
    checking whether the GPU reports power, and `used / total` is `NA` when either side is.
    """

    __slots__ = ()
    _instance: NaType | None = None

    def __new__(cls) -> NaType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "N/A"

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is self

    def __ne__(self, other: object) -> bool:
        return other is not self

    def __hash__(self) -> int:
        return hash("runexp_tui.NA")

    def __float__(self) -> float:
        # NaN keeps float() safe for plotting code that already skips NaN.
        return math.nan

    def __format__(self, spec: str) -> str:
        # Keep the fill, alignment and width of a numeric spec; drop precision and type, which
        # a string cannot take ("{:6.1f}" -> "   N/A").
        return format("N/A", _text_spec(spec))

    # Arithmetic with a missing value is a missing value.
    def _absorb(self, _other: Any) -> NaType:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = _absorb
    __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _absorb
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _absorb

    def __neg__(self) -> NaType:
        return self

    def __abs__(self) -> NaType:
        return self

    def __round__(self, ndigits: int | None = None) -> NaType:
        return self

    def __copy__(self) -> NaType:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NaType:
        return self

    def __reduce__(self) -> str:
        # Pickles by name so that unpickling yields the same singleton.
        return "NA"


def _text_spec(spec: str) -> str:
    """Turn a numeric format spec into one a string accepts: [[fill]align][width]."""
    if not spec:
        return ""
    i = 0
    out = ""
    if len(spec) >= 2 and spec[1] in "<>^=":
        out, i = spec[0] + ("<" if spec[1] == "=" else spec[1]), 2
    elif spec[0] in "<>^=":
        out, i = ("<" if spec[0] == "=" else spec[0]), 1
    while i < len(spec) and spec[i] in "+- #0":
        i += 1
    width = ""
    while i < len(spec) and spec[i].isdigit():
        width += spec[i]
        i += 1
    if width and not out:
        out = ">"  # numbers right-align by default; N/A stays in the same column
    return out + width


NA = NaType()


def is_na(value: object) -> bool:
    """True for `NA` (and None, which older callers may pass for "unknown")."""
    return value is NA or value is None

"""How a Parquet value reads as text in Tokenmill (docs/DECISIONS.md, "Parquet values as
text"), computed from pyarrow's reading of the column, independently of Tokenmill's code:
the test oracle for every type Tokenmill renders."""
from __future__ import annotations

import datetime
import math


def _ticks(col):
    """The column's raw integer ticks (days, or time units), as pyarrow casts them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    width = pa.int32() if pa.types.is_date32(t) or pa.types.is_time32(t) else pa.int64()
    return pc.cast(col, width).to_pylist()


_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def _date(days: int) -> str:
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _clock(seconds_of_day: int, frac: int, digits: int) -> str:
    h, rest = divmod(seconds_of_day, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" + (f".{frac:0{digits}d}" if digits else "")


def shortest(h) -> str:
    """A float16 or float32 value as Tokenmill writes it (docs/DECISIONS.md): the type's
    shortest digits that read back to the same value, laid out by Python's repr rule
    (positional for 1e-4 <= |x| < 1e16, else scientific). Spelled out here rather than
    taken from `str()`: numpy 2.3 and later switch float16 and float32 to scientific
    earlier (`6.55e+04` where older numpy, and Python's rule, give `65500.0`)."""
    import numpy as np

    a = abs(float(h))
    if a != 0 and (a < 1e-4 or a >= 1e16):
        return np.format_float_scientific(h, unique=True, trim="-", exp_digits=2)
    return np.format_float_positional(h, unique=True, trim="0")


def texts(col) -> list[str | None]:
    """Each value of a pyarrow column (a ChunkedArray or Array) as Tokenmill's text; None
    for types Tokenmill does not render (it must refuse them by name)."""
    import numpy as np
    import pyarrow as pa

    t = col.type
    values = col.to_pylist() if not (pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_date32(t)) else None
    if pa.types.is_date32(t):
        return ["" if v is None else _date(v) for v in _ticks(col)]
    if pa.types.is_time(t):
        per = 10 ** _DIGITS[t.unit]
        return ["" if v is None else _clock(v // per, v % per, _DIGITS[t.unit]) for v in _ticks(col)]
    if pa.types.is_timestamp(t):
        per = 10 ** _DIGITS[t.unit]
        out = []
        for v in _ticks(col):
            if v is None:
                out.append("")
                continue
            secs, frac = divmod(v, per)
            days, sod = divmod(secs, 86400)
            out.append(_date(days) + "T" + _clock(sod, frac, _DIGITS[t.unit]) + ("Z" if t.tz is not None else ""))
        return out
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append("")
        elif pa.types.is_boolean(t):
            out.append("true" if v else "false")
        elif pa.types.is_integer(t):
            out.append(str(v))
        elif pa.types.is_decimal(t):
            out.append(format(v, "f"))
        elif pa.types.is_floating(t):
            f = float(v)
            if math.isnan(f):
                out.append("NaN")
            elif math.isinf(f):
                out.append("Infinity" if f > 0 else "-Infinity")
            elif pa.types.is_float16(t):
                out.append(shortest(np.float16(v)))
            elif pa.types.is_float32(t):
                out.append(shortest(np.float32(v)))
            else:
                out.append(repr(f))
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            out.append(v)
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            out.append(v.decode("utf-8", "replace"))
        else:
            out.append(None)
    return out

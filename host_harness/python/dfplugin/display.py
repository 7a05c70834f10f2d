"""Arrow display strings in Python, matching arrow-rs ``ArrayFormatter`` with
``FormatOptions::default().with_null("NULL")`` (what the Rust conformance host prints).

Covered exactly: null, booleans, integers, floats (arrow-rs formats floats like ``ryu``:
``1.0``, ``0.1``, ``1e16``, ``1e-7``, ``NaN``, ``inf``; f32 switches to exponent form
earlier than f64), strings, binary (lowercase hex), decimals, Date32, Date64, timestamps
(with and without time zone), Time32/Time64, lists (``[a, NULL, b]``), structs
(``{a: 1, b: x}``), maps (``{k: v}``) and dictionaries (their values).

Approximated (documented differences): durations and intervals (arrow-rs prints e.g.
``0 days 0 hours 0 mins 1.500 secs``; here pyarrow's text), Float16 (formatted as f32),
dates/timestamps outside Python's ``datetime`` range (year 1..9999).
"""

from __future__ import annotations

import datetime as _dt
import struct
from decimal import Decimal
from typing import Any, List, Optional

import pyarrow as pa
import pyarrow.types as pat

__all__ = ["NULL", "format_float", "format_array", "rows_of", "rows_of_table"]

NULL = "NULL"
_EPOCH = _dt.datetime(1970, 1, 1)
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _shortest_digits(text: str) -> "tuple[str, int]":
    """``(digits, k)`` with value == int(digits) * 10**k, from a Python float text."""
    mant, _, exp = text.partition("e")
    k = int(exp) if exp else 0
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    k -= len(frac)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    return stripped or "0", k


def _f32_text(x: float) -> str:
    """Shortest decimal text that round-trips ``x`` as an IEEE f32."""
    target = struct.pack("<f", x)
    for p in range(1, 10):
        s = f"{x:.{p - 1}e}"
        try:
            if struct.pack("<f", float(s)) == target:
                return s
        except OverflowError:
            continue
    return f"{x:.8e}"


def format_float(x: float, bits: int = 64) -> str:
    """Formats a float like arrow-rs (the ``ryu`` crate's layout)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    sign = "-" if (x < 0 or (x == 0 and struct.pack("<d", x)[7] & 0x80)) else ""
    if x == 0:
        return sign + "0.0"
    text = repr(abs(x)) if bits == 64 else _f32_text(abs(x))
    digits, k = _shortest_digits(text)
    length = len(digits)
    kk = length + k
    hi, lo = (16, -5) if bits == 64 else (13, -6)
    if 0 <= k and kk <= hi:
        body = digits + "0" * k + ".0"
    elif 0 < kk <= hi:
        body = digits[:kk] + "." + digits[kk:]
    elif lo < kk <= 0:
        body = "0." + "0" * (-kk) + digits
    elif length == 1:
        body = f"{digits}e{kk - 1}"
    else:
        body = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + body


def _fraction(nanos: int) -> str:
    """chrono's ``%.f`` / ``SecondsFormat::AutoSi``: 0, 3, 6 or 9 digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _split(value: int, unit: str) -> "tuple[int, int]":
    per = _UNIT_NS[unit]
    total_ns = value * per
    secs, nanos = divmod(total_ns, 1_000_000_000)
    return secs, nanos


def _naive_datetime(secs: int, nanos: int) -> str:
    d = _EPOCH + _dt.timedelta(seconds=secs)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(nanos)


def _tz_datetime(secs: int, nanos: int, tz: str) -> str:
    zone: Any
    if tz.upper() in ("UTC", "Z") or tz in ("+00:00", "-00:00"):
        zone = _dt.timezone.utc
    elif tz[:1] in "+-" and ":" in tz:
        sign = 1 if tz[0] == "+" else -1
        h, m = tz[1:].split(":", 1)
        zone = _dt.timezone(sign * _dt.timedelta(hours=int(h), minutes=int(m)))
    elif tz[:1] in "+-" and len(tz) == 5:
        sign = 1 if tz[0] == "+" else -1
        zone = _dt.timezone(sign * _dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])))
    else:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
    d = (_EPOCH.replace(tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=secs)).astimezone(zone)
    offset = d.utcoffset() or _dt.timedelta(0)
    if offset == _dt.timedelta(0):
        suffix = "Z"
    else:
        total = int(offset.total_seconds())
        sign = "+" if total >= 0 else "-"
        total = abs(total)
        suffix = f"{sign}{total // 3600:02d}:{(total % 3600) // 60:02d}"
    return d.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(nanos) + suffix


def _values(arr: pa.Array) -> List[Any]:
    return arr.to_pylist()


def format_array(arr: "pa.Array | pa.ChunkedArray") -> List[str]:
    """Display strings of every element (``NULL`` for nulls)."""
    if isinstance(arr, pa.ChunkedArray):
        out: List[str] = []
        for chunk in arr.chunks:
            out.extend(format_array(chunk))
        return out
    cells = _format(arr)
    return [NULL if c is None else c for c in cells]


def _format(arr: pa.Array) -> List[Optional[str]]:
    """Display strings, ``None`` for nulls (nested nulls are already ``NULL``)."""
    t = arr.type
    n = len(arr)
    valid = arr.is_valid().to_pylist() if n else []

    def with_nulls(texts: List[str]) -> List[Optional[str]]:
        return [s if ok else None for s, ok in zip(texts, valid)]

    if isinstance(t, pa.ExtensionType):
        return _format(arr.storage)
    if pat.is_dictionary(t):
        return _format(arr.dictionary_decode())
    if pat.is_null(t):
        return [None] * n
    if pat.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in _values(arr)]
    if pat.is_integer(t):
        return [None if v is None else str(v) for v in _values(arr)]
    if pat.is_floating(t):
        bits = 64 if pat.is_float64(t) else 32
        return [None if v is None else format_float(float(v), bits) for v in _values(arr)]
    if pat.is_string(t) or pat.is_large_string(t) or (hasattr(pat, "is_string_view") and pat.is_string_view(t)):
        return _values(arr)
    if (
        pat.is_binary(t)
        or pat.is_large_binary(t)
        or pat.is_fixed_size_binary(t)
        or (hasattr(pat, "is_binary_view") and pat.is_binary_view(t))
    ):
        return [None if v is None else bytes(v).hex() for v in _values(arr)]
    if pat.is_decimal(t):
        return [None if v is None else _decimal_text(v, t.scale) for v in _values(arr)]
    if pat.is_date32(t):
        days = arr.cast(pa.int32()).to_pylist()
        return [None if v is None else (_dt.date(1970, 1, 1) + _dt.timedelta(days=v)).isoformat() for v in days]
    if pat.is_date64(t):
        ms = arr.cast(pa.int64()).to_pylist()
        return [None if v is None else _naive_datetime(*_split(v, "ms")) for v in ms]
    if pat.is_timestamp(t):
        raw = arr.cast(pa.int64()).to_pylist()
        if t.tz is None:
            return [None if v is None else _naive_datetime(*_split(v, t.unit)) for v in raw]
        return [None if v is None else _tz_datetime(*_split(v, t.unit), t.tz) for v in raw]
    if pat.is_time32(t) or pat.is_time64(t):
        raw = arr.cast(pa.int64() if pat.is_time64(t) else pa.int32()).to_pylist()
        out = []
        for v in raw:
            if v is None:
                out.append(None)
                continue
            secs, nanos = _split(v, t.unit)
            out.append(f"{secs // 3600:02d}:{(secs % 3600) // 60:02d}:{secs % 60:02d}{_fraction(nanos)}")
        return out
    if pat.is_map(t):
        # .values is the unsliced entries array; offsets index it absolutely.
        keys = format_array(arr.values.field(0))
        items = format_array(arr.values.field(1))
        offsets = arr.offsets.to_pylist()
        texts = [
            "{" + ", ".join(f"{keys[j]}: {items[j]}" for j in range(offsets[i], offsets[i + 1])) + "}"
            for i in range(n)
        ]
        return with_nulls(texts)
    if pat.is_list(t) or pat.is_large_list(t) or (hasattr(pat, "is_list_view") and (pat.is_list_view(t) or pat.is_large_list_view(t))):
        flat = format_array(arr.values)
        offsets = arr.offsets.to_pylist()
        if hasattr(arr, "sizes") and (pat.is_list_view(t) or pat.is_large_list_view(t)):
            sizes = arr.sizes.to_pylist()
            spans = [(offsets[i], offsets[i] + sizes[i]) for i in range(n)]
        else:
            spans = [(offsets[i], offsets[i + 1]) for i in range(n)]
        # .values ignores the slice offset; offsets index it absolutely.
        texts = ["[" + ", ".join(flat[a:b]) + "]" for a, b in spans]
        return with_nulls(texts)
    if pat.is_fixed_size_list(t):
        flat = format_array(arr.values)
        size = t.list_size
        # .values ignores the slice offset.
        start = arr.offset
        texts = ["[" + ", ".join(flat[(start + i) * size : (start + i + 1) * size]) + "]" for i in range(n)]
        return with_nulls(texts)
    if pat.is_struct(t):
        fields = [t.field(i).name for i in range(t.num_fields)]
        children = [format_array(arr.field(i)) for i in range(t.num_fields)]
        texts = [
            "{" + ", ".join(f"{fields[j]}: {children[j][i]}" for j in range(len(fields))) + "}" for i in range(n)
        ]
        return with_nulls(texts)
    # Durations, intervals, unions, ...: not reproduced exactly (see module docs).
    return [None if v is None else str(v) for v in _values(arr)]


def _decimal_text(v: Decimal, scale: int) -> str:
    if scale <= 0:
        return str(int(v))
    return f"{v:.{scale}f}"


def rows_of(batches: "List[pa.RecordBatch]") -> List[List[str]]:
    """Rows of display strings, like ``host_harness/src/conform.rs::rows_of``."""
    rows: List[List[str]] = []
    for batch in batches:
        columns = [format_array(batch.column(i)) for i in range(batch.num_columns)]
        rows.extend([list(r) for r in zip(*columns)] if columns else [[] for _ in range(batch.num_rows)])
    return rows


def rows_of_table(table: pa.Table) -> List[List[str]]:
    """Rows of display strings of a pyarrow Table."""
    return rows_of(table.to_batches())

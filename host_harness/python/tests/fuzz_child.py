"""Fuzz child process for ``test_fuzz.py``: the real plugin library in datafusion-python 55.

Runs seeded, bounded inputs against the plugin loaded with ``dfplugin.load(lib)`` into
``SessionContext`` objects, and prints one JSON summary line at the end. Families, numbered
one after the other into global case indices (so a run can resume after a crash with
``--start``):

- ``functions``: every scalar, aggregate and window function of the plugin, called on random
  pyarrow columns (every integer width with its extremes, floats with NaN/inf/-0.0, string,
  large_string, string_view and dictionary columns with empty, 100k-character and odd
  Unicode values, binary with invalid UTF-8, booleans, dates, timestamps, decimals, lists,
  maps, the span struct and random structs, all-NULL and 0-row columns, several batches and
  partitions) registered with ``register_record_batches``, and on random literals;
- ``options``: random plugin options given to ``plugin.session_context(options=...)``, then
  ``SET codeanatomy.<key> = <value>`` and probe queries;
- ``delta``: Delta tables written with ``deltalake.write_deltalake``, copied and mutated (data
  files: bit flips, a Parquet footer length of 0x7fffffff, truncation, zeroed pages, bad
  magic, deletion; logs: truncated/garbage/ill-typed lines, add actions whose path leaves the
  table root, bad stats, missing commits, bad checkpoints), read with ``delta_scan``,
  ``count(*)``, ``delta_files`` and ``CREATE EXTERNAL TABLE ... STORED AS DELTA``.

Every input must return rows or raise a clean ``Exception`` (non-empty message, no panic
text, no DataFusion internal error). A ``BaseException`` that is not an ``Exception``
(pyo3's ``PanicException``) is a crash recorded here; a crash of the process itself (SIGSEGV,
SIGABRT) or a hang (faulthandler's per-input watchdog exits the process) is seen by the
parent, which reads the case being run from the ``--progress`` file.

A DataFusion internal error that the same query raises with a built-in (``count(*)``, ``1``)
in place of the plugin's call is DataFusion's own bug: counted (``datafusion_bugs``), not
held against the plugin. Findings are also appended to ``--findings`` as they happen.

Usage: ``fuzz_child.py --lib LIB --workdir DIR --progress FILE --findings FILE [--seed S]
[--cases N] [--start K] [--case-timeout SECS] [--budget-seconds SECS]``. Environment: ``DFPLUGIN_FUZZ_SEED``,
``DFPLUGIN_FUZZ_CASES`` (base count: that many function inputs, a tenth as many option
inputs, a sixteenth as many mutated Delta tables), ``DFPLUGIN_FUZZ_ONLY=<family>:<index>``
(run one case), and ``DFPLUGIN_ALLOW_UNSIGNED=1`` for the unsigned build output.
"""

from __future__ import annotations

import argparse
import decimal
import faulthandler
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datafusion  # noqa: E402
import deltalake  # noqa: E402
import pyarrow as pa  # noqa: E402

import dfplugin  # noqa: E402

DEFAULT_SEED = 0x0DF0C0DEA7A70001
DEFAULT_CASES = 8000
HUGE = 100_000
MARKER_ID = 777_777_777
MASK = (1 << 64) - 1


# ---------------------------------------------------------------------------------------
# PRNG (splitmix64; one stream per case, derived from seed, family and index)


def _splitmix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Rng:
    def __init__(self, seed: int, family: str, index: int) -> None:
        h = _splitmix(seed & MASK)
        for b in family.encode():
            h = _splitmix(h ^ b)
        self.state = _splitmix(h ^ ((index * 0xA24BAED4963EE407) & MASK))

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        return _splitmix(self.state)

    def below(self, n: int) -> int:
        return self.next() % n

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.below(len(items))]

    def range(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)


# ---------------------------------------------------------------------------------------
# Verdicts


UNCLEAN = [
    ("[e0002 panic]", "a panic in plugin code (contained)"),
    ("panicked", "a panic"),
    ("internal error", "a DataFusion internal error"),
    ("likely caused by a bug", "a DataFusion internal error"),
    ("entered unreachable code", "unreachable code"),
    ("index out of bounds", "an out-of-bounds index"),
    ("attempt to add with overflow", "an arithmetic overflow"),
    ("attempt to subtract with overflow", "an arithmetic overflow"),
    ("attempt to multiply with overflow", "an arithmetic overflow"),
]


class DataFusionBug(Exception):
    """The query fails the same way with a built-in (``count(*)``, ``1``) in place of the
    plugin's call: DataFusion's own bug (DataFusion 55 raises an internal error for
    ``OVER (ORDER BY <struct/binary/map column>)``), counted, not held against the plugin."""


def unclean_reason(message: str) -> Optional[str]:
    if not message.strip():
        return "empty error message"
    lower = message.lower()
    for needle, why in UNCLEAN:
        if needle in lower:
            return why
    return None


def has_code_tag(message: str) -> bool:
    import re

    return re.search(r"\[E\d{4} ", message) is not None


def short(text: str, n: int = 1500) -> str:
    return text if len(text) <= n else f"{text[:n]}… ({len(text)} chars)"


class Tally:
    def __init__(self) -> None:
        self.inputs = 0
        self.ok = 0
        self.clean_errors = 0
        self.named_errors = 0
        self.empty_messages = 0
        self.anonymous: List[str] = []
        self.host_bugs = 0
        self.host_bug_examples: List[str] = []
        self.unclean: List[Dict[str, str]] = []
        self.crashes: List[Dict[str, str]] = []
        self.escapes: List[Dict[str, str]] = []


class Runner:
    def __init__(self, seed: int, progress: Path, findings: Path, case_timeout: float, verbose: bool) -> None:
        self.seed = seed
        self.progress = progress
        self.findings = findings
        self.case_timeout = case_timeout
        self.verbose = verbose
        self.tally = Tally()

    def record(self, kind: str, finding: Dict[str, str]) -> None:
        """Keeps a finding, and appends it to the findings file at once (it survives a crash)."""
        {"unclean": self.tally.unclean, "crash": self.tally.crashes, "escape": self.tally.escapes}[kind].append(finding)
        with open(self.findings, "a") as f:
            f.write(json.dumps({"kind": kind, **finding}) + "\n")

    def counts(self) -> Dict[str, int]:
        t = self.tally
        return {
            "inputs": t.inputs, "ok": t.ok, "clean_errors": t.clean_errors, "named_errors": t.named_errors,
            "empty_messages": t.empty_messages, "datafusion_bugs": t.host_bugs,
        }  # fmt: skip

    def run(self, case: str, global_index: int, text: str, names: Sequence[str], fn: Callable[[], Any]) -> Tuple[str, Any]:
        """Runs one input: ("ok", rows) / ("error", message) / ("crash", detail)."""
        # The case about to run, and the counts before it: all the parent has if we die now.
        with open(self.progress, "w") as f:
            f.write(json.dumps({"seed": self.seed, "case": case, "global": global_index, "input": short(text, 4000), "counts": self.counts()}) + "\n")
        if self.verbose:
            print(f"--- {case}\n{short(text, 4000)}", file=sys.stderr, flush=True)
        self.tally.inputs += 1
        # A C-level watchdog (needs no GIL): dumps every thread's stack and exits the process.
        faulthandler.dump_traceback_later(self.case_timeout, exit=True)
        t0 = time.monotonic()
        try:
            result = fn()
        except DataFusionBug as e:
            faulthandler.cancel_dump_traceback_later()
            self.tally.host_bugs += 1
            lines = str(e).splitlines()
            example = next((x for x in lines if "nternal error" in x), next((x for x in lines if "rror" in x), str(e)))[:200]
            if len(self.tally.host_bug_examples) < 4 and example not in self.tally.host_bug_examples:
                self.tally.host_bug_examples.append(example)
            return "error", str(e)
        except Exception as e:  # noqa: BLE001 - every error is judged below
            faulthandler.cancel_dump_traceback_later()
            message = str(e)
            if self.verbose:
                print(f"=> {type(e).__name__} in {time.monotonic() - t0:.2f}s: {short(message, 2000)}", file=sys.stderr, flush=True)
            why = unclean_reason(message)
            if why:
                if not message.strip():
                    self.tally.empty_messages += 1
                self.record("unclean", {"case": case, "input": short(text, 3000), "detail": f"{why}: {type(e).__name__}: {short(message)}"})
            else:
                self.tally.clean_errors += 1
                if has_code_tag(message) or any(n and n in message for n in names):
                    self.tally.named_errors += 1
                elif len(self.tally.anonymous) < 8:
                    self.tally.anonymous.append(f"{case}: {short(message, 300)}".replace("\n", " / "))
            return "error", message
        except BaseException as e:  # pyo3 PanicException and friends: not an Exception
            faulthandler.cancel_dump_traceback_later()
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            self.record("crash", {"case": case, "input": short(text, 3000), "detail": f"{type(e).__name__}: {short(str(e))}"})
            return "crash", str(e)
        faulthandler.cancel_dump_traceback_later()
        self.tally.ok += 1
        if self.verbose:
            print(f"=> ok in {time.monotonic() - t0:.2f}s: {short(repr(result), 600)}", file=sys.stderr, flush=True)
        return "ok", result


# ---------------------------------------------------------------------------------------
# Random pyarrow columns

TYPES = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "utf8", "large_utf8", "utf8_view",
    "dict", "binary", "bool", "date32", "ts_us", "ts_ns_utc", "decimal", "list_utf8", "list_i64", "span",
    "struct", "map", "null",
]  # fmt: skip

TOKENS = [
    "insert", "delete", "update_preimage", "update_postimage", "INSERT", "Update_PostImage", "BYTE", "UTF16",
    "UTF32", "utf16", "NFC", "NFD", "NFKC", "NFKD", "bstart", "bend", "line_base", "col_unit", "end_exclusive",
    "a", "b", "file", "src/lib.rs", "a.b.c", " pkg . Mod .. fn ", "..", ".", "::", "a::b",
]  # fmt: skip

ODD = [
    "\0", "\u0301", "\u200b", "\u200d", "\u202e", "\ufeff", "\ufffd", "\uffff", "\U0010ffff", "\U0001f600",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "ﬁ", "Å", "e\u0301", "ß", "İ", "\u3000", "\u2028", "\r\n", "\r",
    "\n", "\t", "'", '"', "\\", "%", "日本",
]  # fmt: skip

INT_BOUNDS = {
    "i8": (-(2**7), 2**7 - 1), "i16": (-(2**15), 2**15 - 1), "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1), "u8": (0, 2**8 - 1), "u16": (0, 2**16 - 1), "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}  # fmt: skip

ARROW_INT = {
    "i8": pa.int8(), "i16": pa.int16(), "i32": pa.int32(), "i64": pa.int64(), "u8": pa.uint8(),
    "u16": pa.uint16(), "u32": pa.uint32(), "u64": pa.uint64(),
}  # fmt: skip


def gen_string(rng: Rng, huge_left: List[bool]) -> str:
    k = rng.below(12)
    if k == 0:
        return ""
    if k == 1:
        return rng.pick([" ", "\t\n ", "\u3000", "\u200b", "\r\n", "\xa0\u2003"])
    if k in (2, 3):
        return rng.pick(TOKENS)
    if k == 4 and huge_left[0]:
        huge_left[0] = False
        unit = rng.pick(["a", "é", "\U0001f600", "\n", "a.", " "])
        return (unit * (HUGE // len(unit) + 1))[:HUGE]
    if k in (5, 6):
        return "".join(rng.pick(ODD) for _ in range(rng.range(1, 8)))
    if k == 7:
        return rng.pick(["-1", "0", "9223372036854775808", "-9223372036854775809", "1e309", "NaN", "inf", "0x10", " 12 "])
    if k == 8:
        ends = ["\n", "\r\n", "\r", ""]
        return "".join("line" + str(rng.below(10)) + rng.pick(ends) for _ in range(rng.range(1, 6)))
    return "".join(chr(ord("a") + rng.below(26)) for _ in range(rng.below(12)))


def gen_bytes(rng: Rng) -> bytes:
    k = rng.below(5)
    if k == 0:
        return b""
    if k == 1:
        return rng.pick([b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x00b"])
    if k == 2:
        return bytes(rng.below(256) for _ in range(rng.below(64)))
    return rng.pick(TOKENS).encode()


def gen_i64(rng: Rng) -> int:
    k = rng.below(12)
    if k == 0:
        return -(2**63)
    if k == 1:
        return 2**63 - 1
    if k == 2:
        return 0
    if k == 3:
        return -1
    if k == 4:
        v = rng.next()
        return v - 2**64 if v >= 2**63 else v
    if k == 5:
        return 2**31 - 1 + rng.below(3)
    if k == 6:
        return -rng.below(100)
    return rng.below(40)


def gen_int(rng: Rng, ty: str) -> int:
    lo, hi = INT_BOUNDS[ty]
    k = rng.below(8)
    if k == 0:
        return lo
    if k == 1:
        return hi
    if k == 2:
        return 0
    if k == 3:
        return lo + rng.next() % (hi - lo + 1)
    return rng.below(40)


def gen_f64(rng: Rng) -> float:
    return rng.pick(
        [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.7976931348623157e308, 2.2250738585072014e-308, 5e-324,
         9.223372036854776e18, -rng.below(1000) / 7.0, rng.below(1000) / 3.0, rng.below(1000) / 3.0]
    )  # fmt: skip


def opt(rng: Rng, null_pct: int, f: Callable[[Rng], Any]) -> Any:
    if null_pct >= 100 or (null_pct > 0 and rng.below(100) < null_pct):
        return None
    return f(rng)


SPAN_FIELDS = [
    pa.field("bstart", pa.int64(), nullable=False),
    pa.field("bend", pa.int64(), nullable=False),
    pa.field("line_base", pa.int32(), nullable=False),
    pa.field("col_unit", pa.string(), nullable=False),
    pa.field("end_exclusive", pa.bool_(), nullable=False),
]


def struct_mask(rng: Rng, rows: int, null_pct: int) -> Optional[pa.Array]:
    if null_pct == 0:
        return None
    return pa.array([opt(rng, null_pct, lambda r: 1) is None for _ in range(rows)], type=pa.bool_())


def gen_column(rng: Rng, ty: str, rows: int, null_pct: int, huge_left: List[bool], domain: Sequence[str] = ()) -> pa.Array:
    def values(f: Callable[[Rng], Any]) -> List[Any]:
        return [opt(rng, null_pct, f) for _ in range(rows)]

    if ty in ARROW_INT:
        if ty == "i64":
            return pa.array(values(gen_i64), type=pa.int64())
        return pa.array(values(lambda r: gen_int(r, ty)), type=ARROW_INT[ty])
    if ty == "f32":
        return pa.array(values(gen_f64), type=pa.float64()).cast(pa.float32(), safe=False)
    if ty == "f64":
        return pa.array(values(gen_f64), type=pa.float64())
    if ty in ("utf8", "large_utf8", "utf8_view", "dict"):
        strings = values(lambda r: r.pick(domain) if domain and r.chance(60) else gen_string(r, huge_left))
        if ty == "dict":
            return pa.array(strings, type=pa.string()).dictionary_encode()
        return pa.array(strings, type={"utf8": pa.string(), "large_utf8": pa.large_string(), "utf8_view": pa.string_view()}[ty])
    if ty == "binary":
        return pa.array(values(gen_bytes), type=pa.binary())
    if ty == "bool":
        return pa.array(values(lambda r: r.chance(50)), type=pa.bool_())
    if ty == "date32":
        return pa.array(values(lambda r: r.pick([-(2**31), 2**31 - 1, -719528]) if r.chance(30) else r.below(40000)), type=pa.int32()).cast(pa.date32())
    if ty == "ts_us":
        return pa.array(values(gen_i64), type=pa.int64()).cast(pa.timestamp("us"))
    if ty == "ts_ns_utc":
        return pa.array(values(gen_i64), type=pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    if ty == "decimal":
        def dec(r: Rng) -> decimal.Decimal:
            raw = 10**37 - 1 if r.chance(20) else gen_i64(r) % 10**30
            return decimal.Decimal(raw).scaleb(-10)
        return pa.array(values(dec), type=pa.decimal128(38, 10))
    if ty in ("list_utf8", "list_i64"):
        def lst(r: Rng) -> List[Any]:
            item = (lambda q: gen_string(q, huge_left)) if ty == "list_utf8" else gen_i64
            return [opt(r, 20, item) for _ in range(r.below(5))]
        return pa.array(values(lst), type=pa.list_(pa.string() if ty == "list_utf8" else pa.int64()))
    if ty == "span":
        children = [
            pa.array([gen_i64(rng) for _ in range(rows)], type=pa.int64()),
            pa.array([gen_i64(rng) for _ in range(rows)], type=pa.int64()),
            pa.array([rng.pick([0, 1, 0, 1, 2, -1, -(2**31), 2**31 - 1]) for _ in range(rows)], type=pa.int32()),
            pa.array([rng.pick(["BYTE", "UTF16", "UTF32", "BYTE", "", "byte", "bogus"]) for _ in range(rows)], type=pa.string()),
            pa.array([rng.chance(70) for _ in range(rows)], type=pa.bool_()),
        ]
        return pa.StructArray.from_arrays(children, fields=SPAN_FIELDS, mask=struct_mask(rng, rows, null_pct))
    if ty == "struct":
        names = ["a", "b", "bstart", "bend", "x y", "A", "col_unit", ""]
        fields, children = [], []
        for _ in range(rng.range(1, 3)):
            name = names.pop(rng.below(len(names)))
            child = gen_column(rng, rng.pick(["i64", "utf8", "bool", "f64", "i32"]), rows, 10, huge_left)
            fields.append(pa.field(name, child.type))
            children.append(child)
        return pa.StructArray.from_arrays(children, fields=fields, mask=struct_mask(rng, rows, null_pct))
    if ty == "map":
        def mp(r: Rng) -> List[Tuple[str, Any]]:
            return [
                (r.pick(["a", " a ", "A", "b", "", " "]) if r.chance(40) else gen_string(r, [False]), opt(r, 20, lambda q: gen_string(q, [False])))
                for _ in range(r.below(5))
            ]
        return pa.array(values(mp), type=pa.map_(pa.string(), pa.string()))
    if ty == "null":
        return pa.nulls(rows)
    raise AssertionError(ty)


# ---------------------------------------------------------------------------------------
# Functions


def domain_of(name: str) -> List[str]:
    """Values a parameter gives meaning to, by its name (used most of the time)."""
    n = name.lower()
    if "unit" in n:
        return ["BYTE", "UTF16", "UTF32", "utf16", "Utf32", "bogus", ""]
    if "change_type" in n:
        return ["insert", "delete", "update_preimage", "update_postimage", "INSERT", "Delete", "upsert", ""]
    if "form" in n:
        return ["NFC", "NFD", "NFKC", "NFKD", "nfkc", "NFX", ""]
    if "field" in n:
        return ["a", "b", "c", "bstart", "bend", "col_unit", "A", "nope", ""]
    if "key" in n:
        return ["a", " a ", "A", "b", "lang", "", "\U0001f600"]
    if "text" in n:
        return ["a\U0001f600b", "ab\ncd", "ab\r\ncd\re", "\n\n", "", "e\u0301\U0001f468\u200d\U0001f469"]
    if "prefix" in n or n == "kind":
        return ["file", "sym", "", ":", "a:b"]
    if "path" in n:
        return ["src/lib.rs", "", "a/../b", "\0"]
    return []


def parse_signature(text: str) -> Tuple[List[Dict[str, Any]], int]:
    """``f(a: Utf8, b: Int64 [, c: Boolean])`` -> parameters (type hint or None, ``same_as``
    for ``type of <param>``, ``literal``, ``domain``) and the required count."""
    if "(" not in text:
        return [], 0
    inner = text[text.index("(") + 1 : text.rindex(")") if ")" in text else len(text)]
    pieces, depth = [""], 0
    for c in inner:  # split at top-level commas only: `map: Map(K, V)` is one parameter
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "," and depth == 0:
            pieces.append("")
        else:
            pieces[-1] += c
    params: List[Tuple[str, Dict[str, Any]]] = []
    required, optional = 0, False
    for piece in pieces:
        if "[" in piece:
            optional = True
        piece = piece.replace("[", "").replace("]", "").strip()
        if not piece:
            continue
        if "..." in piece and ":" not in piece:  # `[, part ...up to 16]`: more of the previous
            if params:
                params.append(params[-1])
            continue
        name, t = (piece.split(":", 1)[0].strip(), piece.split(":", 1)[1].strip().lower()) if ":" in piece else (piece, "")
        hint = "utf8" if t in ("k", "v") else None  # the generated maps are string -> string
        for needles, ty in ((("struct", "span"), "span"), (("map",), "map"), (("list",), "list_utf8"),
                            (("utf8", "string", "text"), "utf8"), (("bool",), "bool"), (("float", "double"), "f64"),
                            (("timestamp",), "ts_us"), (("int",), "i64")):  # fmt: skip
            if hint is None and any(n in t for n in needles):
                hint = ty
        names = [p[0] for p in params]
        other = t[len("type of ") :].strip() if t.startswith("type of ") else None
        same_as = names.index(other) if other in names else None
        params.append((name, {"ty": hint, "same_as": same_as, "literal": "literal" in t, "domain": domain_of(name)}))
        if not optional:
            required += 1
    return [p for _, p in params], required


def concrete(rng: Rng, hint: Optional[str]) -> str:
    if rng.chance(20) or hint is None:
        return rng.pick(TYPES)
    return {
        "utf8": lambda: rng.pick(["utf8", "utf8", "large_utf8", "utf8_view", "dict"]),
        "i64": lambda: rng.pick(["i64", "i64", "i32", "i8", "u64", "u32"]),
        "span": lambda: rng.pick(["span", "span", "span", "struct"]),
        "list_utf8": lambda: rng.pick(["list_utf8", "list_i64"]),
        "f64": lambda: rng.pick(["f64", "f32"]),
    }.get(hint, lambda: hint)()


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def gen_literal(rng: Rng, hint: Optional[str], domain: Sequence[str] = ()) -> str:
    ty = concrete(rng, hint)
    if domain and ty in ("utf8", "large_utf8", "utf8_view", "dict") and rng.chance(60):
        return sql_string(rng.pick(domain))
    if rng.chance(8):
        return rng.pick(["NULL", "CAST(NULL AS BIGINT)", "CAST(NULL AS VARCHAR)", "CAST(NULL AS BOOLEAN)"])
    if ty in ARROW_INT:
        small, anyv = rng.below(40), gen_i64(rng)
        return rng.pick(["9223372036854775807", "(-9223372036854775807 - 1)", "-9223372036854775808", "18446744073709551615",
                         "99999999999999999999999", "CAST(127 AS TINYINT)", "arrow_cast(-128, 'Int8')",
                         "arrow_cast(4294967295, 'UInt32')", "0", "-1", str(small), str(anyv)])  # fmt: skip
    if ty in ("f32", "f64", "decimal"):
        return rng.pick(["1.5", "'NaN'::double", "'inf'::double", "'-inf'::double", "-0.0", "1e308", "CAST('nan' AS FLOAT)", "0.1"])
    if ty in ("utf8", "large_utf8", "utf8_view", "dict"):
        if rng.chance(5):
            return f"repeat({sql_string(rng.pick(['a', 'é', chr(0x1F600), chr(10), 'a.']))}, {HUGE})"
        s = sql_string(gen_string(rng, [False]))
        k = rng.below(6)
        return f"arrow_cast({s}, 'LargeUtf8')" if k == 0 else f"arrow_cast({s}, 'Utf8View')" if k == 1 else s
    if ty == "binary":
        return rng.pick(["X'FF00'", "X''", "arrow_cast('abc', 'Binary')", "X'EDA080'"])
    if ty == "bool":
        return rng.pick(["true", "false"])
    if ty == "date32":
        return rng.pick(["DATE '2024-02-29'", "DATE '1970-01-01'", "arrow_cast(2147483647, 'Date32')"])
    if ty in ("ts_us", "ts_ns_utc"):
        return rng.pick(["TIMESTAMP '1970-01-01T00:00:00'", "now()", "arrow_cast(9223372036854775807, 'Timestamp(Nanosecond, None)')"])
    if ty in ("span", "struct"):
        if rng.chance(60):
            return (
                f"named_struct('bstart', {gen_i64(rng)}, 'bend', {gen_i64(rng)}, 'line_base', "
                f"{rng.pick(['0', '1', '2', '-1', 'arrow_cast(0, ' + sql_string('Int32') + ')'])}, 'col_unit', "
                f"{sql_string(rng.pick(['BYTE', 'UTF16', 'UTF32', '', 'bogus']))}, 'end_exclusive', {rng.pick(['true', 'false', 'NULL'])})"
            )
        return rng.pick(["span_make(1, 5)", "span_make(0, 0)", "struct(1, 'a')", "named_struct('a', 1, 'b', 'x')", "named_struct('bstart', 'x')"])
    if ty in ("list_utf8", "list_i64"):
        return rng.pick(["make_array('b', NULL, 'a', 'b')", "make_array()", "make_array(1, NULL, 3, 1)", "[1.5, 'NaN'::double]", "make_array(NULL)"])
    if ty == "map":
        return rng.pick(["map(['a', ' A ', 'b'], [1, 2, 3])", "MAP {'a': 'x'}", "map([], [])", "map([' k'], [NULL])"])
    return "NULL"


def gen_table(rng: Rng, types: List[str], domains: Sequence[Sequence[str]] = ()) -> Tuple[List[List[pa.RecordBatch]], str]:
    k = rng.below(20)
    rows = 0 if k < 2 else 1 if k < 6 else rng.range(2, 10) if k < 13 else rng.range(11, 200) if k < 19 else rng.range(1000, 3000)
    # At most one 100k-character value per column, and only in tables of up to 200 rows:
    # DataFusion 55 itself needs 20-30 s for a window ordered by such a column over ~3000 rows.
    huge_left = [rng.chance(30) and rows <= 200]
    columns, names, desc = [], [], []
    for i, ty in enumerate(types):
        null_pct = rng.pick([0, 0, 0, 10, 50, 100])
        arr = gen_column(rng, ty, rows, null_pct, huge_left, domains[i] if i < len(domains) else ())
        columns.append(arr)
        names.append(f"c{i + 1}")
        desc.append(f"c{i + 1}: {arr.type} ({null_pct}% null)")
    gty = rng.pick(["i64", "utf8", "f64", "bool"])
    if gty == "i64":
        g = pa.array([opt(rng, 10, lambda r: r.below(3)) for _ in range(rows)], type=pa.int64())
    elif gty == "utf8":
        g = pa.array([opt(rng, 10, lambda r: r.pick(["x", "y", "", "\U0001f600"])) for _ in range(rows)], type=pa.string())
    elif gty == "f64":
        g = pa.array([opt(rng, 10, lambda r: r.pick([float("nan"), -0.0, 0.0, 1.0])) for _ in range(rows)], type=pa.float64())
    else:
        g = pa.array([opt(rng, 10, lambda r: r.chance(50)) for _ in range(rows)], type=pa.bool_())
    columns.append(g)
    names.append("g")
    batch = pa.RecordBatch.from_arrays(columns, names=names)
    batches, offset, cuts = [], 0, rng.below(3)
    for i in range(cuts + 1):
        n = rows - offset if i == cuts else rng.below(rows - offset + 1)
        batches.append(batch.slice(offset, n))
        offset += n
        if rng.chance(10):
            batches.append(batch.slice(offset, 0))
    partitions = [batches[: len(batches) // 2], batches[len(batches) // 2 :]] if len(batches) > 1 and rng.chance(50) else [batches]
    shape = [b.num_rows for p in partitions for b in p]
    preview = short("; ".join(f"{n}={c.slice(0, 2).to_string(indent=0, window=2)}" for n, c in zip(names, columns)).replace("\n", " "), 400)
    return partitions, f"table: {rows} rows in batches {shape}; {', '.join(desc)}, g: {g.type}; first rows: {preview}"


def function_case(rng: Rng, f: Dict[str, Any], index: int) -> Tuple[str, Optional[Tuple[List[List[pa.RecordBatch]], str]], str, Optional[str]]:
    """(SQL, (partitions, description) of its table or None, table name, control SQL)."""
    params, required = f["params"], f["required"]
    if params and rng.chance(70):
        arity = min(required + rng.below(len(params) - required + 2), len(params) + 1)
    else:
        arity = rng.below(5)

    def param(i: int) -> Dict[str, Any]:
        return params[i] if i < len(params) else {"ty": None, "same_as": None, "literal": False, "domain": []}

    table = f"t_{index}"
    types: List[str] = []
    for i in range(max(arity, 1)):
        j = param(i)["same_as"]
        types.append(types[j] if j is not None and j < len(types) and rng.chance(80) else concrete(rng, param(i)["ty"]))
    literal_only = f["kind"] == "scalar_udf" and rng.chance(25)
    mixed = not literal_only and rng.chance(25)
    args = []
    for i in range(arity):
        p = param(i)
        if literal_only or (p["literal"] and rng.chance(90)) or (mixed and rng.chance(50)):
            hint = param(p["same_as"])["ty"] if p["same_as"] is not None else p["ty"]
            args.append(gen_literal(rng, hint, p["domain"]))
        else:
            args.append(f"c{i + 1}")
    call = f"{f['name']}({', '.join(args)})"
    if f["kind"] == "scalar_udf":
        if literal_only:
            return f"SELECT {call} AS r", None, table, None
        k = rng.below(5)
        sql = (f"SELECT {call} AS r FROM {table} WHERE g IS NOT NULL" if k == 0 else
               f"SELECT g, count({call}) FROM {table} GROUP BY g" if k == 1 else f"SELECT {call} AS r FROM {table}")  # fmt: skip
    elif f["kind"] == "aggregate_udf":
        k = rng.below(6)
        sql = (f"SELECT {call} AS r FROM {table}" if k < 2 else
               f"SELECT g, {call} AS r FROM {table} GROUP BY g ORDER BY g" if k < 4 else
               f"SELECT {call} OVER (PARTITION BY g ORDER BY c1) AS r FROM {table}" if k == 4 else
               f"SELECT {f['name']}(DISTINCT {', '.join(args)}) AS r FROM {table}")  # fmt: skip
    else:
        over = rng.pick(["ORDER BY c1", "PARTITION BY g ORDER BY c1 DESC NULLS FIRST", "", "PARTITION BY g",
                         "ORDER BY g, c1 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"])  # fmt: skip
        sql = f"SELECT {call} OVER ({over}) AS r FROM {table}"
    control = sql.replace(call, "1" if f["kind"] == "scalar_udf" else "count(*)") if call in sql else None
    return sql, gen_table(rng, types, [param(i)["domain"] for i in range(len(types))]), table, control


def rows_of(ctx: Any, sql: str) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for batch in ctx.sql(sql).collect():
        out.extend(batch.to_pylist())
    return out


# ---------------------------------------------------------------------------------------
# Options


def gen_option_value(rng: Rng) -> Any:
    k = rng.below(10)
    if k == 0:
        return rng.pick([0, 1, -1, 2, 2**63 - 1, 2**63, -(2**63) - 1, 1.5, float("nan"), float("inf")])
    if k == 1:
        return rng.pick([True, False, None])
    if k in (2, 3, 4):
        return rng.pick(["BYTE", "UTF16", "utf32", "NFKC", "nfd", "true", "1", "", " ", "on", "yes", "/tmp", "\0", "\U0001f600"])
    if k == 5:
        return gen_string(rng, [False])
    if k == 6:
        return "x" * rng.pick([1000, HUGE])
    if k == 7:
        return rng.pick([[], {}, [1, "a"], {"k": 1}])
    if k == 8:
        return b"\xff"
    return object()


def gen_options(rng: Rng, keys: List[str], namespace: str) -> Any:
    if rng.chance(10):
        return rng.pick([None, {}, [], "span.line_base=1", 5, {("tuple",): 1}])
    out: Dict[Any, Any] = {}
    for _ in range(rng.below(4)):
        k = rng.below(10)
        key = (f"{namespace}.{rng.pick(keys)}" if k == 0 else
               rng.pick(["", "nope", "span", "span.", ".span.line_base", "SPAN.LINE_BASE", "span.line_base ", 7]) if k == 1 else
               gen_string(rng, [False]) if k == 2 else rng.pick(keys))  # fmt: skip
        out[key] = gen_option_value(rng)
    return out


def gen_set(rng: Rng, keys: List[str], namespace: str) -> str:
    key = rng.pick(["nope", "span", "", "span.line_base.extra", "SPAN.LINE_BASE"]) if rng.chance(12) else rng.pick(keys)
    k = rng.below(8)
    value = (rng.pick(["0", "1", "2", "-1", "9223372036854775807", "9223372036854775808", "1.5"]) if k == 0 else
             rng.pick(["true", "false", "TRUE", "'on'", "'0'", "''"]) if k in (1, 2) else
             sql_string(rng.pick(["BYTE", "UTF16", "utf32", "NFC", "nfkd", "NFX", "/tmp,/var", ",", "*", "../.."])) if k in (3, 4) else
             sql_string(gen_string(rng, [False])) if k == 5 else sql_string("z" * HUGE) if k == 6 else "NULL")  # fmt: skip
    return f"SET {namespace}.{key} = {value}"


# ---------------------------------------------------------------------------------------
# Delta tables


def write_templates(root: Path) -> Dict[str, Path]:
    events_schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("part", pa.string())])
    named_schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string())])
    out = {name: root / name for name in ("events", "named", "marker_events", "marker_named")}
    for ids, parts in (([0, 1, 2, 3], ["a", "b", "c", "d"]), ([4, 5, 6, 7], ["a", "b", "c", "d"]), ([8, 9], ["a", "a"])):
        deltalake.write_deltalake(str(out["events"]), pa.table({"id": ids, "part": parts}, schema=events_schema), partition_by=["part"], mode="append")
    for ids in ([0, 1, 2], [3, 4, 5]):
        deltalake.write_deltalake(str(out["named"]), pa.table({"id": ids, "name": [f"n{i}" for i in ids]}, schema=named_schema), mode="append")
    deltalake.write_deltalake(str(out["marker_events"]), pa.table({"id": [MARKER_ID], "part": ["a"]}, schema=events_schema), partition_by=["part"])
    deltalake.write_deltalake(str(out["marker_named"]), pa.table({"id": [MARKER_ID], "name": ["SECRET"]}, schema=named_schema))
    return out


def data_files(table: Path) -> List[Path]:
    """Relative data file paths, by directory then content (names are random UUIDs)."""
    found = [p.relative_to(table) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts]
    return sorted(found, key=lambda p: (str(p.parent), (table / p).read_bytes()))


def commit_files(table: Path) -> List[Path]:
    return sorted(p for p in (table / "_delta_log").glob("*.json") if len(p.stem) == 20)


def action_lines(table: Path, kind: str) -> List[Tuple[Path, int]]:
    out = []
    for commit in commit_files(table):
        for i, line in enumerate(commit.read_text().splitlines()):
            try:
                if kind in json.loads(line):
                    out.append((commit, i))
            except (ValueError, TypeError):
                pass
    return out


def set_action_field(table: Path, at: Tuple[Path, int], kind: str, field: str, value: Any) -> str:
    lines = at[0].read_text().splitlines()
    action = json.loads(lines[at[1]])
    action[kind][field] = value
    lines[at[1]] = json.dumps(action)
    at[0].write_text("\n".join(lines) + "\n")
    return f"{at[0].relative_to(table)} line {at[1]}: {kind}.{field} = {short(json.dumps(value), 200)}"


DATA_KINDS = ["flip_bits", "footer_len_7fffffff", "footer_len_other", "truncate", "zero_page", "bad_magic", "append_garbage", "delete_file"]
LOG_KINDS = ["escape_relative", "escape_absolute", "add_field", "stats", "truncate_commit", "garbage_line", "metadata", "protocol",
             "delete_commit", "checkpoint", "flip_log_bytes", "duplicate_add", "empty_commit", "future_commit"]  # fmt: skip
KINDS = DATA_KINDS + LOG_KINDS


def mutate(rng: Rng, kind: str, table: Path, case_dir: Path, marker: Path) -> Tuple[str, bool]:
    """Applies mutation ``kind``; returns (exact description, whether an add leaves the root)."""
    files = data_files(table)
    rel = files[rng.below(len(files))]
    path = table / rel
    data = bytearray(path.read_bytes())
    n = len(data)
    if kind in DATA_KINDS and n < 16:
        return f"{kind}: not applicable", False  # an earlier mutation truncated this file
    if kind == "flip_bits":
        offsets = [n // 4 + rng.below(max(n // 2, 1)) for _ in range(rng.range(1, 16))]
        for i, o in enumerate(offsets):
            data[o] ^= 1 << ((i + rng.below(8)) % 8)
        path.write_bytes(bytes(data))
        return f"{rel}: flipped a bit at byte offsets {offsets} of {n}", False
    if kind in ("footer_len_7fffffff", "footer_len_other"):
        value = 0x7FFFFFFF if kind == "footer_len_7fffffff" else rng.pick([0, n, n - 8, 0xFFFFFFFF, 0x80000000, 1])
        data[n - 8 : n - 4] = value.to_bytes(4, "little")
        path.write_bytes(bytes(data))
        return f"{rel}: Parquet footer length (bytes[-8:-4]) set to {value:#x} (file is {n} bytes)", False
    if kind == "truncate":
        to = rng.pick([0, 4, 8, n // 2, n - 1, n - 8])
        path.write_bytes(bytes(data[:to]))
        return f"{rel}: truncated from {n} to {to} bytes", False
    if kind == "zero_page":
        start = rng.below(n)
        count = min(rng.range(1, 4096), n - start)
        data[start : start + count] = bytes(count)
        path.write_bytes(bytes(data))
        return f"{rel}: zeroed bytes {start}..{start + count} of {n}", False
    if kind == "bad_magic":
        at = 0 if rng.chance(50) else n - 4
        data[at : at + 4] = b"PAR0"
        path.write_bytes(bytes(data))
        return f"{rel}: magic at byte {at} replaced with PAR0", False
    if kind == "append_garbage":
        extra = bytes(rng.below(256) for _ in range(rng.range(1, 64)))
        path.write_bytes(bytes(data) + extra)
        return f"{rel}: {len(extra)} random bytes appended after the footer", False
    if kind == "delete_file":
        path.unlink()
        return f"{rel}: deleted", False

    adds = action_lines(table, "add")
    commits = commit_files(table)
    if not commits:
        return f"{kind}: not applicable", False
    commit = commits[rng.below(len(commits))]
    crel = commit.relative_to(table)
    missing = (
        (kind in ("truncate_commit", "garbage_line", "flip_log_bytes") and commit.stat().st_size == 0)
        or (kind in ("escape_relative", "escape_absolute", "add_field", "stats", "duplicate_add") and not adds)
        or (kind == "metadata" and not action_lines(table, "metaData"))
        or (kind == "protocol" and not action_lines(table, "protocol"))
    )
    if missing:
        return f"{kind}: not applicable", False  # an earlier mutation removed what it changes
    if kind in ("escape_relative", "escape_absolute"):
        at = adds[rng.below(len(adds))]
        set_action_field(table, at, "add", "size", marker.stat().st_size)
        if kind == "escape_relative":
            # The table is <case>/a/table: "../../outside/secret.parquet" is <case>/outside/.
            (case_dir / "outside").mkdir(parents=True, exist_ok=True)
            shutil.copy(marker, case_dir / "outside" / "secret.parquet")
            value = "../../outside/secret.parquet"
        else:
            (case_dir / "elsewhere").mkdir(parents=True, exist_ok=True)
            target = case_dir / "elsewhere" / "secret.parquet"
            shutil.copy(marker, target)
            value = target.as_uri() if rng.chance(50) else str(target)
        return set_action_field(table, at, "add", "path", value) + f" (the file exists: a valid Parquet file with id {MARKER_ID})", True
    if kind == "add_field":
        field, value = rng.pick([
            ("size", -1), ("size", 0), ("size", 2**63 - 1), ("size", "abc"), ("path", ""), ("path", 123), ("path", None),
            ("path", "nonexistent/part-0.parquet"), ("path", "%ZZbad%encoding.parquet"), ("path", "a/" * 2000 + "x.parquet"),
            ("path", "_delta_log/00000000000000000000.json"), ("partitionValues", {"part": None}), ("partitionValues", {}),
            ("partitionValues", {"part": 123}), ("partitionValues", ["a"]), ("modificationTime", "yesterday"),
            ("dataChange", "yes"), ("deletionVector", {"storageType": "u", "pathOrInlineDv": "zz", "offset": 1, "sizeInBytes": 40, "cardinality": 2}),
            ("deletionVector", "garbage"),
        ])  # fmt: skip
        return set_action_field(table, adds[rng.below(len(adds))], "add", field, value), False
    if kind == "stats":
        stats = rng.pick([
            "{not json", "", "[]", '{"numRecords": -5}', f'{{"numRecords": {2**63 - 1}}}', '{"numRecords": 1e30}',
            '{"numRecords": "many"}', '{"numRecords": 1, "minValues": {"id": "zzz"}, "maxValues": {"id": [1]}, "nullCount": {"id": -3}}',
            '{"numRecords": 2, "minValues": {"id": 100}, "maxValues": {"id": -100}, "nullCount": {"id": 0}}',
        ])  # fmt: skip
        return set_action_field(table, adds[rng.below(len(adds))], "add", "stats", stats), False
    if kind == "truncate_commit":
        raw = commit.read_bytes()
        assert raw
        to = rng.below(len(raw))
        commit.write_bytes(raw[:to])
        return f"{crel}: truncated to {to} bytes", False
    if kind == "garbage_line":
        lines = commit.read_text().splitlines()
        i = rng.below(len(lines))
        lines[i] = rng.pick(["{", "[]", "null", "{}", '{"add": null}', '{"add": 5}', '{"add": {}}', "\0\1", "not json", '{"commitInfo": []}'])
        commit.write_text("\n".join(lines) + "\n")
        return f"{crel} line {i} replaced with {lines[i]!r}", False
    if kind == "metadata":
        field, value = rng.pick([
            ("schemaString", "garbage"),
            ("schemaString", '{"type":"struct","fields":[{"name":"id","type":"string","nullable":true,"metadata":{}}]}'),
            ("schemaString", '{"type":"struct","fields":[]}'), ("partitionColumns", ["nope"]), ("partitionColumns", "part"),
            ("format", {"provider": "orc"}), ("configuration", {"delta.columnMapping.mode": "name"}),
        ])  # fmt: skip
        return set_action_field(table, action_lines(table, "metaData")[0], "metaData", field, value), False
    if kind == "protocol":
        field, value = rng.pick([("minReaderVersion", 99), ("minReaderVersion", -1), ("minReaderVersion", "3"), ("readerFeatures", ["futureFeature"])])
        at = action_lines(table, "protocol")[0]
        out = set_action_field(table, at, "protocol", field, value)
        if field == "readerFeatures":
            out += " and " + set_action_field(table, at, "protocol", "minReaderVersion", 3)
        return out, False
    if kind == "delete_commit":
        victim = commits[0] if rng.chance(50) else commits[rng.below(len(commits))]
        victim.unlink()
        return f"{victim.relative_to(table)}: deleted", False
    if kind == "checkpoint":
        version = rng.below(len(commits))
        text = rng.pick([f'{{"version":{version},"size":3}}', "{garbage", '{"version":-1,"size":0}', '{"version":99,"size":1}'])
        (table / "_delta_log" / "_last_checkpoint").write_text(text)
        out = f"_delta_log/_last_checkpoint = {text}"
        if rng.chance(70):
            junk = (table / files[0]).read_bytes() if rng.chance(50) else bytes(rng.below(256) for _ in range(rng.range(0, 512)))
            name = f"{version:020d}.checkpoint.parquet"
            (table / "_delta_log" / name).write_bytes(junk)
            out += f", _delta_log/{name} = {len(junk)} bytes of junk (or a data file)"
        return out, False
    if kind == "flip_log_bytes":
        raw = bytearray(commit.read_bytes())
        offsets = [rng.below(len(raw)) for _ in range(rng.range(1, 8))]
        for o in offsets:
            raw[o] ^= 1 << rng.below(8)
        commit.write_bytes(bytes(raw))
        return f"{crel}: flipped a bit at byte offsets {offsets}", False
    if kind == "duplicate_add":
        at = adds[rng.below(len(adds))]
        lines = at[0].read_text().splitlines()
        lines.append(lines[at[1]])
        at[0].write_text("\n".join(lines) + "\n")
        return f"{at[0].relative_to(table)} line {at[1]}: add action duplicated", False
    if kind == "empty_commit":
        commit.write_bytes(b"")
        return f"{crel}: emptied", False
    if kind == "future_commit":
        v = len(commits) + rng.below(3)
        text = rng.pick(["", "{", '{"commitInfo":{}}'])
        (table / "_delta_log" / f"{v:020d}.json").write_text(text)
        return f"_delta_log/{v:020d}.json = {text!r}", False
    raise AssertionError(kind)


# ---------------------------------------------------------------------------------------
# Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", default=os.environ.get("DFPLUGIN_LIB"))
    parser.add_argument("--seed", default=os.environ.get("DFPLUGIN_FUZZ_SEED", str(DEFAULT_SEED)))
    parser.add_argument("--cases", type=int, default=int(os.environ.get("DFPLUGIN_FUZZ_CASES", DEFAULT_CASES)))
    parser.add_argument("--start", type=int, default=0, help="first global case index to run (resume after a crash)")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--progress", required=True, help="JSON of the case being run (rewritten per input)")
    parser.add_argument("--findings", required=True, help="findings are appended here as JSON lines")
    parser.add_argument("--budget-seconds", type=float, default=150.0, help="start no new case after this long")
    parser.add_argument("--case-timeout", type=float, default=20.0)
    args = parser.parse_args()
    seed = int(args.seed, 0) & MASK
    only = os.environ.get("DFPLUGIN_FUZZ_ONLY")
    only_case = (only.split(":")[0], int(only.split(":")[1])) if only else None
    faulthandler.enable()  # stacks on SIGSEGV / SIGABRT / SIGBUS (printed to stderr)
    import logging

    logging.getLogger("dfplugin").setLevel(logging.ERROR)  # install's "not installable here" notes, per session
    started = time.monotonic()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(seed, Path(args.progress), Path(args.findings), args.case_timeout, verbose=only_case is not None)
    truncated: List[str] = []

    def over_budget(case: str) -> bool:
        if time.monotonic() - started > args.budget_seconds:
            if not truncated:
                truncated.append(case)
            return True
        return False

    plugin = dfplugin.load(args.lib)
    probe_ctx = plugin.session_context()
    hints: Dict[str, Tuple[List[Optional[str]], int]] = {}
    try:
        for row in rows_of(probe_ctx, "SELECT name, signatures FROM codeanatomy_functions()"):
            hints[row["name"]] = parse_signature(row["signatures"])
    except Exception:  # noqa: BLE001 - hints are optional
        pass
    functions = [
        {"name": name, "kind": kind, "params": hints.get(name, ([], 0))[0], "required": hints.get(name, ([], 0))[1]}
        for kind in ("scalar_udf", "aggregate_udf", "window_udf")
        for name in plugin.objects(kind)
    ]
    assert any(f["kind"] == "scalar_udf" for f in functions), functions
    namespace = plugin.config_namespace or "codeanatomy"
    keys = plugin.config_keys() if hasattr(plugin, "config_keys") else []
    keys = [k[len(namespace) + 1 :] if k.startswith(namespace + ".") else k for k in keys] or ["span.line_base"]

    counts = {"functions": args.cases, "options": args.cases // 10, "delta": args.cases // 16}
    bases, total = {}, 0
    for family, count in counts.items():
        bases[family] = total
        total += count

    def wanted(family: str) -> List[int]:
        if only_case:
            return [only_case[1]] if only_case[0] == family else []
        return [i for i in range(counts[family]) if bases[family] + i >= args.start]

    # --- functions
    ctx = None
    for index in wanted("functions"):
        if over_budget(f"functions:{index}"):
            break
        rng = Rng(seed, "functions", index)
        if ctx is None or index % 64 == 0:
            srng = Rng(seed, "session", index // 64)  # its own stream: a case replays alone as in the sequence
            ctx = plugin.session_context(config=datafusion.SessionConfig().with_batch_size(srng.pick([1, 3, 8192, 8192])).with_target_partitions(srng.pick([1, 2, 3])))
        f = functions[rng.below(len(functions))]
        sql, table, name, control = function_case(rng, f, index)
        text = sql if table is None else f"{sql}\n{table[1]}"

        def call(ctx: Any = ctx, sql: str = sql, table: Any = table, name: str = name, control: Optional[str] = control) -> Any:
            if table is not None:
                ctx.register_record_batches(name, table[0])
            try:
                try:
                    return rows_of(ctx, sql)
                except Exception as e:
                    if control and unclean_reason(str(e)) == "a DataFusion internal error":
                        try:
                            rows_of(ctx, control)
                        except Exception as c:  # noqa: BLE001 - compared below
                            if str(c) == str(e):
                                raise DataFusionBug(str(e)) from e
                    raise
            finally:
                if table is not None:
                    ctx.deregister_table(name)

        runner.run(f"functions:{index}", bases["functions"] + index, text, [f["name"], name, "c1", "c2", "c3", "c4"], call)

    # --- options (then SET statements and probes in that session)
    events_tiny = workdir / "tiny_events"
    if not events_tiny.exists():
        deltalake.write_deltalake(str(events_tiny), pa.table({"id": [1, 2], "part": ["a", "b"]}), partition_by=["part"])
    probes = ["SELECT span_make(1, 5) AS s, utf8_normalize('ﬁ Å') AS n", f"SELECT count(*) AS n FROM delta_scan({sql_string(str(events_tiny))})"]
    for index in wanted("options"):
        if over_budget(f"options:{index}"):
            break
        rng = Rng(seed, "options", index)
        options = gen_options(rng, keys, namespace)
        sets = [gen_set(rng, keys, namespace) for _ in range(rng.range(0, 2))]
        probe = rng.pick(probes)
        text = f"plugin.session_context(options={short(repr(options), 2000)})\n" + "".join(f"{short(s, 300)};\n" for s in sets) + f"then: {probe}"

        def call(options: Any = options, sets: List[str] = sets, probe: str = probe) -> Any:
            session = plugin.session_context(options=options)
            for statement in sets:
                try:
                    session.sql(statement).collect()
                except Exception as e:  # noqa: BLE001 - a refused SET is fine; a panic is not
                    why = unclean_reason(str(e))
                    if why:
                        raise RuntimeError(f"{statement}: {why}: {e}") from e
            return rows_of(session, probe)

        runner.run(f"options:{index}", bases["options"] + index, text, [namespace, "option", "span_make", "delta_scan", *keys], call)

    # --- delta
    delta_indices = wanted("delta")
    escape_checks = 0
    if delta_indices:
        templates_dir = workdir / "templates"
        if templates_dir.exists():
            shutil.rmtree(templates_dir)
        templates = write_templates(templates_dir)
        for index in delta_indices:
            if over_budget(f"delta:{index}"):
                break
            rng = Rng(seed, "delta", index)
            kind = KINDS[index % len(KINDS)]
            events = rng.chance(60)
            template = templates["events" if events else "named"]
            marker_table = templates["marker_events" if events else "marker_named"]
            marker = marker_table / data_files(marker_table)[0]
            case_dir = workdir / f"m{index}"
            if case_dir.exists():
                shutil.rmtree(case_dir)
            table = case_dir / "a" / "table"
            shutil.copytree(template, table)
            description, escape = mutate(rng, kind, table, case_dir, marker)
            if not escape and rng.chance(20):
                second = rng.pick([k for k in KINDS if not k.startswith("escape")])
                description += "; then " + mutate(rng, second, table, case_dir, marker)[0]
            uri = sql_string(str(table))
            label = "events (partitioned by part; ids 0..10 in 3 commits)" if events else "named (ids 0..6, name; 2 commits)"
            session = plugin.session_context()
            queries = [
                ("select", [f"SELECT * FROM delta_scan({uri})"]),
                ("count", [f"SELECT count(*) AS n FROM delta_scan({uri})"]),
                ("files", [f"SELECT * FROM delta_files({uri})"]),
                ("ddl", [f"CREATE EXTERNAL TABLE d{index} STORED AS DELTA LOCATION {uri}", f"SELECT * FROM d{index}"]),
            ]
            for qlabel, statements in queries:
                text = f"table {label} at {table}\nmutation [{kind}]: {description}\nquery: {'; '.join(statements)}"

                def call(session: Any = session, statements: List[str] = statements) -> Any:
                    rows: Any = None
                    for statement in statements:
                        rows = rows_of(session, statement)
                    return rows

                case = f"delta:{index}/{qlabel}"
                outcome, result = runner.run(case, bases["delta"] + index, text, [str(table), "table", "delta"], call)
                if outcome == "ok":
                    leaked = str(MARKER_ID) in repr(result)
                    if leaked or (escape and qlabel in ("select", "ddl")):
                        runner.record("escape", {
                            "case": case, "input": text,
                            "detail": f"rows of the file outside the table root were returned: {short(repr(result), 500)}" if leaked
                            else f"the query succeeded ({len(result)} rows) although an add action points outside the table root",
                        })  # fmt: skip
                if escape and qlabel == "select":
                    escape_checks += 1
            shutil.rmtree(case_dir, ignore_errors=True)

    t = runner.tally
    with open(args.progress, "w") as f:
        f.write(json.dumps({"finished": True}) + "\n")
    summary = {
        "host": "datafusion-python",
        "seed": seed,
        "start": args.start,
        "counts": counts,
        **runner.counts(),
        "stopped_by_budget_at": truncated[0] if truncated else None,
        "escape_checks": escape_checks,
        "unclean": t.unclean,
        "crashes": t.crashes,
        "escapes": t.escapes,
        "anonymous_examples": t.anonymous,
        "datafusion_bug_examples": t.host_bug_examples,
        "functions": len(functions),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the Delta tests: canonical row forms for comparing the plugin's results
with deltalake-python's (the oracle), and small table builders.

Canonical form: every value goes through ``to_pylist`` (which already decodes dictionaries,
string/binary views and large types), then timestamps become naive UTC datetimes (units and
time zones normalized), decimals their normalized text, NaN a marker, structs sorted
``(name, value)`` tuples, lists and maps tuples. Rows are tuples in the oracle's column
order, compared as sorted multisets (sorted by ``repr``). Nothing is dropped: a missing
column or a different row count is a difference.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import os
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import pyarrow as pa

UTC = _dt.timezone.utc


def canon_value(v: Any) -> Any:
    """A value in canonical form (see the module docstring)."""
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return v
    if isinstance(v, float):
        return ("NaN",) if math.isnan(v) else v
    if isinstance(v, _dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return ("ts", v.isoformat())
    if isinstance(v, (_dt.date, _dt.time, _dt.timedelta)):
        return v
    if isinstance(v, decimal.Decimal):
        return ("dec", str(v.normalize()) if v.is_finite() else str(v))
    if isinstance(v, dict):
        return tuple(sorted((str(k), canon_value(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(canon_value(x) for x in v)
    if hasattr(v, "to_pydatetime"):  # pandas.Timestamp (nanosecond timestamps)
        return canon_value(v.to_pydatetime())
    return ("other", repr(v))


def _column_values(column: Any) -> List[Any]:
    t = column.type
    if pa.types.is_timestamp(t) and t.unit == "ns":
        # nanoseconds would come back as pandas/ints; Delta stores microseconds.
        column = column.cast(pa.timestamp("us", tz=t.tz))
    return column.to_pylist()


def canonical_rows(table: pa.Table, columns: Optional[Sequence[str]] = None) -> List[Tuple[Any, ...]]:
    """Rows of ``table`` (in ``columns`` order, default its own) in canonical form, sorted."""
    names = list(columns) if columns is not None else table.column_names
    cols = [[canon_value(v) for v in _column_values(table.column(n))] for n in names]
    rows = list(zip(*cols)) if cols else [()] * table.num_rows
    return sorted(rows, key=repr)


def differences(actual: pa.Table, expected: pa.Table, what: str, limit: int = 5) -> List[str]:
    """Human-readable differences between the plugin's ``actual`` and the oracle's ``expected``
    (empty when they agree): column names (order included), row count, rows."""
    out: List[str] = []
    if actual.column_names != expected.column_names:
        out.append(f"{what}: columns {actual.column_names} != oracle {expected.column_names}")
    missing = [n for n in expected.column_names if n not in actual.column_names]
    if missing:
        out.append(f"{what}: plugin lacks columns {missing}")
        return out
    extra = [n for n in actual.column_names if n not in expected.column_names]
    if extra:
        out.append(f"{what}: plugin has extra columns {extra}")
    if actual.num_rows != expected.num_rows:
        out.append(f"{what}: {actual.num_rows} rows != oracle {expected.num_rows}")
    a = canonical_rows(actual, expected.column_names)
    e = canonical_rows(expected)
    if a != e:
        only_a = _multiset_minus(a, e)
        only_e = _multiset_minus(e, a)
        out.append(
            f"{what}: rows differ; {len(only_a)} only in plugin (e.g. {only_a[:limit]!r}), "
            f"{len(only_e)} only in oracle (e.g. {only_e[:limit]!r})"
        )
    return out


def _multiset_minus(a: Iterable[Any], b: Iterable[Any]) -> List[Any]:
    from collections import Counter

    ca, cb = Counter(map(repr, a)), Counter(map(repr, b))
    by_repr = {repr(x): x for x in a}
    return [by_repr[k] for k, n in (ca - cb).items() for _ in range(n)]


def delta_tables_under(root: Path) -> List[str]:
    """Table directories (holding ``_delta_log``) under ``root``, relative, sorted."""
    found = []
    for dirpath, dirnames, _files in os.walk(root):
        if "_delta_log" in dirnames:
            found.append(os.path.relpath(dirpath, root))
            dirnames.remove("_delta_log")
    return sorted(found)


def set_commit_times(table: Path, times: Sequence[_dt.datetime]) -> None:
    """Sets the modification time of commit ``i`` (``_delta_log/<i>.json``) to ``times[i]``:
    Delta readers take a commit's timestamp from it (tables without in-commit timestamps)."""
    for version, when in enumerate(times):
        ts = when.timestamp()
        os.utime(table / "_delta_log" / f"{version:020d}.json", (ts, ts))


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def replay_json_log(table: Path, version: Optional[int] = None) -> Tuple[dict, List[dict]]:
    """``(metaData, active add actions)`` of ``table`` at ``version`` (default: latest), from its
    JSON commits alone (an independent reader for tables the oracle refuses). Files are keyed
    by path and deletion vector, as the Delta protocol says. Raises ``ValueError`` when the
    log does not start at commit 0 (e.g. checkpoint-only history)."""
    import json
    import re

    log = table / "_delta_log"
    commits = sorted(int(p.name[:20]) for p in log.iterdir() if re.fullmatch(r"\d{20}\.json", p.name))
    if not commits or commits[0] != 0:
        raise ValueError(f"{table}: the JSON log does not start at commit 0")
    metadata: dict = {}
    files: dict = {}
    for v in commits:
        if version is not None and v > version:
            break
        for line in (log / f"{v:020d}.json").read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "metaData" in action:
                metadata = action["metaData"]
            for kind in ("add", "remove"):
                if kind in action:
                    a = action[kind]
                    dv = a.get("deletionVector") or {}
                    key = (a["path"], dv.get("storageType"), dv.get("pathOrInlineDv"), dv.get("offset"))
                    if kind == "add":
                        files[key] = a
                    else:
                        files.pop(key, None)
    return metadata, list(files.values())


def check_against_log(table: Path, got: pa.Table) -> List[str]:
    """Differences between the plugin's ``got`` (latest version) and what ``table``'s JSON log
    implies: logical column names in order, row count (records minus deletion-vector
    cardinalities), and every non-partition row present in the raw data files (a multiset
    subset, physical column names mapped to logical ones)."""
    import json
    from collections import Counter
    from urllib.parse import unquote

    import pyarrow.parquet as pq

    metadata, adds = replay_json_log(table)
    fields = json.loads(metadata["schemaString"])["fields"]
    names = [f["name"] for f in fields]
    out: List[str] = []
    if got.column_names != names:
        out.append(f"{table.name}: columns {got.column_names} != log schema {names}")
        return out
    records = sum(json.loads(a["stats"])["numRecords"] for a in adds)
    deleted = sum((a.get("deletionVector") or {}).get("cardinality", 0) for a in adds)
    if got.num_rows != records - deleted:
        out.append(f"{table.name}: {got.num_rows} rows != {records} records - {deleted} deleted by deletion vectors")
    partitions = set(metadata.get("partitionColumns") or [])
    data_fields = [f for f in fields if f["name"] not in partitions]
    raw: Counter = Counter()
    for a in adds:
        data = pq.read_table(table / unquote(a["path"]))
        physical = [(f.get("metadata") or {}).get("delta.columnMapping.physicalName", f["name"]) for f in data_fields]
        cols = [[canon_value(v) for v in _column_values(data.column(p))] for p in physical]
        raw.update(repr(r) for r in zip(*cols))
    mine = Counter(repr(r) for r in canonical_rows(got, [f["name"] for f in data_fields]))
    extra = mine - raw
    if extra:
        out.append(f"{table.name}: {sum(extra.values())} rows are in no data file, e.g. {list(extra)[:3]}")
    if sum(raw.values()) - sum(mine.values()) != deleted:
        out.append(f"{table.name}: {sum(raw.values())} raw rows - {sum(mine.values())} read != {deleted} deleted")
    return out

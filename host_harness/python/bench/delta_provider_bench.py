"""Benchmark: the plugin's Delta provider vs deltalake-python's, in one datafusion-python session.

Usage::

    python host_harness/python/bench/delta_provider_bench.py /tmp/delta-bench [--runs 5]
        [--rows 10000000] [--parts 16] [--library target/release/libcodeanatomy_plugin.so]

Generates (or reuses, when the directory already holds a Delta table) a table of ``--rows``
rows partitioned by ``part`` into ``--parts`` partitions (one data file or more each), with a
sorted ``id`` column (each partition holds one contiguous id range), then times two queries
against (a) ``plugin.delta_table(path)`` and (b) ``deltalake.DeltaTable(path)``, both
registered in the same ``SessionContext``, and prints the medians of ``--runs`` runs (after
one warm-up run each) and the ratio plugin/deltalake as a Markdown table. The two providers'
results are checked to be equal first.

A third column times the plugin's provider in a session the plugin is *installed* into, with
``codeanatomy.policy.deterministic = true``: every ``ctx.sql`` there is inspected by the plugin
and its plan handed over and checked by the SQL policy (dfplugin.sql), so the column shows
what that costs. The selective query also runs as ``delta_scan(path)`` there (the table
function keeps filter pushdown through ``dfplugin_call_table_function``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "host_harness" / "python"))


def _part_name(i: int) -> str:
    return f"p{i:02d}"


def generate(path: Path, rows: int, parts: int) -> None:
    """Writes the table with deltalake-python: one append per partition (a file each)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import deltalake

    per_part = -(-rows // parts)
    schema = pa.schema([("id", pa.int64()), ("part", pa.string()), ("v", pa.int64()), ("x", pa.float64())])
    for i in range(parts):
        lo, hi = i * per_part, min(rows, (i + 1) * per_part)
        if lo >= hi:
            break
        ids = pa.array(range(lo, hi), pa.int64())
        table = pa.table(
            {
                "id": ids,
                "part": pa.repeat(pa.scalar(_part_name(i)), hi - lo),
                "v": pc.bit_wise_and(pc.multiply(ids, 2654435761), 1023),
                "x": pc.divide(pc.cast(ids, pa.float64()), 7.0),
            },
            schema=schema,
        )
        deltalake.write_deltalake(str(path), table, partition_by=["part"], mode="append" if i else "error")


def table_shape(path: Path) -> Tuple[int, int, int]:
    """(rows, data files, partitions) of the latest version."""
    import pyarrow as pa
    import deltalake

    actions = pa.table(deltalake.DeltaTable(str(path)).get_add_actions(flatten=True))
    rows = sum(n or 0 for n in actions.column("num_records").to_pylist())
    parts = len(set(actions.column("partition.part").to_pylist()))
    return rows, actions.num_rows, parts


def same_rows(a: List[Dict[str, Any]], b: List[Dict[str, Any]]) -> bool:
    """Equal rows, floats within a relative 1e-9 (parallel sums add in different orders)."""
    import math

    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if ra.keys() != rb.keys():
            return False
        for k in ra:
            x, y = ra[k], rb[k]
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def median_seconds(run: Callable[[], Any], runs: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="table directory (created if missing, reused if it holds a table)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query and provider (median reported)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate (at least 10M by default)")
    parser.add_argument("--parts", type=int, default=16, help="partitions (and so data files) to generate")
    parser.add_argument(
        "--library",
        default=os.environ.get("DFPLUGIN_LIB", str(REPO / "target" / "release" / "libcodeanatomy_plugin.so")),
        help="plugin library (default: $DFPLUGIN_LIB or target/release/libcodeanatomy_plugin.so)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    import datafusion
    import deltalake

    import dfplugin

    if (args.path / "_delta_log").is_dir():
        sys.stderr.write(f"reusing the table at {args.path}\n")
    else:
        sys.stderr.write(f"generating {args.rows} rows in {args.parts} partitions at {args.path} ...\n")
        args.path.parent.mkdir(parents=True, exist_ok=True)
        generate(args.path, args.rows, args.parts)
    rows, files, parts = table_shape(args.path)

    plugin = dfplugin.load(args.library)
    ctx = datafusion.SessionContext()
    ctx.register_table("t_plugin", plugin.delta_table(args.path))
    ctx.register_table("t_deltalake", deltalake.DeltaTable(str(args.path)))

    per_part = -(-rows // max(parts, 1))
    mid = parts // 2
    lo = mid * per_part + per_part // 3
    hi = lo + max(per_part // 100, 1)
    queries: Dict[str, str] = {
        "full scan aggregation": "SELECT part, count(*) AS n, sum(v) AS sv, avg(x) AS ax FROM {t} GROUP BY part ORDER BY part",
        "selective (partition + id range)": (
            f"SELECT count(*) AS n, sum(v) AS sv, min(x) AS mx FROM {{t}} "
            f"WHERE part = '{_part_name(mid)}' AND id BETWEEN {lo} AND {hi}"
        ),
    }

    installed = plugin.session_context()
    installed.register_table("t_plugin", plugin.delta_table(args.path))
    installed.sql("SET codeanatomy.policy.deterministic = true").collect()
    scan = "delta_scan('" + str(args.path).replace("'", "''") + "')"
    queries["selective, delta_scan(path) table function"] = queries["selective (partition + id range)"]

    results = []
    for label, template in queries.items():
        plugin_table = scan if "delta_scan" in label else "t_plugin"
        a = installed.sql(template.format(t=plugin_table)).to_pylist()
        b = ctx.sql(template.format(t="t_deltalake")).to_pylist()
        if not same_rows(a, b):
            sys.stderr.write(f"results differ for '{label}':\n  plugin:    {a[:4]}\n  deltalake: {b[:4]}\n")
            return 1
        p = (
            median_seconds(lambda: ctx.sql(template.format(t="t_plugin")).collect(), args.runs)
            if plugin_table == "t_plugin"
            else float("nan")
        )
        i = median_seconds(lambda: installed.sql(template.format(t=plugin_table)).collect(), args.runs)
        d = median_seconds(lambda: ctx.sql(template.format(t="t_deltalake")).collect(), args.runs)
        results.append((label, p, i, d))

    print(f"Delta provider benchmark: {rows} rows, {files} files, {parts} partitions, median of {args.runs} runs")
    print(f"(datafusion-python {datafusion.__version__}, deltalake {deltalake.__version__}, plugin {plugin.version})")
    print()
    print("| query | plugin (ms) | plugin, installed + policy (ms) | deltalake (ms) | plugin/deltalake | installed/deltalake |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, p, i, d in results:
        print(f"| {label} | {p * 1000:.1f} | {i * 1000:.1f} | {d * 1000:.1f} | {p / d:.3f} | {i / d:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

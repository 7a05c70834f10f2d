"""Leaks and lifetimes: every capsule is freed exactly once; contexts release the plugin's objects.

Bound: after a warm-up, resident memory may grow by at most RSS_BOUND (64 MiB) over 10,000
capsules, and again over 300 contexts. The live-object counter of the plugin must return
exactly to its starting value (a double free would underflow it; a leak would leave it higher).
"""

from __future__ import annotations

import gc
import os

import datafusion

import dfplugin
import dfplugin.objects
from dfplugin._ffi import capsule_stats

RSS_BOUND = 64 * 1024 * 1024  # bytes
CAPSULES = 10_000
CONTEXTS = 300


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _objects(plugin: dfplugin.Plugin):
    out = [(kind, name) for kind in ("scalar_udf", "aggregate_udf", "window_udf", "table_function", "physical_optimizer_rule") for name in plugin.objects(kind)]
    if plugin.config_namespace:
        out.append(("config_options", None))
    return out


def test_ten_thousand_capsules(plugin: dfplugin.Plugin) -> None:
    objects = _objects(plugin)
    assert objects
    lib = plugin.library
    ctx = datafusion.SessionContext()
    codec = ctx.__datafusion_logical_extension_codec__()
    from dfplugin._ffi import codec_pointer

    def churn(n: int) -> None:
        for i in range(n):
            kind, name = objects[i % len(objects)]
            if kind == "table_function" and i % 2:
                cap = lib.capsule(kind, name, codec_pointer(codec))
            else:
                cap = lib.capsule(kind, name)
            del cap

    churn(500)  # warm-up: allocator pools, lazily built plugin state
    gc.collect()
    live0, stats0, rss0 = plugin.live_objects(), capsule_stats(), rss()
    churn(CAPSULES)
    gc.collect()
    stats1 = capsule_stats()
    assert stats1["created"] - stats0["created"] == CAPSULES
    assert stats1["freed"] - stats0["freed"] == CAPSULES  # each exactly once
    assert plugin.live_objects() == live0
    growth = rss() - rss0
    assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB over {CAPSULES} capsules (bound 64 MiB)"


def test_capsules_handed_to_the_host_are_freed(plugin: dfplugin.Plugin) -> None:
    """The host clones the struct and drops the capsule; the destructor frees the original."""
    from datafusion.user_defined import AggregateUDF, ScalarUDF, WindowUDF

    gc.collect()
    live0 = plugin.live_objects()
    kept = []
    for _ in range(200):
        for name in plugin.objects("scalar_udf")[:3]:
            kept.append(ScalarUDF.udf(dfplugin.objects.ScalarUDFExport(plugin.library, name)))
        for name in plugin.objects("aggregate_udf")[:2]:
            kept.append(AggregateUDF.udaf(dfplugin.objects.AggregateUDFExport(plugin.library, name)))
        for name in plugin.objects("window_udf")[:1]:
            kept.append(WindowUDF.udwf(dfplugin.objects.WindowUDFExport(plugin.library, name)))
    gc.collect()
    # The host's clones are alive (kept) but no capsule-owned original is.
    assert plugin.live_objects() == live0
    del kept
    gc.collect()
    assert plugin.live_objects() == live0


def test_hundreds_of_contexts(plugin: dfplugin.Plugin, fixture_lib) -> None:
    query = "SELECT stable_hash64('a') AS h" if "stable_hash64" in plugin.objects("scalar_udf") else "SELECT 1 AS h"
    table_query = (
        "SELECT count(*) AS n FROM codeanatomy_functions()"
        if "codeanatomy_functions" in plugin.objects("table_function")
        else "SELECT 1 AS n"
    )

    def one(i: int) -> None:
        ctx = plugin.session_context() if i % 2 else datafusion.SessionContext()
        if not i % 2:
            plugin.install(ctx)
        assert ctx.sql(query).to_pylist()[0]["h"] is not None
        if i % 3 == 0:
            ctx.sql(table_query).collect()
        ctx.sql("SELECT * FROM dfplugin_loaded()").collect()

    for i in range(20):  # warm-up
        one(i)
    gc.collect()
    live0, rss0 = plugin.live_objects(), rss()
    for i in range(CONTEXTS):
        one(i)
    gc.collect()
    assert plugin.live_objects() == live0
    growth = rss() - rss0
    assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB over {CONTEXTS} contexts (bound 64 MiB)"
    # Introspection records of dropped sessions do not accumulate.
    from dfplugin.introspect import SessionPlugins

    assert len(SessionPlugins._by_session) < 50

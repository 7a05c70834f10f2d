//! Native (rlib, in-process) and dlopen'ed plugin give identical results over the same inputs.

mod common;

use std::sync::Arc;

use codeanatomy_plugin::CodeAnatomy;
use common::plugin_path;
use datafusion::prelude::SessionContext;
use df_plugin_host::conform::rows_of;
use df_plugin_host::{load, LoadedPlugin};

fn session(plugin: &Arc<LoadedPlugin>, batch_size: usize) -> SessionContext {
    common::installed_session(plugin, batch_size, 4)
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    rows_of(&batches)
}

/// Strips the proxy's wrapping from error texts so native and foreign errors compare by
/// their plugin error tag and message.
fn error_core(e: &str) -> String {
    match e.find("[E") {
        Some(i) => e[i..].to_string(),
        None => e.to_string(),
    }
}

/// Every function's documented example, plus inputs over a generated multi-batch table.
#[tokio::test]
async fn every_function_agrees_native_vs_dlopen() {
    let native = LoadedPlugin::native::<CodeAnatomy>().expect("native");
    let dynamic = load(plugin_path()).expect("dlopen");
    let examples = {
        let ctx = session(&native, 8192);
        rows(&ctx, "SELECT name, example FROM codeanatomy_functions() ORDER BY name").await.expect("registry")
    };
    assert_eq!(examples.len(), 31);

    let table = "CREATE TABLE src AS SELECT \
        CAST(v AS BIGINT) AS id, \
        CASE WHEN v % 7 = 0 THEN NULL ELSE concat('line ', CAST(v AS VARCHAR), ' é😀ﬁ ', chr(10), 'x') END AS line, \
        CAST(v % 5 AS BIGINT) AS g, \
        CAST(v % 13 AS DOUBLE) AS score \
        FROM generate_series(1, 5000) AS t(v)";
    let data_queries = [
        "SELECT sum(stable_hash64(line, id) % 1000), count(stable_hash128(line)) FROM src",
        "SELECT stable_id('n', line, g) FROM src ORDER BY id LIMIT 20",
        "SELECT sum(col_to_byte(line, CAST(id % 12 AS BIGINT), 'UTF32')) FROM src",
        // One function, three literal shapes in one query: prepared calls (ABI 1.4) are keyed
        // by their literal arguments, so each must get its own.
        "SELECT sum(col_to_byte(line, 3, 'BYTE')), sum(col_to_byte(line, 3, 'UTF16')), sum(col_to_byte(line, 5, 'UTF16')) FROM src",
        "SELECT count(*) FROM src WHERE utf8_normalize(line, 'NFKC', true, true) <> line",
        "SELECT byte_to_line_col(line, 3, 'UTF16') FROM src ORDER BY id LIMIT 10",
        "SELECT g, arg_max(id, score), arg_min(id, score), count_if(score > 6), collect_set(g), any_value_det(line, id) FROM src GROUP BY g ORDER BY g",
        "SELECT id, best_in_partition(score, id) OVER (PARTITION BY g) AS b FROM src ORDER BY id LIMIT 50",
        "SELECT id, count_if(score > 3) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM src ORDER BY id LIMIT 50",
    ];

    for batch_size in [8192, 7] {
        let (n, d) = (session(&native, batch_size), session(&dynamic, batch_size));
        for ctx in [&n, &d] {
            ctx.sql(table).await.expect("create").collect().await.expect("create");
        }
        let mut compared = 0;
        for sql in examples.iter().map(|r| r[1].clone()).chain(data_queries.iter().map(|s| s.to_string())) {
            let (a, b) = (rows(&n, &sql).await, rows(&d, &sql).await);
            match (&a, &b) {
                (Ok(x), Ok(y)) => assert_eq!(x, y, "batch {batch_size}: {sql}"),
                (Err(x), Err(y)) => assert_eq!(error_core(x), error_core(y), "batch {batch_size}: {sql}"),
                _ => panic!("batch {batch_size}: native {a:?} vs dlopen {b:?} for {sql}"),
            }
            assert!(a.is_ok(), "example or query failed: {sql}: {a:?}");
            compared += 1;
        }
        assert_eq!(compared, 31 + data_queries.len());
    }
}

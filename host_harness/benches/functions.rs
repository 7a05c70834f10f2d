//! FFI overhead of the function library: the same queries on the same in-memory data, with the
//! CodeAnatomy functions registered natively (rlib) and loaded through dlopen, in one process.
//!
//! Run: `cargo bench -p df_plugin_host --bench functions` (after `make build`).
//! Env: `BENCH_ROWS` (default 10_000_000), `BENCH_RUNS` (default 5), `BENCH_PLUGIN` (path).
//! Prints a Markdown table: median wall times, and the medians of the per-pair wall and CPU
//! ratios (pairs alternate which side runs first; see `support`).

mod support;

use std::sync::Arc;

use codeanatomy_plugin::CodeAnatomy;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_host::{load, InstallOptions, LoadedPlugin};

const PARTITIONS: usize = 2;

fn table(rows: usize, batch_size: usize) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("g", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let words = ["fn main() {", "    let café = \"naïve\";", "\tﬁle.read_to_end(&mut buf)?; // 😀", "}", "SELECT Straße FROM t"];
    let mut partitions = vec![Vec::new(); PARTITIONS];
    let mut start = 0usize;
    let mut p = 0;
    while start < rows {
        let n = batch_size.min(rows - start);
        let ids: Vec<i64> = (start..start + n).map(|i| i as i64).collect();
        let g: Vec<i64> = ids.iter().map(|i| i % 1000).collect();
        let k: Vec<i64> = ids.iter().map(|i| (i * 7919) % 1_000_003).collect();
        let s: Vec<Option<String>> = ids
            .iter()
            .map(|i| if i % 97 == 0 { None } else { Some(format!("{} {i}", words[(*i as usize) % words.len()])) })
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int64Array::from(g)),
                Arc::new(Int64Array::from(k)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .expect("batch");
        partitions[p].push(batch);
        p = (p + 1) % PARTITIONS;
        start += n;
    }
    Arc::new(MemTable::try_new(schema, partitions).expect("memtable"))
}

fn session(plugin: &Arc<LoadedPlugin>, batch_size: usize, data: Arc<MemTable>) -> SessionContext {
    let config = SessionConfig::new().with_batch_size(batch_size).with_target_partitions(PARTITIONS);
    let mut builder = SessionStateBuilder::new().with_default_features().with_config(config);
    plugin.install(&mut builder, &InstallOptions::new()).expect("install");
    let ctx = SessionContext::new_with_state(builder.build());
    ctx.register_table("t", data).expect("register");
    ctx
}

async fn run(ctx: &SessionContext, sql: &str) {
    let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    std::hint::black_box(batches);
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(11);
    let path = std::env::var("BENCH_PLUGIN").unwrap_or_else(|_| {
        let dir = std::env::current_exe().expect("exe").parent().and_then(|d| d.parent()).expect("target dir").to_path_buf();
        dir.join("libcodeanatomy_plugin.so").display().to_string()
    });
    let native = LoadedPlugin::native::<CodeAnatomy>().expect("native plugin");
    // Benchmarks measure the local build, which is unsigned (or signed with the local key):
    // allow it explicitly, on top of whatever DFPLUGIN_TRUST_FILE trusts.
    let mut trust = df_plugin_host::TrustPolicy::from_env().expect("trust policy");
    trust.allow_unsigned = true;
    df_plugin_host::set_trust_policy(trust).expect("trust policy");
    let dynamic = load(&path).expect("load plugin");
    let queries = [
        ("stable_hash64", "SELECT max(stable_hash64(s, id)) FROM t"),
        ("utf8_normalize", "SELECT max(character_length(utf8_normalize(s))) FROM t"),
        ("col_to_byte", "SELECT max(col_to_byte(s, 5, 'UTF16')) FROM t"),
        ("arg_max", "SELECT count(x) FROM (SELECT g, arg_max(s, k) AS x FROM t GROUP BY g)"),
    ];
    println!("rows {rows}, {PARTITIONS} partitions, {runs} paired runs (after 1 warm-up), plugin {path}\n");
    println!("| function | batch size | native ms | through dlopen ms | wall ratio | CPU ratio |");
    println!("|---|---|---|---|---|---|");
    for batch_size in [8192usize, 1024] {
        let data = table(rows, batch_size);
        let n = session(&native, batch_size, Arc::clone(&data));
        let d = session(&dynamic, batch_size, Arc::clone(&data));
        for (name, sql) in queries {
            let (native, dynamic) = (&n, &d);
            let c = support::compare(runs, || run(native, sql), || run(dynamic, sql)).await;
            println!(
                "| {name} | {batch_size} | {:.1} | {:.1} | {:.3} | {:.3} |",
                c.baseline_ms, c.candidate_ms, c.wall_ratio, c.cpu_ratio
            );
        }
    }
}

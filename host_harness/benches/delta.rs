//! Delta scans through the plugin vs DataFusion's own Parquet scan of the same files.
//!
//! Generates (once, reused) a Delta table partitioned by `bucket` with `BENCH_ROWS` rows
//! (default 10,000,000) in `BENCH_FILES` files (default 16; ids are contiguous per file, so
//! file statistics can skip files), then runs in one process, alternating:
//! - the plugin's Delta provider loaded through dlopen (`CREATE EXTERNAL TABLE ... STORED AS DELTA`);
//! - a `ListingTable` over the table's Parquet files (hive partitioning on `bucket`).
//!
//! Run: `cargo bench -p df_plugin_host --bench delta` (after `make build`).
//! Env: `BENCH_ROWS`, `BENCH_FILES`, `BENCH_RUNS` (default 11), `BENCH_DIR` (table location,
//! default `target/bench-delta`), `BENCH_PLUGIN` (library path).

mod support;

use std::sync::Arc;

use codeanatomy_plugin::delta::deltalake::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use codeanatomy_plugin::delta::deltalake::arrow::datatypes::{DataType, Field, Schema};
use codeanatomy_plugin::delta::deltalake::protocol::SaveMode;
use codeanatomy_plugin::delta::deltalake::DeltaTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_host::{load, InstallOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn generate(dir: &std::path::Path, rows: usize, files: usize) {
    if dir.join("_delta_log").exists() {
        return;
    }
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(dir.display().to_string()).expect("url");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("bucket", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("path", DataType::Utf8, false),
    ]));
    let per_file = rows.div_ceil(files);
    let mut batches = Vec::new();
    for f in 0..files {
        let start = f * per_file;
        let end = rows.min(start + per_file);
        let ids: Vec<i64> = (start as i64..end as i64).collect();
        batches.push(
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(Int64Array::from(vec![f as i64; ids.len()])),
                    Arc::new(Int64Array::from(ids.iter().map(|i| (i * 7919) % 1_000_003).collect::<Vec<_>>())),
                    Arc::new(Float64Array::from(ids.iter().map(|i| (*i as f64).sqrt()).collect::<Vec<_>>())),
                    Arc::new(StringArray::from(ids.iter().map(|i| format!("src/module_{}/file_{i}.rs", i % 97)).collect::<Vec<_>>())),
                ],
            )
            .expect("batch"),
        );
    }
    let table = DeltaTable::try_from_url(url).await.expect("table handle");
    table
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_partition_columns(["bucket"])
        .with_target_file_size(std::num::NonZeroU64::new(u64::MAX / 2))
        .await
        .expect("write benchmark table");
}

async fn rows_of(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    batches.iter().map(|b| b.num_rows()).sum()
}

fn files_in(plan: &Arc<dyn ExecutionPlan>) -> String {
    let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
    if let Some(i) = text.find("files=") {
        return text[i + 6..].split(',').next().unwrap_or("?").to_string();
    }
    // DataSourceExec prints `file_groups={N groups: [[a, b], [c]]}`: count the files listed.
    let groups = text.split("file_groups=").nth(1).unwrap_or("");
    let listed = groups.split("]]").next().unwrap_or("");
    let distinct: std::collections::BTreeSet<&str> =
        listed.split(|c| c == '[' || c == ']' || c == ',').filter_map(|f| f.trim().split(':').next()).filter(|f| f.ends_with(".parquet")).collect();
    distinct.len().to_string()
}

#[tokio::main]
async fn main() {
    let rows = env_usize("BENCH_ROWS", 10_000_000);
    let files = env_usize("BENCH_FILES", 16);
    let runs = env_usize("BENCH_RUNS", 11).max(1);
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = std::env::var("BENCH_DIR").map(Into::into).unwrap_or_else(|_| target.join(format!("bench-delta-{rows}-{files}")));
    let path = std::env::var("BENCH_PLUGIN").unwrap_or_else(|_| target.join("release/libcodeanatomy_plugin.so").display().to_string());
    generate(&dir, rows, files).await;
    let uri = dir.display().to_string();

    // Benchmarks measure the local build, which is unsigned (or signed with the local key):
    // allow it explicitly, on top of whatever DFPLUGIN_TRUST_FILE trusts.
    let mut trust = df_plugin_host::TrustPolicy::from_env().expect("trust policy");
    trust.allow_unsigned = true;
    df_plugin_host::set_trust_policy(trust).expect("trust policy");
    let plugin = load(&path).expect("load plugin");
    let config = SessionConfig::new().with_target_partitions(2);
    let mut builder = SessionStateBuilder::new().with_default_features().with_config(config.clone());
    plugin.install(&mut builder, &InstallOptions::new()).expect("install");
    let delta_ctx = SessionContext::new_with_state(builder.build());
    delta_ctx.sql(&format!("CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'")).await.expect("ddl");

    // BENCH_LISTING_SESSION=plugin: the ListingTable runs in a session with the plugin installed
    // too, which isolates the providers from the cost of the plugin's rules on every query.
    let parquet_ctx = if std::env::var("BENCH_LISTING_SESSION").as_deref() == Ok("plugin") {
        let mut builder = SessionStateBuilder::new().with_default_features().with_config(config.clone());
        plugin.install(&mut builder, &InstallOptions::new()).expect("install");
        SessionContext::new_with_state(builder.build())
    } else {
        SessionContext::new_with_config(config)
    };
    let table_url = ListingTableUrl::parse(format!("{uri}/")).expect("listing url");
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("bucket".to_string(), DataType::Int64)]);
    let resolved = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .infer_schema(&parquet_ctx.state())
        .await
        .expect("listing schema");
    parquet_ctx.register_table("t", Arc::new(ListingTable::try_new(resolved).expect("listing table"))).expect("register");

    let lo = (rows / files * 5 + 1000) as i64;
    // A selective query takes a few milliseconds: each timed run repeats it so one run is long
    // enough to time on a shared machine. Times are per query.
    let queries = [
        ("full scan aggregation", "SELECT bucket, count(*), sum(v), avg(x), max(length(path)) FROM t GROUP BY bucket".to_string(), 1),
        ("selective (id range)", format!("SELECT count(*), sum(v) FROM t WHERE id BETWEEN {lo} AND {}", lo + 5000), 20),
    ];
    println!("rows {rows}, {files} files, {runs} paired runs (after 1 warm-up), plugin {path}\n");
    println!("| query | ListingTable ms | plugin Delta ms | wall ratio | CPU ratio | files read: ListingTable / Delta |");
    println!("|---|---|---|---|---|---|");
    for (label, sql, repeat) in queries {
        let (listing_plan, delta_plan) = (
            parquet_ctx.sql(&sql).await.expect("plan").create_physical_plan().await.expect("physical"),
            delta_ctx.sql(&sql).await.expect("plan").create_physical_plan().await.expect("physical"),
        );
        let (a, b) = (rows_of(&parquet_ctx, &sql).await, rows_of(&delta_ctx, &sql).await);
        assert_eq!(a, b, "{label}: both scans return the same number of rows");
        let (listing, delta, sql) = (&parquet_ctx, &delta_ctx, sql.as_str());
        let c = support::compare(
            runs,
            || async move {
                for _ in 0..repeat {
                    rows_of(listing, sql).await;
                }
            },
            || async move {
                for _ in 0..repeat {
                    rows_of(delta, sql).await;
                }
            },
        )
        .await;
        println!(
            "| {label} | {:.1} | {:.1} | {:.3} | {:.3} | {} / {} |",
            c.baseline_ms / repeat as f64,
            c.candidate_ms / repeat as f64,
            c.wall_ratio,
            c.cpu_ratio,
            files_in(&listing_plan),
            files_in(&delta_plan)
        );
    }
}

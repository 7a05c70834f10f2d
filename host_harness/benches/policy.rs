//! Planning overhead of the SQL policy analyzer rule reached through the plugin ABI.
//!
//! Two sessions with the CodeAnatomy plugin loaded through dlopen, identical except that one
//! has the `codeanatomy_policy` analyzer rule (all statement kinds checked, `deterministic` on)
//! and the other does not. Both plan the same 20-table join to a physical plan; runs alternate.
//!
//! Run: `cargo bench -p df_plugin_host --bench policy` (after `make build`).
//! Env: `BENCH_RUNS` (default 200), `BENCH_TABLES` (default 20), `BENCH_PLUGIN` (path).
//! Prints the medians and the with-policy / without-policy ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use df_plugin_host::{load, InstallOptions};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs = env_usize("BENCH_RUNS", 200);
    let tables = env_usize("BENCH_TABLES", 20);
    let path = std::env::var("BENCH_PLUGIN").unwrap_or_else(|_| {
        // target/release/deps/<bench> -> target/release/libcodeanatomy_plugin.so
        let dir = std::env::current_exe().expect("exe").parent().and_then(|d| d.parent()).expect("target dir").to_path_buf();
        dir.join("libcodeanatomy_plugin.so").display().to_string()
    });
    // Benchmarks measure the local build, which is unsigned (or signed with the local key):
    // allow it explicitly, on top of whatever DFPLUGIN_TRUST_FILE trusts.
    let mut trust = df_plugin_host::TrustPolicy::from_env().expect("trust policy");
    trust.allow_unsigned = true;
    df_plugin_host::set_trust_policy(trust).expect("trust policy");
    let plugin = load(&path).unwrap_or_else(|e| panic!("load {path}: {e} (run `make build` first)"));

    let session = |with_policy: bool| {
        let mut builder = SessionStateBuilder::new().with_default_features();
        plugin.install(&mut builder, &InstallOptions::new()).expect("install");
        if !with_policy {
            if let Some(rules) = builder.analyzer_rules().as_mut() {
                rules.retain(|r| r.name() != "codeanatomy_policy");
            }
        }
        let ctx = SessionContext::new_with_state(builder.build());
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(Int64Array::from(vec![10, 20, 30]))],
        )
        .expect("batch");
        for i in 0..tables {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![batch.clone()]]).expect("table");
            ctx.register_table(format!("t{i}"), Arc::new(table)).expect("register");
        }
        ctx
    };
    let with = session(true);
    let without = session(false);
    // Every statement kind is checked; `deterministic` makes the rule walk every expression.
    for statement in ["SET codeanatomy.policy.deterministic = true", "SET codeanatomy.policy.allow_ddl = false"] {
        with.sql(statement).await.expect("set").collect().await.expect("set");
    }

    let select: Vec<String> = (0..tables).map(|i| format!("t{i}.v + 1")).collect();
    let joins: Vec<String> = (1..tables).map(|i| format!("JOIN t{i} ON t{}.id = t{i}.id", i - 1)).collect();
    let sql = format!("SELECT {} FROM t0 {} WHERE t0.v > 5 AND abs(t1.v) < 100", select.join(", "), joins.join(" "));

    let plan_once = |ctx: &SessionContext| {
        let ctx = ctx.clone();
        let sql = sql.clone();
        async move {
            let start = Instant::now();
            let plan = ctx.sql(&sql).await.expect("plan").create_physical_plan().await.expect("physical plan");
            std::hint::black_box(plan);
            start.elapsed()
        }
    };
    for _ in 0..5 {
        plan_once(&with).await;
        plan_once(&without).await;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(plan_once(&with).await);
        b.push(plan_once(&without).await);
    }
    let (with_ms, without_ms) = (median(a).as_secs_f64() * 1e3, median(b).as_secs_f64() * 1e3);
    println!("| query | without policy ms | with policy (ABI analyzer rule) ms | ratio |");
    println!("|---|---|---|---|");
    println!("| {tables}-table join, plan to physical | {without_ms:.3} | {with_ms:.3} | {:.3} |", with_ms / without_ms);
}

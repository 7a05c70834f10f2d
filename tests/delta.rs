//! Delta tables through the plugin, loaded with real dlopen and linked natively: every way in
//! agrees, pruning shows in EXPLAIN, errors name the table and the value, and scans work from
//! any host thread. Tables are written with the deltalake crate (an independent writer; the
//! Python suite compares against deltalake-python as the reading oracle).

mod common;

use std::sync::Arc;

use codeanatomy_plugin::delta::deltalake::arrow::array::{Int64Array, RecordBatch, StringArray};
use codeanatomy_plugin::delta::deltalake::arrow::datatypes::{DataType, Field, Schema};
use codeanatomy_plugin::delta::deltalake::protocol::SaveMode;
use codeanatomy_plugin::delta::deltalake::DeltaTable;
use codeanatomy_plugin::CodeAnatomy;
use common::{plugin_path, temp_dir};
use datafusion::logical_expr::{col, lit, TableProviderFilterPushDown};
use datafusion::prelude::SessionContext;
use df_plugin_host::conform::rows_of;
use df_plugin_host::{load, LoadedPlugin};

fn batch(ids: &[i64], parts: &[&str]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("part", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(parts.to_vec()))],
    )
    .expect("batch")
}

/// Version 0: ids 0..4 over parts a..d; version 1: ids 4..8; version 2: ids 8..10 in part a.
async fn write_table(dir: &std::path::Path) -> String {
    let uri = dir.join("events").display().to_string();
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url");
    let commits = [
        batch(&[0, 1, 2, 3], &["a", "b", "c", "d"]),
        batch(&[4, 5, 6, 7], &["a", "b", "c", "d"]),
        batch(&[8, 9], &["a", "a"]),
    ];
    for b in commits {
        let table = DeltaTable::try_from_url(url.clone()).await.expect("table handle");
        table
            .write(vec![b])
            .with_save_mode(SaveMode::Append)
            .with_partition_columns(["part"])
            .await
            .expect("write commit");
    }
    uri
}

fn session(plugin: &Arc<LoadedPlugin>, batch_size: usize) -> SessionContext {
    common::installed_session(plugin, batch_size, 3)
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    let mut rows = rows_of(&batches)?;
    rows.sort();
    Ok(rows)
}

fn hosts() -> Vec<(&'static str, Arc<LoadedPlugin>)> {
    vec![
        ("native", LoadedPlugin::native::<CodeAnatomy>().expect("native plugin")),
        ("dlopen", load(plugin_path()).expect("dlopen plugin")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_in_agrees_on_both_hosts() {
    let dir = temp_dir("delta-ways");
    let uri = write_table(&dir).await;
    let expected_latest: Vec<Vec<String>> = {
        let mut r: Vec<Vec<String>> = (0..10)
            .map(|i| vec![i.to_string(), ["a", "b", "c", "d"][if i >= 8 { 0 } else { (i % 4) as usize }].to_string()])
            .collect();
        r.sort();
        r
    };
    let mut per_host = Vec::new();
    for (label, plugin) in hosts() {
        let ctx = session(&plugin, 8192);
        ctx.sql(&format!("CREATE EXTERNAL TABLE ddl STORED AS DELTA LOCATION '{uri}'")).await.expect("ddl");
        ctx.sql(&format!("CREATE EXTERNAL TABLE ddl_v1 STORED AS DELTA LOCATION '{uri}' OPTIONS ('version' '1')"))
            .await
            .expect("ddl v1");
        let named = plugin.table_provider("delta", &format!(r#"{{"table_uri": "{uri}", "version": 1}}"#)).expect("named");
        ctx.register_table("named_v1", named).expect("register");

        let latest = rows(&ctx, "SELECT id, part FROM ddl").await.expect("ddl rows");
        assert_eq!(latest, expected_latest, "{label}: DDL at latest");
        let by_function = rows(&ctx, &format!("SELECT id, part FROM delta_scan('{uri}')")).await.expect("delta_scan");
        assert_eq!(by_function, latest, "{label}: delta_scan equals DDL");

        let v1_ddl = rows(&ctx, "SELECT id, part FROM ddl_v1").await.expect("ddl v1 rows");
        let v1_named = rows(&ctx, "SELECT id, part FROM named_v1").await.expect("named rows");
        let v1_function = rows(&ctx, &format!("SELECT id, part FROM delta_scan('{uri}', 1)")).await.expect("fn v1");
        assert_eq!(v1_ddl.len(), 8, "{label}: version 1 has 8 rows");
        assert_eq!(v1_named, v1_ddl, "{label}: named provider equals DDL");
        assert_eq!(v1_function, v1_ddl, "{label}: delta_scan equals DDL");
        per_host.push((latest, v1_ddl));
    }
    assert_eq!(per_host[0], per_host[1], "native and dlopen hosts agree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_partition_pruning_and_pushdown_is_exact_only_on_partitions() {
    let dir = temp_dir("delta-prune");
    let uri = write_table(&dir).await;
    for (label, plugin) in hosts() {
        let ctx = session(&plugin, 8192);
        let plan = rows(&ctx, &format!("EXPLAIN SELECT id FROM delta_scan('{uri}') WHERE part = 'b'"))
            .await
            .expect("explain");
        let text = format!("{plan:?}");
        // Three commits wrote 9 files; part = 'b' lives in 2 of them.
        assert!(text.contains("files=2/9, pruned=7"), "{label}: EXPLAIN shows pruning: {text}");
        // A plain table (no reader features) is read as Parquet plus partition values.
        assert!(text.contains("reader=parquet"), "{label}: direct Parquet read: {text}");
        // ABI 1.4: a local direct read runs as the host's own Parquet scan under the plugin's
        // label (the scan guard and EXPLAIN still see the summary).
        // (An in-process plugin's providers are the host's own objects: nothing to run instead.)
        if label == "dlopen" {
            assert!(text.contains("reader=parquet, file_selection=index, run by host: DataSourceExec"), "{label}: host-run scan: {text}");
        }
        let result = rows(&ctx, &format!("SELECT id FROM delta_scan('{uri}') WHERE part = 'b'")).await.expect("rows");
        assert_eq!(result, vec![vec!["1".to_string()], vec!["5".to_string()]], "{label}");

        let provider = plugin.table_provider("delta", &format!(r#"{{"table_uri": "{uri}"}}"#)).expect("provider");
        let on_partition = col("part").eq(lit("b"));
        let on_data = col("id").gt(lit(3i64));
        let pushdown = provider.supports_filters_pushdown(&[&on_partition, &on_data]).expect("pushdown");
        assert_eq!(
            pushdown,
            vec![TableProviderFilterPushDown::Exact, TableProviderFilterPushDown::Inexact],
            "{label}: exact on partition columns only"
        );
    }
}

/// Two commits of an unpartitioned table with a string column: ids 0..3 (`n0`..`n2`), 3..6.
async fn write_named_table(dir: &std::path::Path) -> String {
    let uri = dir.join("named").display().to_string();
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    for ids in [[0i64, 1, 2], [3, 4, 5]] {
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(names))],
        )
        .expect("batch");
        let table = DeltaTable::try_from_url(url.clone()).await.expect("table handle");
        table.write(vec![b]).with_save_mode(SaveMode::Append).await.expect("write commit");
    }
    uri
}

async fn explain(ctx: &SessionContext, sql: &str) -> String {
    format!("{:?}", rows(ctx, &format!("EXPLAIN {sql}")).await.expect("explain"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_choose_files_from_the_snapshot_index_and_follow_new_commits() {
    let dir = temp_dir("delta-index");
    let uri = write_table(&dir).await;
    let named = write_named_table(&dir).await;
    let mut contexts = Vec::new();
    for (label, plugin) in hosts() {
        let ctx = session(&plugin, 8192);
        for (name, location) in [("t", &uri), ("n", &named)] {
            ctx.sql(&format!("CREATE EXTERNAL TABLE {name} STORED AS DELTA LOCATION '{location}'")).await.expect("ddl");
        }
        // `id` statistics are exact: the index keeps only the file whose range holds 8 and 9.
        let text = explain(&ctx, "SELECT id FROM t WHERE id >= 8").await;
        assert!(text.contains("files=1/9, pruned=8") && text.contains("file_selection=index"), "{label}: {text}");
        assert_eq!(rows(&ctx, "SELECT id FROM t WHERE id >= 8").await.expect("rows"), vec![vec!["8".to_string()], vec!["9".to_string()]]);
        // Partition filters are applied exactly from the index (deltalake reports them Exact).
        let text = explain(&ctx, "SELECT id FROM t WHERE part IN ('b', 'c')").await;
        assert!(text.contains("files=4/9") && text.contains("file_selection=index"), "{label}: {text}");
        assert_eq!(rows(&ctx, "SELECT count(*) FROM t WHERE part IN ('b', 'c')").await.expect("rows"), vec![vec!["4".to_string()]]);
        // String statistics are truncated by writers: such filters are planned by deltalake.
        let text = explain(&ctx, "SELECT id FROM n WHERE name = 'n4'").await;
        assert!(text.contains("file_selection=deltalake"), "{label}: {text}");
        assert_eq!(rows(&ctx, "SELECT id FROM n WHERE name = 'n4'").await.expect("rows"), vec![vec!["4".to_string()]]);
        let text = explain(&ctx, "SELECT name FROM n WHERE id < 2").await;
        assert!(text.contains("files=1/2") && text.contains("file_selection=index"), "{label}: {text}");
        if label == "dlopen" {
            assert!(text.contains("file_selection=index, run by host: DataSourceExec"), "{label}: host-run scan: {text}");
        }
        contexts.push((label, ctx));
    }

    // A commit written after the tables were registered is read by the next scan.
    let table = DeltaTable::try_from_url(codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url"))
        .await
        .expect("table handle");
    table.write(vec![batch(&[10, 11], &["e", "e"])]).with_save_mode(SaveMode::Append).await.expect("append");
    for (label, ctx) in &contexts {
        assert_eq!(rows(ctx, "SELECT count(*), max(id) FROM t").await.expect("rows"), vec![vec!["12".to_string(), "11".to_string()]], "{label}");
        let text = explain(ctx, "SELECT id FROM t WHERE part = 'e'").await;
        assert!(text.contains("version=3") && text.contains("files=1/10") && text.contains("file_selection=index"), "{label}: {text}");
    }
}

#[test]
fn scans_run_from_a_thread_with_its_own_runtime() {
    let dir = temp_dir("delta-threads");
    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let uri = setup.block_on(write_table(&dir));
    let plugin = load(plugin_path()).expect("dlopen plugin");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (plugin, uri) = (Arc::clone(&plugin), uri.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let ctx = session(&plugin, 8192);
                    rows(&ctx, &format!("SELECT count(*), sum(id) FROM delta_scan('{uri}')")).await
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread").expect("query"), vec![vec!["10".to_string(), "45".to_string()]]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_batch_size_is_honoured() {
    let dir = temp_dir("delta-batch");
    let uri = write_table(&dir).await;
    let plugin = load(plugin_path()).expect("dlopen plugin");
    let ctx = session(&plugin, 3);
    let batches = ctx.sql(&format!("SELECT id FROM delta_scan('{uri}', 1)")).await.expect("plan").collect().await.expect("run");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 8);
    assert!(batches.iter().all(|b| b.num_rows() <= 3), "batches: {:?}", batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_table_and_the_value() {
    let dir = temp_dir("delta-errors");
    let uri = write_table(&dir).await;
    let missing = dir.join("nothing-here").display().to_string();
    let plugin = load(plugin_path()).expect("dlopen plugin");
    let ctx = session(&plugin, 8192);
    let cases: Vec<(String, &str, Vec<String>)> = vec![
        (format!("SELECT * FROM delta_scan('{missing}')"), "[E0012 not_found]", vec![missing.clone()]),
        (format!("SELECT * FROM delta_scan('{uri}', 9)"), "[E0012 not_found]", vec![uri.clone(), "no version 9".into(), "latest version is 2".into()]),
        (
            format!("SELECT * FROM delta_scan('{uri}', '1999-01-01T00:00:00Z')"),
            "[E0012 not_found]",
            vec![uri.clone(), "1999-01-01T00:00:00+00:00".into()],
        ),
        (
            format!("CREATE EXTERNAL TABLE x STORED AS DELTA LOCATION '{uri}' OPTIONS ('verison' '1')"),
            "[E0003 invalid_options]",
            vec![uri.clone(), "'verison'".into()],
        ),
        (
            format!("CREATE EXTERNAL TABLE x STORED AS DELTA LOCATION '{uri}' OPTIONS ('version' '1', 'timestamp' '2024-01-01')"),
            "[E0003 invalid_options]",
            vec![uri.clone(), "not both".into()],
        ),
    ];
    for (sql, tag, needles) in cases {
        let err = rows(&ctx, &sql).await.expect_err(&sql);
        assert!(err.contains(tag), "{sql}: expected {tag} in {err}");
        for needle in needles {
            assert!(err.contains(&needle), "{sql}: expected '{needle}' in {err}");
        }
    }
    let err = plugin.table_provider("delta", &format!(r#"{{"table_uri": "{uri}", "version": 1, "timestamp": "2024-01-01"}}"#)).unwrap_err();
    assert!(err.to_string().contains("not both") && err.to_string().contains(&uri), "{err}");
}

//! What ABI 1.3 carries past datafusion-ffi, in a Rust host, linked natively and through real
//! dlopen: the SQL policy analyzer rule (SQL and DataFrame API), Delta time travel in SQL,
//! DELETE/UPDATE with counts, concurrent INSERTs, CHECK constraints, the scan guard and
//! validated configuration. Tables are written with the deltalake crate; the Python suite
//! re-reads the results with deltalake-python as the oracle.

mod common;

use std::sync::Arc;

use codeanatomy_plugin::delta::deltalake::arrow::array::{Int64Array, RecordBatch, StringArray};
use codeanatomy_plugin::delta::deltalake::arrow::datatypes::{DataType, Field, Schema};
use codeanatomy_plugin::delta::deltalake::protocol::SaveMode;
use codeanatomy_plugin::delta::deltalake::DeltaTable;
use common::{hosts, plugin_path, run, strings, temp_dir};
use datafusion::prelude::SessionContext;
use df_plugin_host::load;

/// Three commits: ids 1..=4 (parts a, b), then 5..=6 (part a), then 7 (part c).
async fn write_table(dir: &std::path::Path, name: &str) -> String {
    let uri = dir.join(name).display().to_string();
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url");
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("part", DataType::Utf8, true)]));
    let commits: [(&[i64], &[&str]); 3] = [(&[1, 2, 3, 4], &["a", "b", "a", "b"]), (&[5, 6], &["a", "a"]), (&[7], &["c"])];
    for (ids, parts) in commits {
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(parts.to_vec()))],
        )
        .expect("batch");
        let table = DeltaTable::try_from_url(url.clone()).await.expect("table handle");
        table.write(vec![batch]).with_save_mode(SaveMode::Append).with_partition_columns(["part"]).await.expect("commit");
    }
    uri
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denies_by_statement_kind_and_volatility_everywhere_in_the_plan() {
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(&ctx, &["CREATE TABLE m (x BIGINT)", "CREATE VIEW vol AS SELECT random() AS r"]).await.expect("setup");
        let denials: &[(&str, &[&str], &str)] = &[
            ("DDL", &["SET codeanatomy.policy.allow_ddl = false", "CREATE TABLE n (x INT)"], "allow_ddl"),
            ("CTAS", &["SET codeanatomy.policy.allow_ddl = false", "CREATE TABLE n AS SELECT 1"], "allow_ddl"),
            ("DML", &["SET codeanatomy.policy.allow_dml = false", "INSERT INTO m VALUES (1)"], "allow_dml"),
            ("DML from a subquery", &["SET codeanatomy.policy.allow_dml = false", "INSERT INTO m SELECT x FROM (SELECT 1 AS x)"], "allow_dml"),
            ("COPY", &["SET codeanatomy.policy.allow_copy = false", "COPY (SELECT 1 AS x) TO '/dev/null' STORED AS CSV"], "allow_copy"),
            ("SET", &["SET codeanatomy.policy.allow_statements = false", "SET datafusion.execution.batch_size = 10"], "allow_statements"),
            ("volatile, top level", &["SET codeanatomy.policy.deterministic = true", "SELECT random()"], "deterministic"),
            ("volatile, subquery", &["SET codeanatomy.policy.deterministic = true", "SELECT 1 WHERE 0.5 < (SELECT random())"], "subquery"),
            ("volatile, IN subquery", &["SET codeanatomy.policy.deterministic = true", "SELECT 1 WHERE 1.0 IN (SELECT random())"], "subquery"),
            ("volatile, CTE", &["SET codeanatomy.policy.deterministic = true", "WITH c AS (SELECT random() AS r) SELECT * FROM c"], "subquery 'c'"),
            ("volatile, view", &["SET codeanatomy.policy.deterministic = true", "SELECT * FROM vol"], "vol"),
            ("volatile, UNION", &["SET codeanatomy.policy.deterministic = true", "SELECT 1.0 UNION ALL SELECT random()"], "UNION branch"),
            ("volatile aggregate input", &["SET codeanatomy.policy.deterministic = true", "SELECT sum(random()) FROM m"], "random()"),
        ];
        for (what, statements, needle) in denials {
            // A fresh session per case: the policy can deny the SET that would undo it.
            let fresh = common::installed_session(&plugin, 8192, 2);
            run(&fresh, &["CREATE TABLE m (x BIGINT)", "CREATE VIEW vol AS SELECT random() AS r"]).await.expect("setup");
            let err = run(&fresh, statements).await.expect_err(&format!("{label}: {what} must be denied"));
            assert!(err.contains("[E0010 policy_violation]") && err.contains(needle), "{label}: {what}: {err}");
        }
        // Allowed statements still run under a strict policy.
        let rows = run(
            &ctx,
            &["SET codeanatomy.policy.allow_ddl = false", "SET codeanatomy.policy.deterministic = true", "SELECT (SELECT count(*) FROM m), now() IS NOT NULL"],
        )
        .await
        .expect("an allowed query runs");
        assert_eq!(rows, strings(&[&["0", "true"]]), "{label}");

        // DataFrame API plans pass the same analyzer rule.
        let df = ctx.table("m").await.expect("table");
        let df = df.select(vec![datafusion::prelude::random().alias("r")]).expect("select");
        let err = df.collect().await.expect_err("volatile function through the DataFrame API").to_string();
        assert!(err.contains("policy_violation") && err.contains("random()"), "{label}: {err}");
        run(&ctx, &["SET codeanatomy.policy.deterministic = false", "SET codeanatomy.policy.allow_dml = false"]).await.expect("set");
        let df = ctx.sql("SELECT 1 AS x").await.expect("df");
        let err = df
            .write_table("m", datafusion::dataframe::DataFrameWriteOptions::new())
            .await
            .expect_err("INSERT through the DataFrame API")
            .to_string();
        assert!(err.contains("policy_violation") && err.contains("allow_dml"), "{label}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_sql_equals_delta_scan_at_versions_and_timestamps() {
    let dir = temp_dir("time-travel");
    let uri = write_table(&dir, "events").await;
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(
            &ctx,
            &[&format!("CREATE EXTERNAL TABLE events STORED AS DELTA LOCATION '{uri}'"), "SET datafusion.sql_parser.dialect = 'databricks'"],
        )
        .await
        .expect("setup");
        for version in 0..=2 {
            let by_sql = run(&ctx, &[&format!("SELECT id, part FROM events VERSION AS OF {version}")]).await.expect("sql");
            let by_fn = run(&ctx, &[&format!("SELECT id, part FROM delta_scan('{uri}', {version})")]).await.expect("fn");
            assert_eq!(by_sql, by_fn, "{label}: version {version}");
            assert_eq!(by_sql.len(), [4, 6, 7][version], "{label}: version {version}");
            // The commit timestamp of this version selects the same snapshot.
            let ts = run(&ctx, &[&format!("SELECT CAST(timestamp AS VARCHAR) FROM delta_snapshot('{uri}', {version})")])
                .await
                .expect("snapshot")[0][0]
                .clone();
            let by_ts = run(&ctx, &[&format!("SELECT id, part FROM events TIMESTAMP AS OF '{ts}'")]).await.expect("timestamp");
            assert_eq!(by_ts, by_fn, "{label}: TIMESTAMP AS OF '{ts}' (version {version})");
        }
        // Aliases and joins of two versions of one table.
        let joined = run(
            &ctx,
            &["SELECT a.id FROM events VERSION AS OF 2 AS a LEFT JOIN events VERSION AS OF 0 b ON a.id = b.id WHERE b.id IS NULL"],
        )
        .await
        .expect("join");
        assert_eq!(joined, strings(&[&["5"], &["6"], &["7"]]), "{label}");
        let err = run(&ctx, &["SELECT * FROM events VERSION AS OF 9"]).await.expect_err("missing version");
        assert!(err.contains("not_found") && err.contains("has no version 9") && err.contains(&uri), "{label}: {err}");
        let err = run(&ctx, &["SELECT * FROM events TIMESTAMP AS OF '1999-01-01 00:00:00'"]).await.expect_err("too early");
        assert!(err.contains("not_found") && err.contains("1999"), "{label}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_update_return_counts_and_full_deletes_are_guarded() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("dml");
        let uri = write_table(&dir, "t").await;
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(&ctx, &[&format!("CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'")]).await.expect("register");
        assert_eq!(run(&ctx, &["DELETE FROM t WHERE id IN (2, 4)"]).await.expect("delete"), strings(&[&["2"]]), "{label}");
        assert_eq!(run(&ctx, &["UPDATE t SET id = id * 100 WHERE part = 'a'"]).await.expect("update"), strings(&[&["4"]]), "{label}");
        assert_eq!(
            run(&ctx, &["SELECT id, part FROM t"]).await.expect("rows"),
            strings(&[&["100", "a"], &["300", "a"], &["500", "a"], &["600", "a"], &["7", "c"]]),
            "{label}"
        );
        let err = run(&ctx, &["DELETE FROM t"]).await.expect_err("full delete refused");
        assert!(err.contains("policy_violation") && err.contains("codeanatomy.dml.allow_full_table_delete"), "{label}: {err}");
        assert_eq!(run(&ctx, &["SELECT count(*) FROM t"]).await.expect("count"), strings(&[&["5"]]), "{label}: nothing deleted");
        let deleted = run(&ctx, &["SET codeanatomy.dml.allow_full_table_delete = true", "DELETE FROM t"]).await.expect("full delete");
        assert_eq!(deleted, strings(&[&["5"]]), "{label}: full delete counts every row");
        assert_eq!(run(&ctx, &["SELECT count(*) FROM t"]).await.expect("count"), strings(&[&["0"]]), "{label}");
        // A pinned table refuses writes, naming the fix.
        run(&ctx, &[&format!("CREATE EXTERNAL TABLE t1 STORED AS DELTA LOCATION '{uri}' OPTIONS ('version' '1')")]).await.expect("pinned");
        let err = run(&ctx, &["DELETE FROM t1 WHERE id = 1"]).await.expect_err("pinned delete");
        assert!(err.contains("pinned") && err.contains("version 1"), "{label}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_lose_nothing() {
    let plugin = load(plugin_path()).expect("dlopen plugin");
    let dir = temp_dir("dml-concurrent");
    let uri = dir.join("t").display().to_string();
    let ctx = Arc::new(common::installed_session(&plugin, 8192, 2));
    run(&ctx, &[&format!("CREATE EXTERNAL TABLE t (writer BIGINT, n BIGINT) STORED AS DELTA LOCATION '{uri}'")]).await.expect("create");
    let writers = (0..4)
        .map(|w| {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                for n in 0..25 {
                    let count = run(&ctx, &[&format!("INSERT INTO t VALUES ({w}, {n})")]).await.expect("insert");
                    assert_eq!(count, strings(&[&["1"]]));
                }
            })
        })
        .collect::<Vec<_>>();
    for w in writers {
        w.await.expect("writer task");
    }
    let summary = run(&ctx, &["SELECT count(*), count(DISTINCT writer * 100 + n), min(n), max(n) FROM t"]).await.expect("count");
    assert_eq!(summary, strings(&[&["100", "100", "0", "24"]]));
    // One commit per INSERT, after the CREATE (version 0).
    let version = run(&ctx, &[&format!("SELECT version FROM delta_snapshot('{uri}')")]).await.expect("snapshot");
    assert_eq!(version, strings(&[&["100"]]));
}

async fn table_version(ctx: &SessionContext, uri: &str) -> Vec<Vec<String>> {
    run(ctx, &[&format!("SELECT version FROM delta_snapshot('{uri}')")]).await.expect("version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_constraints_and_not_null_columns_are_enforced_and_the_table_is_unchanged() {
    let plugin = load(plugin_path()).expect("dlopen plugin");
    let dir = temp_dir("dml-check");
    let uri = write_table(&dir, "t").await;
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url");
    let table = DeltaTable::try_from_url(url).await.expect("table");
    table.add_constraint().with_constraint("id_positive", "id > 0").await.expect("add constraint");
    let ctx = common::installed_session(&plugin, 8192, 2);
    run(&ctx, &[&format!("CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'")]).await.expect("register");
    let before = run(&ctx, &["SELECT id, part FROM t"]).await.expect("rows");
    let v_before = table_version(&ctx, &uri).await;
    for (what, sql) in [
        ("CHECK on insert", "INSERT INTO t VALUES (-1, 'a')"),
        ("CHECK on update", "UPDATE t SET id = -id WHERE part = 'b'"),
        ("NOT NULL on insert", "INSERT INTO t VALUES (NULL, 'a')"),
        ("NOT NULL on update", "UPDATE t SET id = NULL WHERE part = 'c'"),
    ] {
        let err = run(&ctx, &[sql]).await.expect_err(what);
        let named = if what.starts_with("CHECK") {
            err.contains("invalid_argument") && err.contains("CHECK id_positive (id > 0)") && err.contains("nothing was written")
        } else {
            err.to_lowercase().contains("null")
        };
        assert!(named, "{what}: the error names the violated rule: {err}");
        assert_eq!(run(&ctx, &["SELECT id, part FROM t"]).await.expect("rows"), before, "{what}: rows unchanged");
        assert_eq!(table_version(&ctx, &uri).await, v_before, "{what}: no commit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_is_validated_at_set_and_listed_with_docs() {
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        let err = run(&ctx, &["SET codeanatomy.scan_gaurd.max_files = 3"]).await.expect_err("typo");
        assert!(err.contains("invalid_config") && err.contains("codeanatomy.scan_gaurd.max_files") && err.contains("codeanatomy.scan_guard.max_files"), "{label}: {err}");
        let err = run(&ctx, &["SET codeanatomy.normalize.form = 'NFX'"]).await.expect_err("bad value");
        assert!(err.contains("'NFX'") && err.contains("NFC, NFD, NFKC, NFKD"), "{label}: {err}");
        let err = run(&ctx, &["SET codeanatomy.scan_guard.max_files = -1"]).await.expect_err("out of range");
        assert!(err.contains("integer in 0..="), "{label}: {err}");
        let listed = run(
            &ctx,
            &[
                "SET datafusion.catalog.information_schema = true",
                "SET codeanatomy.policy.deterministic = TRUE",
                "SELECT value, description <> '' FROM information_schema.df_settings WHERE name = 'codeanatomy.policy.deterministic'",
            ],
        )
        .await
        .expect("df_settings");
        assert_eq!(listed, strings(&[&["true", "true"]]), "{label}: normalized value and docs listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_guard_counts_files_after_pruning() {
    let dir = temp_dir("scan-guard");
    let uri = write_table(&dir, "t").await;
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(&ctx, &[&format!("CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'"), "SET codeanatomy.scan_guard.max_files = 2"])
            .await
            .expect("setup");
        // Three commits wrote 4 files: parts a and b, then a, then c.
        let err = run(&ctx, &["SELECT sum(id) FROM t"]).await.expect_err("4 files > 2");
        assert!(err.contains("policy_violation") && err.contains("would read 4 files") && err.contains(&uri), "{label}: {err}");
        assert_eq!(run(&ctx, &["SELECT sum(id) FROM t WHERE part = 'a'"]).await.expect("2 files"), strings(&[&["15"]]), "{label}");
        run(&ctx, &["SET codeanatomy.scan_guard.max_files = 0", "SET codeanatomy.scan_guard.require_partition_filter = true"])
            .await
            .expect("set");
        let err = run(&ctx, &["SELECT sum(id) FROM t WHERE id > 1"]).await.expect_err("no partition predicate");
        assert!(err.contains("no predicate on a partition column"), "{label}: {err}");
        assert_eq!(run(&ctx, &["SELECT sum(id) FROM t WHERE part IN ('b', 'c')"]).await.expect("ok"), strings(&[&["13"]]), "{label}");
    }
}

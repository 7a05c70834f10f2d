//! Hostile inputs in a Rust host, linked natively and through real dlopen: corrupt data files
//! end in errors (never a panic), scans of different sources never merge, overflow is an
//! error, data files that contradict the schema or leave the table root are refused, reads
//! create nothing, the full-table-delete guard judges effect, secrets stay out of errors, and
//! the location policy holds through `..` and links. Each test fails on the code before the
//! hardening (issue #15). Tables are written with the deltalake crate.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeanatomy_plugin::delta::deltalake::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use codeanatomy_plugin::delta::deltalake::arrow::datatypes::{DataType, Field, Schema};
use codeanatomy_plugin::delta::deltalake::protocol::SaveMode;
use codeanatomy_plugin::delta::deltalake::DeltaTable;
use common::{hosts, run, strings, temp_dir};

/// A table of `ids` (one commit each slice), columns `id long NOT NULL`, `name string`.
async fn write_table(dir: &Path, name: &str, commits: &[&[i64]]) -> String {
    let uri = dir.join(name).display().to_string();
    let url = codeanatomy_plugin::delta::deltalake::ensure_table_uri(&uri).expect("url");
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
    for ids in commits {
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(names))],
        )
        .expect("batch");
        let table = DeltaTable::try_from_url(url.clone()).await.expect("table handle");
        table.write(vec![batch]).with_save_mode(SaveMode::Append).await.expect("commit");
    }
    uri
}

fn data_files(table: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(table)
        .expect("table dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
}

/// Appends a commit (the next version) that adds `path` with `size` bytes.
fn commit_add(table: &str, path: &str, size: u64) {
    let log = Path::new(table).join("_delta_log");
    let next = std::fs::read_dir(&log).expect("log").filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))).count();
    let action = serde_json::json!({"add": {"path": path, "partitionValues": {}, "size": size, "modificationTime": 0, "dataChange": true}});
    std::fs::write(log.join(format!("{next:020}.json")), format!("{action}\n")).expect("commit");
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> u64 {
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
    std::fs::metadata(path).expect("size").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_parquet_footer_is_an_error_not_a_crash() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("corrupt-footer");
        let uri = write_table(&dir, "t", &[&[1, 2, 3]]).await;
        let file = &data_files(&uri)[0];
        let mut bytes = std::fs::read(file).expect("read");
        let n = bytes.len();
        // The footer claims 2 GiB of metadata: arrow's reader panics on it.
        bytes[n - 8..n - 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        std::fs::write(file, &bytes).expect("corrupt");
        let ctx = common::installed_session(&plugin, 8192, 2);
        for query in [format!("SELECT * FROM delta_scan('{uri}')"), format!("SELECT count(name) FROM delta_scan('{uri}')")] {
            let err = run(&ctx, &[&query]).await.expect_err("corrupt file must fail");
            assert!(err.contains(&uri) || err.contains("parquet") || err.contains("Parquet"), "{label}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_of_different_sources_never_merge() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("no-merge");
        let a = write_table(&dir, "a", &[&[1, 2, 3, 4]]).await;
        let b = write_table(&dir, "b", &[&[1, 2], &[3, 4, 5, 6, 7]]).await;
        let ctx = common::installed_session(&plugin, 8192, 2);
        let cases = [
            (format!("SELECT (SELECT count(*) FROM delta_scan('{a}')) AS x, (SELECT count(*) FROM delta_scan('{b}')) AS y"), ["4", "7"]),
            (format!("SELECT (SELECT count(*) FROM delta_scan('{b}', 0)) AS x, (SELECT count(*) FROM delta_scan('{b}', 1)) AS y"), ["2", "7"]),
            (format!("SELECT (SELECT count(*) FROM delta_files('{a}')) AS x, (SELECT count(*) FROM delta_files('{b}')) AS y"), ["1", "2"]),
            (
                format!("SELECT (SELECT max(version) FROM delta_snapshot('{a}')) AS x, (SELECT max(version) FROM delta_snapshot('{b}')) AS y"),
                ["0", "1"],
            ),
        ];
        let union = format!(
            "SELECT count(*), sum(id) FROM (SELECT id FROM delta_scan('{a}') UNION ALL SELECT id FROM delta_scan('{b}'))"
        );
        assert_eq!(run(&ctx, &[&union]).await.expect("union"), strings(&[&["11", "38"]]), "{label}");
        for (query, expected) in cases {
            assert_eq!(run(&ctx, &[&query]).await.expect("query"), strings(&[&expected]), "{label}: {query}");
        }
        let time_travel = run(
            &ctx,
            &[
                &format!("CREATE EXTERNAL TABLE e STORED AS DELTA LOCATION '{b}'"),
                "SET datafusion.sql_parser.dialect = 'databricks'",
                "SELECT (SELECT count(*) FROM e VERSION AS OF 0) AS x, (SELECT count(*) FROM e VERSION AS OF 1) AS y",
            ],
        )
        .await
        .expect("time travel");
        assert_eq!(time_travel, strings(&[&["2", "7"]]), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_overflow_is_an_error_everywhere() {
    let max = i64::MAX;
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        let span = format!("span_make({max}, {max}, 0, 'BYTE', false)");
        for query in [
            format!("SELECT span_len({span})"),
            format!("SELECT span_overlaps({span}, {span})"),
            format!("SELECT span_contains({span}, span_make(0, 1, 0, 'BYTE', true))"),
        ] {
            let err = run(&ctx, &[&query]).await.expect_err("overflow must be an error");
            assert!(err.contains("overflows Int64") && err.contains("invalid_argument"), "{label}: {query}: {err}");
        }
        // The largest representable inclusive span still works.
        let ok = run(&ctx, &[&format!("SELECT span_len(span_make({}, {}, 0, 'BYTE', false))", max - 1, max - 1)]).await;
        assert_eq!(ok.expect("inclusive span below the maximum"), strings(&[&["1"]]), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_that_contradict_the_schema_or_leave_the_root_are_refused() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("bad-files");
        let ctx = common::installed_session(&plugin, 8192, 2);

        // Doubles stored in the `id long` column: refused, naming table, file and column.
        let uri = write_table(&dir, "doubles", &[&[1]]).await;
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Float64, false), Field::new("name", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![2.75])), Arc::new(StringArray::from(vec!["x"]))],
        )
        .expect("batch");
        let size = write_parquet(&Path::new(&uri).join("doubles.parquet"), &batch);
        commit_add(&uri, "doubles.parquet", size);
        let err = run(&ctx, &[&format!("SELECT id FROM delta_scan('{uri}')")]).await.expect_err("silent cast");
        assert!(
            err.contains("corrupt_data") && err.contains("doubles.parquet") && err.contains("'id'") && err.contains(&uri),
            "{label}: {err}"
        );

        // A relative path out of the table root, to a real file there: never read.
        let uri = write_table(&dir, "escape", &[&[1]]).await;
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).expect("outside dir");
        let size = std::fs::copy(&data_files(&uri)[0], outside.join("secret.parquet")).expect("copy");
        commit_add(&uri, "../outside/secret.parquet", size);
        let err = run(&ctx, &[&format!("SELECT * FROM delta_scan('{uri}')")]).await.expect_err("escape");
        assert!(err.contains("leaves the table root") && err.contains("secret.parquet"), "{label}: {err}");

        // An absolute location outside the root: refused unless allowed.
        let uri = write_table(&dir, "absolute", &[&[1]]).await;
        let elsewhere = format!("file://{}", outside.join("secret.parquet").display());
        commit_add(&uri, &elsewhere, size);
        let err = run(&ctx, &[&format!("SELECT * FROM delta_scan('{uri}')")]).await.expect_err("absolute");
        assert!(err.contains("outside the table root") && err.contains("allow_external_files"), "{label}: {err}");
        let rows = run(&ctx, &["SET codeanatomy.delta.allow_external_files = true", &format!("SELECT count(*) FROM delta_scan('{uri}')")])
            .await
            .expect("allowed external file");
        assert_eq!(rows, strings(&[&["2"]]), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_calls_create_nothing() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("no-create");
        let ctx = common::installed_session(&plugin, 8192, 2);
        let missing = dir.join("rel").join("a").join("b");
        for function in ["delta_scan", "delta_snapshot", "delta_files"] {
            let err = run(&ctx, &[&format!("SELECT * FROM {function}('{}')", missing.display())]).await.expect_err("missing");
            assert!(err.contains("not_found") && err.contains("nothing was created"), "{label}: {function}: {err}");
        }
        let err = run(&ctx, &[&format!("CREATE EXTERNAL TABLE m STORED AS DELTA LOCATION '{}'", missing.display())])
            .await
            .expect_err("missing table");
        assert!(err.contains("not_found"), "{label}: {err}");
        assert!(!dir.join("rel").exists(), "{label}: a read created {}", dir.join("rel").display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_table_delete_guard_judges_effect() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("delete-guard");
        let uri = write_table(&dir, "t", &[&[1, 2, 3]]).await;
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(&ctx, &[&format!("CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'")]).await.expect("register");
        let version_sql = format!("SELECT version FROM delta_snapshot('{uri}')");
        for predicate in ["id = id", "id IS NULL OR id IS NOT NULL", "id > -9223372036854775807", "true", "1 = 1"] {
            let err = run(&ctx, &[&format!("DELETE FROM t WHERE {predicate}")]).await.expect_err(predicate);
            assert!(err.contains("policy_violation") && err.contains("every row"), "{label}: {predicate}: {err}");
        }
        assert_eq!(run(&ctx, &["SELECT count(*) FROM t"]).await.expect("count"), strings(&[&["3"]]), "{label}");
        // Deleting nothing, or inserting nothing, succeeds and commits nothing.
        assert_eq!(run(&ctx, &["DELETE FROM t WHERE false"]).await.expect("where false"), strings(&[&["0"]]), "{label}");
        assert_eq!(run(&ctx, &["INSERT INTO t SELECT * FROM t WHERE id > 100"]).await.expect("empty insert"), strings(&[&["0"]]), "{label}");
        assert_eq!(run(&ctx, &[&version_sql]).await.expect("version"), strings(&[&["0"]]), "{label}: no commit");
        assert_eq!(run(&ctx, &["DELETE FROM t WHERE id > 100"]).await.expect("no match"), strings(&[&["0"]]), "{label}");
        assert_eq!(run(&ctx, &["SELECT count(*) FROM t"]).await.expect("count"), strings(&[&["3"]]), "{label}");
        // A narrower delete still works, and an allowed full delete deletes all.
        assert_eq!(run(&ctx, &["DELETE FROM t WHERE id = 1"]).await.expect("delete one"), strings(&[&["1"]]), "{label}");
        let all = run(&ctx, &["SET codeanatomy.dml.allow_full_table_delete = true", "DELETE FROM t WHERE id = id"]).await;
        assert_eq!(all.expect("allowed"), strings(&[&["2"]]), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_errors_and_reset_restores_defaults() {
    for (label, plugin) in hosts() {
        let ctx = common::installed_session(&plugin, 8192, 2);
        // No object store serves http:// here, so the open fails before any connection: the
        // error names the table, without its credentials. (No test touches s3:// without a
        // loopback endpoint.)
        let unopened = run(&ctx, &["SELECT * FROM delta_scan('http://AKIDLEAK:wJalrSECRETLEAK@127.0.0.1:1/t?X-Amz-Signature=SIGLEAK')"])
            .await
            .expect_err("no http store");
        assert!(unopened.contains("http://***@127.0.0.1:1/t"), "{label}: {unopened}");
        // Refused by the location policy before the location is touched.
        let err = run(
            &ctx,
            &[
                "SET codeanatomy.policy.allowed_locations = '/nonexistent-allowed-prefix'",
                "SELECT * FROM delta_scan('http://AKIDLEAK:wJalrSECRETLEAK@127.0.0.1:1/t')",
            ],
        )
        .await
        .expect_err("refused location");
        assert!(err.contains("outside the allowed locations"), "{label}: {err}");
        for secret in ["AKIDLEAK", "wJalrSECRETLEAK", "SIGLEAK"] {
            assert!(!err.contains(secret) && !unopened.contains(secret), "{label}: {secret} leaked: {err} / {unopened}");
        }
        run(&ctx, &["SET codeanatomy.policy.allowed_locations = ''"]).await.expect("reset policy");
        // RESET of a plugin key restores its declared default (DataFusion alone refuses it).
        let line_base = "SELECT span_make(0, 1)['line_base']";
        let set = run(&ctx, &["SET codeanatomy.span.line_base = 1", line_base]).await.expect("set");
        assert_eq!(set, strings(&[&["1"]]), "{label}");
        let reset = run(&ctx, &["RESET codeanatomy.span.line_base", line_base]).await.expect("reset");
        assert_eq!(reset, strings(&[&["0"]]), "{label}: RESET restores the default");
        let err = run(&ctx, &["RESET codeanatomy.span.no_such_key"]).await.expect_err("unknown key");
        assert!(err.contains("codeanatomy.span.no_such_key"), "{label}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_location_policy_holds_through_dot_dot_and_links() {
    for (label, plugin) in hosts() {
        let dir = temp_dir("locations");
        let allowed = dir.join("allowed");
        std::fs::create_dir_all(&allowed).expect("allowed dir");
        let inside = write_table(&allowed, "t", &[&[1, 2]]).await;
        let outside = write_table(&dir, "other", &[&[1]]).await;
        let link = allowed.join("link");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        let ctx = common::installed_session(&plugin, 8192, 2);
        run(&ctx, &[&format!("SET codeanatomy.policy.allowed_locations = '{}'", allowed.display())]).await.expect("set");
        assert_eq!(run(&ctx, &[&format!("SELECT count(*) FROM delta_scan('{inside}')")]).await.expect("inside"), strings(&[&["2"]]));
        let dotdot = format!("{}/../other", allowed.display());
        for (what, uri) in [("outside", outside.clone()), ("dot-dot", dotdot), ("link", link.display().to_string())] {
            for query in [
                format!("SELECT * FROM delta_scan('{uri}')"),
                format!("SELECT * FROM delta_files('{uri}')"),
                format!("CREATE EXTERNAL TABLE x STORED AS DELTA LOCATION '{uri}'"),
            ] {
                let err = run(&ctx, &[&query]).await.expect_err(what);
                assert!(err.contains("policy_violation") && err.contains("allowed_locations"), "{label}: {what}: {err}");
            }
        }
        // A refused CREATE creates nothing either.
        let fresh = dir.join("fresh");
        let err = run(&ctx, &[&format!("CREATE EXTERNAL TABLE f (id BIGINT) STORED AS DELTA LOCATION '{}'", fresh.display())]).await;
        assert!(err.is_err() && !fresh.exists(), "{label}: {err:?}");
    }
}

//! Native (in-process) tests of the function library: every function is registered into a
//! plain `SessionContext` and exercised through SQL, as a host would.

use std::collections::BTreeMap;
use std::sync::Arc;

use codeanatomy_plugin::{config, registry, udaf, udf, udwf};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};

// ---------------------------------------------------------------------------------------
// Harness

fn register(ctx: &SessionContext) {
    for f in udf::scalar_udfs() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in udaf::aggregate_udfs() {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in udwf::window_udfs() {
        ctx.register_udwf(f.as_ref().clone());
    }
    ctx.register_udtf(registry::FUNCTION_NAME, registry::function_registry_table());
}

fn ctx() -> SessionContext {
    let ctx = SessionContext::new();
    register(&ctx);
    ctx
}

fn ctx_with(batch_size: usize, partitions: usize) -> SessionContext {
    let config = SessionConfig::new().with_batch_size(batch_size).with_target_partitions(partitions);
    let ctx = SessionContext::new_with_config(config);
    register(&ctx);
    ctx
}

/// A session whose `codeanatomy.*` namespace holds the given values (as a host installs it).
fn ctx_with_settings(settings: &[(&'static str, &str)]) -> SessionContext {
    let values: BTreeMap<&'static str, String> = settings.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let bag = config::NAMESPACE.to_ffi_options(&values);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_option_extension(bag));
    register(&ctx);
    ctx
}

async fn batches(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// Every row as formatted cells (NULL for nulls).
async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = batches(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    out
}

/// The single cell of a one-row, one-column query.
async fn cell(ctx: &SessionContext, sql: &str) -> String {
    let rows = rows(ctx, sql).await;
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    assert_eq!(rows[0].len(), 1, "{sql} returned {rows:?}");
    rows[0][0].clone()
}

/// The error of a statement that must fail at planning (never executed).
async fn plan_error(ctx: &SessionContext, sql: &str) -> String {
    let result = async {
        let df = ctx.sql(sql).await?;
        df.create_physical_plan().await
    }
    .await;
    match result {
        Ok(_) => panic!("{sql} planned successfully, expected a plan error"),
        Err(e) => e.to_string(),
    }
}

/// The error of a statement that plans but must fail while running.
async fn run_error(ctx: &SessionContext, sql: &str) -> String {
    let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql} failed to plan: {e}"));
    match df.collect().await {
        Ok(b) => panic!("{sql} succeeded: {b:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_plan_error(message: &str, function: &str) {
    assert!(message.contains("[E0006 plan]"), "no plan tag in: {message}");
    assert!(message.contains(function), "{function} not named in: {message}");
    assert!(message.contains("expects"), "expected types not named in: {message}");
}

fn assert_invalid_argument(message: &str, needles: &[&str]) {
    assert!(message.contains("[E0005 invalid_argument]"), "no invalid_argument tag in: {message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
}

/// A table of `n` rows split over `partitions` MemTable partitions, with nulls, Unicode,
/// repeated keys and ties.
fn sample_table(n: i64, partitions: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("g", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("flag", DataType::Boolean, true),
    ]));
    let words = ["alpha", "β-beta", "😀", "e\u{301}", "", "Straße", "x y"];
    let ids: Vec<i64> = (0..n).collect();
    let groups: Vec<i64> = ids.iter().map(|i| i % 7).collect();
    let strings: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 11 != 0).then(|| format!("{}{}", words[(*i as usize) % words.len()], i % 5)))
        .collect();
    let numbers: Vec<Option<i64>> = ids.iter().map(|i| (i % 13 != 0).then_some((i * 37) % 101)).collect();
    let flags: Vec<Option<bool>> = ids.iter().map(|i| (i % 3 != 0).then_some(i % 2 == 0)).collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Int64Array::from(groups)),
            Arc::new(StringArray::from(strings)),
            Arc::new(Int64Array::from(numbers)),
            Arc::new(datafusion::arrow::array::BooleanArray::from(flags)),
        ],
    )
    .expect("batch");
    let rows = batch.num_rows();
    let chunk = rows.div_ceil(partitions).max(1);
    let parts: Vec<Vec<RecordBatch>> = (0..partitions)
        .map(|p| {
            let start = (p * chunk).min(rows);
            let len = chunk.min(rows - start);
            // Several small batches per partition, so accumulators see many updates.
            (0..len)
                .step_by(37)
                .map(|o| batch.slice(start + o, 37.min(len - o)))
                .collect()
        })
        .collect();
    MemTable::try_new(schema, parts).expect("memtable")
}

// ---------------------------------------------------------------------------------------
// Hashing (vectors computed independently with Python's hashlib.blake2b)

#[tokio::test]
async fn stable_hash_matches_python_blake2b() {
    let ctx = ctx();
    let cases: &[(&str, &str)] = &[
        // blake2b(b'a\x1fb', digest_size=8) read little-endian signed
        ("SELECT stable_hash64('a', 'b')", "1212841174890269944"),
        ("SELECT stable_hash64('a')", "3405396810240292928"),
        ("SELECT stable_hash64('')", "-5426141060434712860"),
        // b'\x00\x1fx': a NULL part is the byte 0x00
        ("SELECT stable_hash64(NULL, 'x')", "-1096691098371925808"),
        // b'1\x1ftrue\x1f\x00\x1f1.5'
        ("SELECT stable_hash64(1, true, NULL, 1.5)", "-2484228271043978441"),
        // b'-42\x1f0.1\x1ffalse'
        ("SELECT stable_hash64(-42, 0.1, false)", "8017995131561238064"),
        // b'\x1f\x00': empty string then NULL
        ("SELECT stable_hash64('', NULL)", "127386525684827209"),
        ("SELECT stable_hash64(NULL, NULL, 'z')", "1812239063744309105"),
        // b'2024-01-02\x1f2024-01-02T03:04:05.5\x1f00ff'
        (
            "SELECT stable_hash64(DATE '2024-01-02', arrow_cast(TIMESTAMP '2024-01-02 03:04:05.5', 'Timestamp(Millisecond, None)'), X'00ff')",
            "-602294415995865171",
        ),
        ("SELECT stable_hash64(arrow_cast(TIMESTAMP '2024-01-02 03:04:05.5', 'Timestamp(Nanosecond, None)'), X'00ff') = stable_hash64(arrow_cast(TIMESTAMP '2024-01-02 03:04:05.5', 'Timestamp(Microsecond, None)'), X'00FF')", "true"),
        // b'2024-01-02T03:04:05': naive timestamps have no suffix
        ("SELECT stable_hash64(TIMESTAMP '2024-01-02 03:04:05')", "-2750930753698580983"),
        // b'2024-01-02T03:04:05Z': zoned timestamps hash their UTC instant with a Z
        (
            "SELECT stable_hash64(arrow_cast(TIMESTAMP '2024-01-02 05:04:05+02:00', 'Timestamp(Second, Some(\"UTC\"))'))",
            "-2170759609355171716",
        ),
        ("SELECT stable_hash128('a', 'b')", "065ab5741cdfad44687cf119c1eb4ec9"),
        ("SELECT stable_hash128('a')", "27c35e6e9373877f29e562464e46497e"),
        ("SELECT stable_hash128('é😀')", "ac4269699f14f46e17cc1d71928bcce0"),
        ("SELECT stable_hash128(DATE '2024-01-02', arrow_cast(TIMESTAMP '2024-01-02 03:04:05.5', 'Timestamp(Millisecond, None)'), X'00ff')", "a8eaa1020b8e8f42f3749e14f77c4e49"),
        ("SELECT stable_id('node', 'src/lib.rs', 10, 20, 'function')", "node:549c3f364b4633bcf195bd87ab98b91d"),
        ("SELECT span_id('node', 'src/lib.rs', 10, 20, 'function')", "node:549c3f364b4633bcf195bd87ab98b91d"),
        ("SELECT stable_hash64(NULL)", "NULL"),
        ("SELECT stable_hash128(NULL, NULL)", "NULL"),
        ("SELECT stable_id('p', NULL)", "NULL"),
        ("SELECT stable_id(NULL, 'a')", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, *expected, "{sql}");
    }
}

#[tokio::test]
async fn stable_hash_is_layout_independent() {
    let ctx = ctx();
    let same = [
        "SELECT stable_hash64(arrow_cast(7, 'Int8')) = stable_hash64(7)",
        "SELECT stable_hash64(arrow_cast(7, 'UInt16')) = stable_hash64(7)",
        "SELECT stable_hash64('7') = stable_hash64(7)",
        "SELECT stable_hash64(arrow_cast('é', 'Utf8View')) = stable_hash64('é')",
        "SELECT stable_hash64(arrow_cast('é', 'LargeUtf8')) = stable_hash64('é')",
        "SELECT stable_hash64(arrow_cast('é', 'Dictionary(Int32, Utf8)')) = stable_hash64('é')",
        "SELECT stable_hash64(arrow_cast(1.5, 'Float32')) = stable_hash64(1.5)",
        "SELECT stable_hash128(arrow_cast(X'0aff', 'LargeBinary')) = stable_hash128('0aff')",
    ];
    for sql in same {
        assert_eq!(cell(&ctx, sql).await, "true", "{sql}");
    }
    // Literal and column inputs hash alike (scalar fast path vs array path).
    let rows = rows(
        &ctx,
        "SELECT stable_hash64(s, n) = stable_hash64('é😀', 3), stable_id('p', s, n) = stable_id('p', 'é😀', 3) \
         FROM (VALUES ('é😀', 3), ('é😀', 3)) AS t(s, n)",
    )
    .await;
    assert_eq!(rows, vec![vec!["true", "true"], vec!["true", "true"]]);
}

#[tokio::test]
async fn stable_hash_rejects_bad_arity_and_types_at_plan_time() {
    let ctx = ctx();
    assert_plan_error(&plan_error(&ctx, "SELECT stable_hash64()").await, "stable_hash64");
    let seventeen = (0..17).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    assert_plan_error(&plan_error(&ctx, &format!("SELECT stable_hash64({seventeen})")).await, "stable_hash64");
    let sixteen = (0..16).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    assert_ne!(cell(&ctx, &format!("SELECT stable_hash64({sixteen})")).await, "NULL");
    assert_plan_error(&plan_error(&ctx, "SELECT stable_hash64([1, 2])").await, "stable_hash64");
    assert_plan_error(&plan_error(&ctx, "SELECT stable_hash128(named_struct('a', 1))").await, "stable_hash128");
    assert_plan_error(&plan_error(&ctx, "SELECT stable_id(1, 'a')").await, "stable_id");
    assert_plan_error(&plan_error(&ctx, "SELECT stable_id('p')").await, "stable_id");
    assert_plan_error(&plan_error(&ctx, "SELECT span_id('p', 'f', 'x', 2)").await, "span_id");
}

// ---------------------------------------------------------------------------------------
// Determinism across batch sizes and partitionings

async fn snapshot(batch_size: usize, partitions: usize, sql: &str) -> Vec<Vec<String>> {
    let ctx = ctx_with(batch_size, partitions);
    ctx.register_table("t", Arc::new(sample_table(1000, partitions.max(3)))).expect("register");
    rows(&ctx, sql).await
}

#[tokio::test]
async fn results_do_not_depend_on_batch_size_or_partitions() {
    let queries = [
        "SELECT id, stable_hash64(s, n, flag), stable_hash128(s), stable_id('row', id, s), \
                utf8_normalize(s, 'NFKC', true, true), utf8_null_if_blank(s), qname_normalize(s, 'pkg'), \
                col_to_byte(s, n % 7, 'UTF16') \
         FROM t WHERE s IS NULL OR s NOT LIKE '😀%' ORDER BY id",
        "SELECT g, count_if(flag), arg_max(s, n), arg_min(s, n), any_value_det(s, n), \
                asof_select(s, n, 50), collect_set(n % 10) \
         FROM t GROUP BY g ORDER BY g",
        "SELECT count_if(flag), arg_max(id, n), arg_min(id, n), collect_set(g) FROM t",
        "SELECT id, best_in_partition(n, id) OVER (PARTITION BY g) AS best FROM t ORDER BY id",
        "SELECT id, count_if(flag) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW), \
                arg_max(s, n) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 FOLLOWING), \
                collect_set(n % 3) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), \
                arg_min(s, n) OVER (PARTITION BY g ORDER BY id) \
         FROM t ORDER BY id",
    ];
    for sql in queries {
        let small = snapshot(1, 1, sql).await;
        let large = snapshot(8192, 4, sql).await;
        assert!(!small.is_empty(), "{sql} returned nothing");
        assert_eq!(small, large, "{sql} differs between batch_size 1/1 partition and 8192/4 partitions");
    }
}

#[tokio::test]
async fn grouped_aggregates_match_a_naive_reference() {
    let ctx = ctx_with(64, 4);
    ctx.register_table("t", Arc::new(sample_table(500, 4))).expect("register");
    let ours = rows(&ctx, "SELECT g, count_if(flag) FROM t GROUP BY g ORDER BY g").await;
    let reference = rows(&ctx, "SELECT g, SUM(CASE WHEN flag THEN 1 ELSE 0 END) FROM t GROUP BY g ORDER BY g").await;
    assert_eq!(ours, reference);
    let ours = rows(&ctx, "SELECT g, arg_max(s, n), arg_min(s, n), asof_select(s, n, 40) FROM t GROUP BY g ORDER BY g").await;
    let reference = rows(
        &ctx,
        "SELECT g, MAX(CASE WHEN rmax = 1 THEN s END), MAX(CASE WHEN rmin = 1 THEN s END), MAX(CASE WHEN ras = 1 AND n <= 40 THEN s END) \
         FROM (SELECT g, s, n, \
                      ROW_NUMBER() OVER (PARTITION BY g ORDER BY n DESC, s ASC) AS rmax, \
                      ROW_NUMBER() OVER (PARTITION BY g ORDER BY n ASC, s ASC) AS rmin, \
                      ROW_NUMBER() OVER (PARTITION BY g ORDER BY CASE WHEN n <= 40 THEN 0 ELSE 1 END, n DESC, s ASC) AS ras \
               FROM t WHERE s IS NOT NULL AND n IS NOT NULL) \
         GROUP BY g ORDER BY g",
    )
    .await;
    assert_eq!(ours, reference);
}

#[tokio::test]
async fn skipped_partial_aggregation_states_merge_like_updates() {
    // Forces the partial aggregate to give up early and ship per-row states
    // (GroupsAccumulator::convert_to_state), which must merge to the same answer.
    let eager_config = SessionConfig::new()
        .with_batch_size(256)
        .with_target_partitions(4)
        .set_usize("datafusion.execution.skip_partial_aggregation_probe_rows_threshold", 10)
        .set_str("datafusion.execution.skip_partial_aggregation_probe_ratio_threshold", "0.01");
    let eager = SessionContext::new_with_config(eager_config);
    register(&eager);
    let normal = ctx_with(8192, 1);
    for ctx in [&eager, &normal] {
        ctx.register_table("t", Arc::new(sample_table(3000, 4))).expect("register");
    }
    let sql = "SELECT id % 1500 AS k, count_if(flag), arg_max(s, n), arg_min(s, n), any_value_det(s, n), \
                      asof_select(s, n, 50), collect_set(n % 4) \
               FROM t GROUP BY id % 1500 ORDER BY k";
    assert_eq!(rows(&eager, sql).await, rows(&normal, sql).await);
    let analyzed = rows(&eager, &format!("EXPLAIN ANALYZE {sql}")).await;
    let text = format!("{analyzed:?}");
    assert!(
        text.contains("skipped_aggregation_rows=") && !text.contains("skipped_aggregation_rows=0,"),
        "partial aggregation was not skipped: {text}"
    );
}

#[tokio::test]
async fn view_and_large_string_columns() {
    let ctx = ctx();
    ctx.register_table("t", Arc::new(sample_table(200, 2))).expect("register");
    let sql = |cast: &str| {
        format!(
            "SELECT id, utf8_normalize(arrow_cast(s, '{cast}'), 'NFKC', true, true), col_to_byte(arrow_cast(s, '{cast}'), 1, 'UTF32'), \
                    stable_hash64(arrow_cast(s, '{cast}')), utf8_null_if_blank(arrow_cast(s, '{cast}')), \
                    qname_normalize(arrow_cast(s, '{cast}'), arrow_cast('m', '{cast}')) \
             FROM t ORDER BY id"
        )
    };
    let plain = rows(&ctx, &sql("Utf8")).await;
    assert_eq!(rows(&ctx, &sql("Utf8View")).await, plain);
    assert_eq!(rows(&ctx, &sql("LargeUtf8")).await, plain);
}

// ---------------------------------------------------------------------------------------
// Spans

#[tokio::test]
async fn span_make_uses_arguments_then_configuration() {
    let ctx = ctx();
    assert_eq!(
        cell(&ctx, "SELECT span_make(10, 20)").await,
        "{bstart: 10, bend: 20, line_base: 0, col_unit: BYTE, end_exclusive: true}"
    );
    assert_eq!(
        cell(&ctx, "SELECT span_make(10, 20, 1, 'utf16', false)").await,
        "{bstart: 10, bend: 20, line_base: 1, col_unit: UTF16, end_exclusive: false}"
    );
    assert_eq!(cell(&ctx, "SELECT span_make(NULL, 20)").await, "NULL");
    let configured = ctx_with_settings(&[("span.line_base", "1"), ("span.col_unit", "UTF32"), ("span.end_exclusive", "false")]);
    assert_eq!(
        cell(&configured, "SELECT span_make(3, 4)").await,
        "{bstart: 3, bend: 4, line_base: 1, col_unit: UTF32, end_exclusive: false}"
    );
    assert_eq!(
        cell(&configured, "SELECT span_make(3, 4, 0)").await,
        "{bstart: 3, bend: 4, line_base: 0, col_unit: UTF32, end_exclusive: false}"
    );
    // Inclusive spans may be empty (bend = bstart - 1); exclusive ones may not go backwards.
    assert_eq!(cell(&ctx, "SELECT span_len(span_make(5, 4, 0, 'BYTE', false))").await, "0");
    assert_invalid_argument(&run_error(&ctx, "SELECT span_make(5, 4)").await, &["span_make", "bend precedes bstart"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT span_make(-1, 4)").await, &["bstart must be >= 0"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT span_make(1, 4, 2)").await, &["line_base"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT span_make(1, 4, 0, 'CHARS')").await, &["BYTE, UTF16, UTF32"]);
    assert_plan_error(&plan_error(&ctx, "SELECT span_make('a', 4)").await, "span_make");
    assert_plan_error(&plan_error(&ctx, "SELECT span_make(1)").await, "span_make");
}

#[tokio::test]
async fn span_predicates_respect_inclusive_ends() {
    let ctx = ctx();
    let cases = [
        ("SELECT span_len(span_make(10, 20))", "10"),
        ("SELECT span_len(span_make(10, 20, 0, 'BYTE', false))", "11"),
        ("SELECT span_overlaps(span_make(0, 10), span_make(10, 20))", "false"),
        ("SELECT span_overlaps(span_make(0, 10, 0, 'BYTE', false), span_make(10, 20))", "true"),
        ("SELECT span_overlaps(span_make(0, 10), span_make(9, 20))", "true"),
        ("SELECT span_overlaps(span_make(5, 5), span_make(0, 10))", "false"),
        ("SELECT span_contains(span_make(0, 10), span_make(0, 10))", "true"),
        ("SELECT span_contains(span_make(0, 9, 0, 'BYTE', false), span_make(0, 10))", "true"),
        ("SELECT span_contains(span_make(0, 9), span_make(0, 10))", "false"),
        ("SELECT span_contains(span_make(0, 10), span_make(10, 10))", "true"),
        ("SELECT span_len(CASE WHEN false THEN span_make(1, 2) END)", "NULL"),
        ("SELECT span_contains(span_make(0, 10), named_struct('bstart', 2, 'bend', 3))", "true"),
        ("SELECT span_overlaps(span_make(0, 10), span_make(NULL, 3))", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    assert_plan_error(&plan_error(&ctx, "SELECT span_len(1)").await, "span_len");
    assert_plan_error(&plan_error(&ctx, "SELECT span_overlaps(span_make(1, 2))").await, "span_overlaps");
    assert_plan_error(&plan_error(&ctx, "SELECT span_contains(named_struct('a', 1), span_make(1, 2))").await, "span_contains");
}

// ---------------------------------------------------------------------------------------
// Positions

#[tokio::test]
async fn col_to_byte_counts_units() {
    let ctx = ctx();
    let cases = [
        ("SELECT col_to_byte('abc', 2, 'BYTE')", "2"),
        ("SELECT col_to_byte('abc', 2, 'utf16')", "2"),
        ("SELECT col_to_byte('abc', 99, 'UTF32')", "3"),
        // '😀' is 4 UTF-8 bytes, 2 UTF-16 units, 1 scalar value.
        ("SELECT col_to_byte('a😀b', 1, 'UTF16')", "1"),
        ("SELECT col_to_byte('a😀b', 3, 'UTF16')", "5"),
        ("SELECT col_to_byte('a😀b', 4, 'UTF16')", "6"),
        ("SELECT col_to_byte('a😀b', 2, 'UTF32')", "5"),
        ("SELECT col_to_byte('a😀b', 5, 'BYTE')", "5"),
        ("SELECT col_to_byte('a😀b', 9, 'UTF16')", "6"),
        // 'e' + U+0301 (combining acute, 2 bytes) is two scalar values.
        ("SELECT col_to_byte('e\u{301}x', 1, 'UTF32')", "1"),
        ("SELECT col_to_byte('e\u{301}x', 2, 'UTF32')", "3"),
        ("SELECT col_to_byte('e\u{301}x', 2, 'UTF16')", "3"),
        ("SELECT col_to_byte('', 0, 'UTF16')", "0"),
        ("SELECT col_to_byte(NULL, 1, 'UTF16')", "NULL"),
        ("SELECT col_to_byte('a', NULL, 'UTF16')", "NULL"),
        ("SELECT col_to_byte('a', 1, NULL)", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    let inside_pair = run_error(&ctx, "SELECT col_to_byte('a😀b', 2, 'UTF16')").await;
    assert_invalid_argument(&inside_pair, &["col_to_byte", "surrogate pair", "col=2", "UTF16", "a😀b"]);
    let inside_char = run_error(&ctx, "SELECT col_to_byte('a😀b', 2, 'BYTE')").await;
    assert_invalid_argument(&inside_char, &["multi-byte UTF-8", "col=2"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT col_to_byte('abc', -1, 'BYTE')").await, &["negative"]);
    let unit = run_error(&ctx, "SELECT col_to_byte('abc', 1, 'CHARS')").await;
    assert_invalid_argument(&unit, &["CHARS", "BYTE, UTF16, UTF32"]);
    // Per-row units (a column) are parsed per row.
    let per_row = rows(
        &ctx,
        "SELECT col_to_byte(line, col, unit) FROM (VALUES ('a😀b', 3, 'UTF16'), ('a😀b', 2, 'utf32'), ('a😀b', 5, 'Byte')) AS t(line, col, unit)",
    )
    .await;
    assert_eq!(per_row, vec![vec!["5"], vec!["5"], vec!["5"]]);
    assert_plan_error(&plan_error(&ctx, "SELECT col_to_byte(1, 'a', 'UTF16')").await, "col_to_byte");
    assert_plan_error(&plan_error(&ctx, "SELECT col_to_byte('a', 1)").await, "col_to_byte");
}

#[tokio::test]
async fn line_col_and_byte_offsets_round_trip() {
    let ctx = ctx();
    let text = "ab\\r\\nc😀d\\re\\n\\nf";
    // E-string so the escapes become real line terminators.
    let cases = [
        (format!("SELECT byte_to_line_col(E'{text}', 0, 'UTF16')"), "{line: 0, col: 0}"),
        (format!("SELECT byte_to_line_col(E'{text}', 4, 'UTF16')"), "{line: 1, col: 0}"),
        (format!("SELECT byte_to_line_col(E'{text}', 9, 'UTF16')"), "{line: 1, col: 3}"),
        (format!("SELECT byte_to_line_col(E'{text}', 9, 'UTF32')"), "{line: 1, col: 2}"),
        (format!("SELECT byte_to_line_col(E'{text}', 9, 'BYTE')"), "{line: 1, col: 5}"),
        (format!("SELECT byte_to_line_col(E'{text}', 11, 'UTF16')"), "{line: 2, col: 0}"),
        (format!("SELECT byte_to_line_col(E'{text}', 13, 'UTF16')"), "{line: 3, col: 0}"),
        (format!("SELECT byte_to_line_col(E'{text}', 15, 'UTF16')"), "{line: 4, col: 1}"),
        (format!("SELECT line_col_to_byte(E'{text}', 1, 3, 'UTF16')"), "9"),
        (format!("SELECT line_col_to_byte(E'{text}', 1, 2, 'UTF32')"), "9"),
        (format!("SELECT line_col_to_byte(E'{text}', 0, 99, 'UTF16')"), "2"),
        (format!("SELECT line_col_to_byte(E'{text}', 4, 1, 'BYTE')"), "15"),
        ("SELECT byte_to_line_col(NULL, 1, 'BYTE')".to_string(), "NULL"),
        ("SELECT line_col_to_byte('a', NULL, 0, 'BYTE')".to_string(), "NULL"),
    ];
    for (sql, expected) in &cases {
        assert_eq!(cell(&ctx, sql).await, *expected, "{sql}");
    }
    // Every character boundary round-trips in every unit.
    for unit in ["BYTE", "UTF16", "UTF32"] {
        let sql = format!(
            "SELECT o, line_col_to_byte(E'{text}', byte_to_line_col(E'{text}', o, '{unit}')['line'], byte_to_line_col(E'{text}', o, '{unit}')['col'], '{unit}') \
             FROM (VALUES (0), (1), (2), (4), (5), (9), (10), (11), (12), (13), (14), (15)) AS t(o) ORDER BY o"
        );
        for row in rows(&ctx, &sql).await {
            assert_eq!(row[0], row[1], "{unit}: {row:?}");
        }
    }
    assert_invalid_argument(&run_error(&ctx, "SELECT byte_to_line_col('a😀', 2, 'UTF16')").await, &["multi-byte", "byte_offset=2"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT byte_to_line_col('ab', 3, 'UTF16')").await, &["past the end"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT line_col_to_byte('ab', 1, 0, 'UTF16')").await, &["past the last line", "line=1"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT line_col_to_byte('😀', 0, 1, 'UTF16')").await, &["surrogate"]);
}

#[tokio::test]
async fn canonicalize_byte_span_and_alignment() {
    let ctx = ctx();
    let cases = [
        ("SELECT canonicalize_byte_span(0, 'a😀b', 1, 0, 'a😀b', 3, 'UTF16')", "{bstart: 1, bend: 5}"),
        ("SELECT canonicalize_byte_span(100, 'a😀b', 2, 200, 'xy', 99, 'UTF32')", "{bstart: 105, bend: 202}"),
        ("SELECT canonicalize_byte_span(NULL, 'a', 0, 0, 'a', 1, 'BYTE')", "NULL"),
        ("SELECT interval_align_score(0, 10, 0, 10)", "1.0"),
        ("SELECT interval_align_score(0, 10, 10, 20)", "0.0"),
        ("SELECT interval_align_score(0, 10, 5, 15)", "0.3333333333333333"),
        ("SELECT interval_align_score(0, 10, 2, 4)", "0.2"),
        ("SELECT interval_align_score(3, 3, 3, 3)", "1.0"),
        ("SELECT interval_align_score(3, 3, 0, 10)", "0.0"),
        ("SELECT interval_align_score(NULL, 3, 0, 10)", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    assert_invalid_argument(&run_error(&ctx, "SELECT canonicalize_byte_span(0, 'ab', 2, 0, 'ab', 1, 'BYTE')").await, &["precedes"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT canonicalize_byte_span(0, '😀', 1, 0, '😀', 2, 'UTF16')").await, &["surrogate"]);
    assert_invalid_argument(&run_error(&ctx, "SELECT interval_align_score(5, 4, 0, 1)").await, &["precedes"]);
    assert_plan_error(&plan_error(&ctx, "SELECT interval_align_score(0.5, 1, 2, 3)").await, "interval_align_score");
}

// ---------------------------------------------------------------------------------------
// Text

#[tokio::test]
async fn utf8_normalize_matches_python_unicodedata() {
    let ctx = ctx();
    // Expected values from Python: unicodedata.normalize(form, unicodedata.normalize(form, s).casefold()).
    let cases = [
        ("SELECT utf8_normalize('  Stra\u{df}e\u{2003} ｘ ', 'NFKC', true, false)", "  strasse  x "),
        ("SELECT utf8_normalize('  Stra\u{df}e\u{2003} ｘ ', 'NFKC', true, true)", "strasse x"),
        ("SELECT utf8_normalize('\u{fb01} \u{1c4}', 'NFKC', true)", "fi d\u{17e}"),
        ("SELECT utf8_normalize('\u{fb01} \u{1c4}', 'NFC', true)", "fi \u{1c6}"),
        ("SELECT utf8_normalize('\u{fb01} \u{1c4}', 'nfkc')", "fi D\u{17d}"),
        ("SELECT utf8_normalize('e\u{301}', 'NFC')", "\u{e9}"),
        ("SELECT utf8_normalize('\u{e9}', 'NFD')", "e\u{301}"),
        ("SELECT utf8_normalize('\u{3a3}\u{391}\u{3a3}', 'NFC', true)", "\u{3c3}\u{3b1}\u{3c3}"),
        ("SELECT utf8_normalize('\u{130}', 'NFC', true)", "i\u{307}"),
        ("SELECT utf8_normalize('\u{1fbc}', 'NFC', true)", "\u{3b1}\u{3b9}"),
        ("SELECT utf8_normalize('ABC def', 'NFC', true)", "abc def"),
        ("SELECT utf8_normalize('a\t\n b', 'NFC', false, true)", "a b"),
        ("SELECT utf8_normalize('', 'NFC', true, true)", ""),
        ("SELECT utf8_normalize('😀', 'NFKD', true, true)", "😀"),
        // Default form: codeanatomy.normalize.form = NFKC.
        ("SELECT utf8_normalize('\u{fb01}')", "fi"),
        ("SELECT utf8_normalize(NULL)", "NULL"),
        ("SELECT utf8_normalize('a', NULL)", "NULL"),
        ("SELECT utf8_normalize('a', 'NFC', NULL)", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    let nfd = ctx_with_settings(&[("normalize.form", "NFD")]);
    assert_eq!(cell(&nfd, "SELECT utf8_normalize('\u{e9}') = 'e\u{301}'").await, "true");
    assert_invalid_argument(&run_error(&ctx, "SELECT utf8_normalize('a', 'NFX')").await, &["NFX", "NFC, NFD, NFKC, NFKD"]);
    assert_plan_error(&plan_error(&ctx, "SELECT utf8_normalize(1)").await, "utf8_normalize");
    assert_plan_error(&plan_error(&ctx, "SELECT utf8_normalize('a', 'NFC', 'yes')").await, "utf8_normalize");
}

#[tokio::test]
async fn utf8_null_if_blank_keeps_layout() {
    let ctx = ctx();
    let cases = [
        ("SELECT utf8_null_if_blank('')", "NULL"),
        ("SELECT utf8_null_if_blank(' \t\u{3000}\n')", "NULL"),
        ("SELECT utf8_null_if_blank(' x ')", " x "),
        ("SELECT utf8_null_if_blank(NULL)", "NULL"),
        ("SELECT arrow_typeof(utf8_null_if_blank(arrow_cast('a', 'Utf8View')))", "Utf8View"),
        ("SELECT utf8_null_if_blank(arrow_cast(' ', 'LargeUtf8'))", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    assert_plan_error(&plan_error(&ctx, "SELECT utf8_null_if_blank(1)").await, "utf8_null_if_blank");
}

#[tokio::test]
async fn qname_normalize_per_language() {
    let ctx = ctx();
    let cases = [
        ("SELECT qname_normalize('Parser.parse', 'pkg/parser/__init__.py')", "pkg.parser.Parser.parse"),
        ("SELECT qname_normalize(' pkg . mod . f ', 'pkg.mod')", "pkg.mod.f"),
        ("SELECT qname_normalize('MyClass', NULL)", "MyClass"),
        ("SELECT qname_normalize('Vec :: new', 'alloc::vec', 'Rust')", "alloc.vec.Vec.new"),
        ("SELECT qname_normalize('::std::string', NULL, 'cpp')", "std.string"),
        ("SELECT qname_normalize('Outer$Inner', 'java/util', 'java')", "java.util.Outer.Inner"),
        ("SELECT qname_normalize('Foo#bar', 'src/foo.ts', 'typescript')", "src.foo.Foo.bar"),
        ("SELECT qname_normalize('Users', 'DBO', 'sql')", "dbo.users"),
        ("SELECT qname_normalize('naïve', 'mödule', 'python')", "mödule.naïve"),
        ("SELECT qname_normalize(NULL, 'm')", "NULL"),
        ("SELECT qname_normalize('f', 'm', NULL)", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    assert_invalid_argument(&run_error(&ctx, "SELECT qname_normalize('f', 'm', 'cobol')").await, &["cobol", "python"]);
    assert_plan_error(&plan_error(&ctx, "SELECT qname_normalize(1)").await, "qname_normalize");
}

// ---------------------------------------------------------------------------------------
// Collections

#[tokio::test]
async fn map_functions() {
    let ctx = ctx();
    let cases = [
        ("SELECT map_get_default(MAP {'a': 1, 'b': 2}, 'b', 0)", "2"),
        ("SELECT map_get_default(MAP {'a': 1, 'b': 2}, 'z', 0)", "0"),
        ("SELECT map_get_default(MAP {'a': 1, 'b': NULL}, 'b', 0)", "NULL"),
        ("SELECT map_get_default(CASE WHEN false THEN MAP {'a': 1} END, 'b', 7)", "7"),
        ("SELECT map_get_default(MAP {'a': 1}, NULL, 7)", "7"),
        ("SELECT map_get_default(MAP {1: 'x', 2: 'y'}, arrow_cast(2, 'Int8'), 'none')", "y"),
        ("SELECT map_normalize(MAP {' Lang ': 'python', 'KIND': 'module'})", "{kind: module, lang: python}"),
        ("SELECT map_normalize(MAP {'b': 1, 'A': 2}, 'upper', false)", "{B: 1, A: 2}"),
        ("SELECT map_normalize(MAP {'Stra\u{df}e': 1}, 'casefold')", "{strasse: 1}"),
        ("SELECT map_normalize(MAP {'X': 1}, 'preserve')", "{X: 1}"),
        ("SELECT map_normalize(CASE WHEN false THEN MAP {'a': 1} END)", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    // Per-row maps, keys and defaults.
    let per_row = rows(
        &ctx,
        "SELECT map_get_default(m, k, d) FROM (SELECT MAP {'a': 1, 'b': 2} AS m, 'a' AS k, 0 AS d UNION ALL SELECT MAP {'c': 3}, 'a', -1) ORDER BY 1",
    )
    .await;
    assert_eq!(per_row, vec![vec!["-1"], vec!["1"]]);
    let collision = run_error(&ctx, "SELECT map_normalize(MAP {'Lang': 1, ' lang': 2})").await;
    assert_invalid_argument(&collision, &["map_normalize", "\"Lang\"", "\" lang\"", "\"lang\""]);
    assert_invalid_argument(&run_error(&ctx, "SELECT map_normalize(MAP {'a': 1}, 'title')").await, &["lower, upper, casefold, preserve"]);
    assert_plan_error(&plan_error(&ctx, "SELECT map_get_default(MAP {'a': 1}, 1, 0)").await, "map_get_default");
    assert_plan_error(&plan_error(&ctx, "SELECT map_get_default([1], 1, 0)").await, "map_get_default");
    assert_plan_error(&plan_error(&ctx, "SELECT map_normalize(MAP {1: 1})").await, "map_normalize");
}

#[tokio::test]
async fn list_and_struct_functions() {
    let ctx = ctx();
    let cases = [
        ("SELECT list_drop_nulls([1, NULL, 2, NULL])", "[1, 2]"),
        ("SELECT list_drop_nulls([NULL, NULL]::BIGINT[])", "[]"),
        ("SELECT list_drop_nulls(NULL::BIGINT[])", "NULL"),
        ("SELECT arrow_typeof(list_drop_nulls(arrow_cast([1, NULL], 'LargeList(Int32)')))", "LargeList(Int32)"),
        ("SELECT list_drop_nulls(['😀', NULL, ''])", "[😀, ]"),
        ("SELECT list_unique_sorted(['b', 'a', NULL, 'b', 'é'])", "[a, b, é]"),
        ("SELECT list_unique_sorted([3, 1, 3, 2])", "[1, 2, 3]"),
        ("SELECT list_unique_sorted([])", "[]"),
        ("SELECT list_unique_sorted(NULL::BIGINT[])", "NULL"),
        ("SELECT list_unique_sorted([[2], [1], [2]])", "[[1], [2]]"),
        ("SELECT struct_pick(named_struct('a', 1, 'b', 'x', 'c', true), 'c', 'a')", "{c: true, a: 1}"),
        ("SELECT struct_pick(CASE WHEN false THEN named_struct('a', 1, 'b', 2) END, 'b')", "NULL"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    let per_row = rows(
        &ctx,
        "SELECT struct_pick(s, 'b') FROM (VALUES (named_struct('a', 1, 'b', 2)), (named_struct('a', 3, 'b', 4))) AS t(s)",
    )
    .await;
    assert_eq!(per_row, vec![vec!["{b: 2}"], vec!["{b: 4}"]]);
    let unknown = plan_error(&ctx, "SELECT struct_pick(named_struct('a', 1), 'z')").await;
    assert!(unknown.contains("[E0006 plan]") && unknown.contains("\"z\"") && unknown.contains("fields are: a"), "{unknown}");
    let twice = plan_error(&ctx, "SELECT struct_pick(named_struct('a', 1), 'a', 'a')").await;
    assert!(twice.contains("picked twice"), "{twice}");
    assert_plan_error(&plan_error(&ctx, "SELECT struct_pick(1, 'a')").await, "struct_pick");
    assert_plan_error(&plan_error(&ctx, "SELECT list_drop_nulls(1)").await, "list_drop_nulls");
    assert_plan_error(&plan_error(&ctx, "SELECT list_unique_sorted('abc')").await, "list_unique_sorted");
}

#[tokio::test]
async fn cdf_helpers() {
    let ctx = ctx();
    let got = rows(
        &ctx,
        "SELECT c, cdf_change_rank(c), cdf_is_upsert(c), cdf_is_delete(c) \
         FROM (VALUES ('insert'), ('update_preimage'), ('UPDATE_POSTIMAGE'), ('delete'), (NULL)) AS t(c) \
         ORDER BY cdf_change_rank(c) NULLS LAST",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec!["update_preimage", "1", "false", "false"],
            vec!["delete", "2", "false", "true"],
            vec!["insert", "3", "true", "false"],
            vec!["UPDATE_POSTIMAGE", "4", "true", "false"],
            vec!["NULL", "NULL", "NULL", "NULL"],
        ]
    );
    assert_invalid_argument(&run_error(&ctx, "SELECT cdf_change_rank('upsert')").await, &["upsert", "insert, update_preimage"]);
    assert_plan_error(&plan_error(&ctx, "SELECT cdf_is_delete(1)").await, "cdf_is_delete");
}

// ---------------------------------------------------------------------------------------
// Aggregates and window

#[tokio::test]
async fn aggregates_semantics() {
    let ctx = ctx();
    let cases = [
        ("SELECT count_if(x > 1) FROM (VALUES (1), (2), (3), (NULL)) AS t(x)", "2"),
        ("SELECT count_if(x > 1) FROM (VALUES (1)) AS t(x) WHERE x > 5", "0"),
        ("SELECT collect_set(x) FROM (VALUES (3), (1), (3), (NULL), (2)) AS t(x)", "[1, 2, 3]"),
        ("SELECT collect_set(x) FROM (VALUES ('b'), ('é'), ('a'), ('b')) AS t(x)", "[a, b, é]"),
        ("SELECT collect_set(x) FROM (VALUES (1)) AS t(x) WHERE x > 5", "[]"),
        ("SELECT arg_max(name, score) FROM (VALUES ('a', 1), ('c', 3), ('b', 3)) AS t(name, score)", "b"),
        ("SELECT arg_min(name, score) FROM (VALUES ('a', 1), ('c', 3), ('0', 1)) AS t(name, score)", "0"),
        ("SELECT arg_max(name, score) FROM (VALUES ('a', NULL), (NULL, 3), ('b', 2)) AS t(name, score)", "b"),
        ("SELECT arg_max(name, score) FROM (VALUES (NULL, 3)) AS t(name, score)", "NULL"),
        ("SELECT arg_max(name, score) FROM (VALUES ('x', 1)) AS t(name, score) WHERE score > 5", "NULL"),
        ("SELECT arg_max(s, d) FROM (VALUES ('old', DATE '2020-01-01'), ('new', DATE '2024-01-01')) AS t(s, d)", "new"),
        ("SELECT arg_max(named_struct('k', s), s) FROM (VALUES ('a'), ('😀'), ('b')) AS t(s)", "{k: 😀}"),
        ("SELECT any_value_det(p, id) FROM (VALUES ('b.py', 20), ('a.py', 10), ('c.py', 10)) AS t(p, id)", "a.py"),
        ("SELECT asof_select(v, ts, 15) FROM (VALUES ('v1', 10), ('v2', 15), ('v3', 20)) AS t(v, ts)", "v2"),
        ("SELECT asof_select(v, ts, 14) FROM (VALUES ('v1', 10), ('v2', 15), ('v3', 20)) AS t(v, ts)", "v1"),
        ("SELECT asof_select(v, ts, 5) FROM (VALUES ('v1', 10), ('v2', 15)) AS t(v, ts)", "NULL"),
        ("SELECT asof_select(v, ts, '2024-06-01') FROM (VALUES ('a', TIMESTAMP '2024-01-01'), ('b', TIMESTAMP '2024-07-01')) AS t(v, ts)", "a"),
        ("SELECT asof_select(v, ts, 20) FROM (VALUES ('z', 20), ('y', 20), ('x', 10)) AS t(v, ts)", "y"),
    ];
    for (sql, expected) in cases {
        assert_eq!(cell(&ctx, sql).await, expected, "{sql}");
    }
    // Empty input without GROUP BY: one row.
    let empty = rows(
        &ctx,
        "SELECT count_if(b), collect_set(x), arg_max(x, x), asof_select(x, x, 1) FROM (VALUES (true, 1)) AS t(b, x) WHERE x > 1",
    )
    .await;
    assert_eq!(empty, vec![vec!["0", "[]", "NULL", "NULL"]]);
    // FILTER clause.
    assert_eq!(
        cell(&ctx, "SELECT arg_max(x, x) FILTER (WHERE x < 3) FROM (VALUES (1), (2), (3)) AS t(x)").await,
        "2"
    );
    assert_plan_error(&plan_error(&ctx, "SELECT count_if(1)").await, "count_if");
    assert_plan_error(&plan_error(&ctx, "SELECT arg_max(1)").await, "arg_max");
    assert_plan_error(&plan_error(&ctx, "SELECT asof_select(1, 2)").await, "asof_select");
    assert_plan_error(&plan_error(&ctx, "SELECT asof_select('a', 2, [1])").await, "asof_select");
    assert_plan_error(&plan_error(&ctx, "SELECT collect_set()").await, "collect_set");
}

#[tokio::test]
async fn sliding_window_frames_retract() {
    let ctx = ctx();
    let got = rows(
        &ctx,
        "SELECT x, \
                count_if(x % 2 = 0) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), \
                arg_max(s, x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), \
                arg_min(s, x) OVER (ORDER BY x ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING), \
                collect_set(s) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), \
                asof_select(s, x, 3) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
         FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')) AS t(x, s) ORDER BY x",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec!["1", "0", "a", "a", "[a]", "a"],
            vec!["2", "1", "b", "b", "[a, b]", "b"],
            vec!["3", "1", "c", "c", "[b, c]", "c"],
            vec!["4", "1", "d", "d", "[c, d]", "c"],
        ]
    );
}

#[tokio::test]
async fn best_in_partition_flags_one_row() {
    let ctx = ctx();
    let got = rows(
        &ctx,
        "SELECT g, id, best_in_partition(score, id) OVER (PARTITION BY g) \
         FROM (VALUES (1, 10, 0.5), (1, 12, 0.9), (1, 11, 0.9), (2, 20, NULL), (2, 21, NULL), (3, 30, 0.1)) AS t(g, id, score) \
         ORDER BY g, id",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec!["1", "10", "false"],
            vec!["1", "11", "true"],
            vec!["1", "12", "false"],
            vec!["2", "20", "true"],
            vec!["2", "21", "false"],
            vec!["3", "30", "true"],
        ]
    );
    assert_plan_error(&plan_error(&ctx, "SELECT best_in_partition(1) OVER ()").await, "best_in_partition");
}

// ---------------------------------------------------------------------------------------
// Registry

#[tokio::test]
async fn registry_lists_every_function_and_every_example_runs() {
    let ctx = ctx();
    let listed = rows(&ctx, "SELECT name, kind, signatures, return_type, volatility, description, example FROM codeanatomy_functions()").await;
    let expected_count = udf::scalar_udfs().len() + udaf::aggregate_udfs().len() + udwf::window_udfs().len();
    assert_eq!(listed.len(), expected_count);
    for row in &listed {
        let [name, kind, signatures, return_type, volatility, description, example] = row.as_slice() else {
            panic!("bad row {row:?}");
        };
        assert!(["scalar", "aggregate", "window"].contains(&kind.as_str()), "{row:?}");
        assert!(signatures.starts_with(&format!("{name}(")), "{row:?}");
        assert!(!return_type.is_empty() && return_type != "NULL", "{row:?}");
        assert!(["immutable", "stable", "volatile"].contains(&volatility.as_str()), "{row:?}");
        assert!(description.len() > 20, "{row:?}");
        assert!(example.contains(name.as_str()), "example of {name} does not call it: {example}");
        let result = batches(&ctx, example).await;
        let result = result.unwrap_or_else(|e| panic!("example of {name} failed: {example}\n{e}"));
        assert!(result.iter().map(|b| b.num_rows()).sum::<usize>() > 0, "example of {name} returned no rows");
    }
    let batch = registry::registry_batch().expect("registry batch");
    assert_eq!(batch.num_rows(), expected_count);
    let bad_call = plan_error(&ctx, "SELECT * FROM codeanatomy_functions(1)").await;
    assert!(bad_call.contains("codeanatomy_functions"), "{bad_call}");
}

#[tokio::test]
async fn no_name_collides_with_a_datafusion_builtin() {
    let state = SessionContext::new().state();
    let mut names = Vec::new();
    for f in udf::scalar_udfs() {
        names.push(f.name().to_string());
        names.extend(f.aliases().iter().cloned());
    }
    for f in udaf::aggregate_udfs() {
        names.push(f.name().to_string());
        names.extend(f.aliases().iter().cloned());
    }
    for f in udwf::window_udfs() {
        names.push(f.name().to_string());
        names.extend(f.aliases().iter().cloned());
    }
    names.push(registry::FUNCTION_NAME.to_string());
    for name in &names {
        assert!(!state.scalar_functions().contains_key(name), "{name} is a built-in scalar function");
        assert!(!state.aggregate_functions().contains_key(name), "{name} is a built-in aggregate function");
        assert!(!state.window_functions().contains_key(name), "{name} is a built-in window function");
        assert!(state.table_functions().get(name).is_none(), "{name} is a built-in table function");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate names in the pack");
}

#[tokio::test]
async fn empty_inputs_yield_empty_outputs() {
    let ctx = ctx();
    ctx.register_table("t", Arc::new(sample_table(0, 2))).expect("register");
    let got = rows(
        &ctx,
        "SELECT stable_hash64(s), utf8_normalize(s), col_to_byte(s, n, 'UTF16'), span_make(n, n) FROM t",
    )
    .await;
    assert!(got.is_empty());
    let grouped = rows(&ctx, "SELECT g, count_if(flag), arg_max(s, n), collect_set(s) FROM t GROUP BY g").await;
    assert!(grouped.is_empty());
}

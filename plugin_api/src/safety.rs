//! Panic containment for objects that cross as datafusion-ffi values.
//!
//! datafusion-ffi's `extern "C"` wrappers call the plugin's trait methods without catching
//! panics, and a panic unwinding out of an `extern "C"` function aborts the host process. So
//! before an object is exported, the plugin side wraps it in an adapter whose methods catch
//! panics and return them as DataFusion errors carrying [`ErrorCode::Panic`]. Methods that
//! cannot return an error (`size`, capability flags) fall back to a neutral value.

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use std::ops::Range;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::function::{AccumulatorArgs, PartitionEvaluatorArgs, StateFieldsArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::window_state::WindowAggState;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, PartitionEvaluator, WindowUDF, WindowUDFImpl,
};
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

use crate::error::{df_error, ErrorCode};
use crate::guard::panic_message;

/// Runs `f`, turning a panic into an error naming the object and the method.
pub fn contain<T>(object: &str, method: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::error!(target: "df_plugin", object, method, panic = %message, "plugin object panicked");
            Err(df_error(ErrorCode::Panic, format!("{object}: {method} panicked: {message}")))
        }
    }
}

/// Equality and hashing of a wrapper are those of the object it wraps.
macro_rules! eq_hash_by_inner {
    ($wrapper:ty) => {
        impl PartialEq for $wrapper {
            fn eq(&self, other: &Self) -> bool {
                self.inner == other.inner
            }
        }

        impl Eq for $wrapper {}

        impl Hash for $wrapper {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.inner.hash(state)
            }
        }
    };
}

/// A scalar function whose every call is panic-contained.
#[derive(Debug)]
pub struct PanicSafeScalarUdf {
    inner: Arc<ScalarUDF>,
}

impl PanicSafeScalarUdf {
    pub fn wrap(inner: Arc<ScalarUDF>) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(PanicSafeScalarUdf { inner }))
    }
}

eq_hash_by_inner!(PanicSafeScalarUdf);

impl ScalarUDFImpl for PanicSafeScalarUdf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        contain(self.name(), "return_type", || self.inner.return_type(arg_types))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        contain(self.name(), "return_field_from_args", || self.inner.return_field_from_args(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        contain(self.name(), "invoke", || self.inner.invoke_with_args(args))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        contain(self.name(), "coerce_types", || self.inner.coerce_types(arg_types))
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        contain(self.name(), "preserves_lex_ordering", || self.inner.preserves_lex_ordering(inputs))
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.placement(args)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        self.inner.inner().with_updated_config(config).map(|udf| ScalarUDF::new_from_impl(PanicSafeScalarUdf { inner: Arc::new(udf) }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Like [`contain`] for methods that cannot report an error: a panic yields `fallback`.
fn contain_or<T>(object: &str, method: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    contain(object, method, || Ok(f())).unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------------------
// Aggregate functions

/// An aggregate function whose planning calls and accumulators are panic-contained.
#[derive(Debug)]
pub struct PanicSafeAggregateUdf {
    inner: Arc<AggregateUDF>,
}

impl PanicSafeAggregateUdf {
    pub fn wrap(inner: Arc<AggregateUDF>) -> Arc<AggregateUDF> {
        Arc::new(AggregateUDF::new_from_impl(PanicSafeAggregateUdf { inner }))
    }
}

eq_hash_by_inner!(PanicSafeAggregateUdf);

impl AggregateUDFImpl for PanicSafeAggregateUdf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        contain(self.name(), "return_type", || self.inner.return_type(arg_types))
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        contain(self.name(), "return_field", || self.inner.return_field(arg_fields))
    }

    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = contain(self.name(), "accumulator", || self.inner.accumulator(args))?;
        Ok(Box::new(PanicSafeAccumulator { name: self.name().to_string(), inner: acc }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = contain(self.name(), "create_sliding_accumulator", || self.inner.create_sliding_accumulator(args))?;
        Ok(Box::new(PanicSafeAccumulator { name: self.name().to_string(), inner: acc }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        contain(self.name(), "state_fields", || self.inner.state_fields(args))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        contain_or(self.name(), "groups_accumulator_supported", false, || self.inner.groups_accumulator_supported(args))
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let acc = contain(self.name(), "create_groups_accumulator", || self.inner.create_groups_accumulator(args))?;
        Ok(Box::new(PanicSafeGroupsAccumulator { name: self.name().to_string(), inner: acc }))
    }

    fn with_beneficial_ordering(self: Arc<Self>, beneficial_ordering: bool) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let name = self.name().to_string();
        let updated = contain(&name, "with_beneficial_ordering", || {
            self.inner.as_ref().clone().with_beneficial_ordering(beneficial_ordering)
        })?;
        Ok(updated.map(|udf| Arc::new(PanicSafeAggregateUdf { inner: Arc::new(udf) }) as Arc<dyn AggregateUDFImpl>))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        contain(self.name(), "coerce_types", || self.inner.coerce_types(arg_types))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[derive(Debug)]
struct PanicSafeAccumulator {
    name: String,
    inner: Box<dyn Accumulator>,
}

impl Accumulator for PanicSafeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        contain(&self.name, "update_batch", || self.inner.update_batch(values))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        contain(&self.name, "evaluate", || self.inner.evaluate())
    }

    fn size(&self) -> usize {
        contain_or(&self.name, "size", 0, || self.inner.size())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        contain(&self.name, "state", || self.inner.state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        contain(&self.name, "merge_batch", || self.inner.merge_batch(states))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        contain(&self.name, "retract_batch", || self.inner.retract_batch(values))
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

struct PanicSafeGroupsAccumulator {
    name: String,
    inner: Box<dyn GroupsAccumulator>,
}

impl GroupsAccumulator for PanicSafeGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        contain(&self.name, "update_batch", || self.inner.update_batch(values, group_indices, opt_filter, total_num_groups))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        contain(&self.name, "evaluate", || self.inner.evaluate(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        contain(&self.name, "state", || self.inner.state(emit_to))
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        contain(&self.name, "merge_batch", || self.inner.merge_batch(values, group_indices, total_num_groups))
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        contain(&self.name, "convert_to_state", || self.inner.convert_to_state(values, opt_filter))
    }

    fn size(&self) -> usize {
        contain_or(&self.name, "size", 0, || self.inner.size())
    }
}

// ---------------------------------------------------------------------------------------------
// Window functions

/// A window function whose planning calls and evaluators are panic-contained.
#[derive(Debug)]
pub struct PanicSafeWindowUdf {
    inner: Arc<WindowUDF>,
}

impl PanicSafeWindowUdf {
    pub fn wrap(inner: Arc<WindowUDF>) -> Arc<WindowUDF> {
        Arc::new(WindowUDF::new_from_impl(PanicSafeWindowUdf { inner }))
    }
}

eq_hash_by_inner!(PanicSafeWindowUdf);

impl WindowUDFImpl for PanicSafeWindowUdf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn partition_evaluator(&self, args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        let inner = contain(self.name(), "partition_evaluator", || self.inner.partition_evaluator_factory(args))?;
        Ok(Box::new(PanicSafePartitionEvaluator { name: self.name().to_string(), inner }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        contain(self.name(), "field", || self.inner.field(field_args))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        contain(self.name(), "coerce_types", || self.inner.coerce_types(arg_types))
    }

    fn sort_options(&self) -> Option<SortOptions> {
        self.inner.sort_options()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[derive(Debug)]
struct PanicSafePartitionEvaluator {
    name: String,
    inner: Box<dyn PartitionEvaluator>,
}

impl PartitionEvaluator for PanicSafePartitionEvaluator {
    fn memoize(&mut self, state: &mut WindowAggState) -> Result<()> {
        contain(&self.name, "memoize", || self.inner.memoize(state))
    }

    fn get_range(&self, idx: usize, n_rows: usize) -> Result<Range<usize>> {
        contain(&self.name, "get_range", || self.inner.get_range(idx, n_rows))
    }

    fn is_causal(&self) -> bool {
        self.inner.is_causal()
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        contain(&self.name, "evaluate_all", || self.inner.evaluate_all(values, num_rows))
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        contain(&self.name, "evaluate", || self.inner.evaluate(values, range))
    }

    fn evaluate_all_with_rank(&self, num_rows: usize, ranks_in_partition: &[Range<usize>]) -> Result<ArrayRef> {
        contain(&self.name, "evaluate_all_with_rank", || self.inner.evaluate_all_with_rank(num_rows, ranks_in_partition))
    }

    fn supports_bounded_execution(&self) -> bool {
        self.inner.supports_bounded_execution()
    }

    fn uses_window_frame(&self) -> bool {
        self.inner.uses_window_frame()
    }

    fn include_rank(&self) -> bool {
        self.inner.include_rank()
    }
}

/// A record batch stream whose polls cannot unwind: a panic while producing a batch (a
/// corrupt Parquet page inside arrow's reader, a bug in an operator) ends the stream with an
/// [`ErrorCode::Panic`] error naming `object`. Hosts poll plugin streams through
/// datafusion-ffi's `extern "C"` wrappers, where an unwinding panic aborts the process (a
/// Python session dies with SIGABRT), and a Rust host running a plugin's scan itself would
/// exit just the same.
pub struct PanicSafeStream {
    inner: Option<datafusion::execution::SendableRecordBatchStream>,
    schema: datafusion::arrow::datatypes::SchemaRef,
    object: Arc<str>,
}

impl PanicSafeStream {
    /// Wraps `inner`; `object` names what produced it in the error (e.g. the table).
    pub fn wrap(
        object: impl Into<Arc<str>>,
        inner: datafusion::execution::SendableRecordBatchStream,
    ) -> datafusion::execution::SendableRecordBatchStream {
        let schema = inner.schema();
        Box::pin(Self { inner: Some(inner), schema, object: object.into() })
    }
}

impl futures::Stream for PanicSafeStream {
    type Item = Result<datafusion::arrow::array::RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // The inner stream's state is unknown after a panic: drop it (also inside
                // catch_unwind, its destructor may panic too) and end the stream after this error.
                let inner = self.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
                let message = panic_message(payload.as_ref());
                tracing::error!(target: "df_plugin", object = %self.object, panic = %message, "plugin stream panicked");
                Poll::Ready(Some(Err(df_error(
                    ErrorCode::Panic,
                    format!("{}: reading panicked (the data is likely corrupt): {message}", self.object),
                ))))
            }
        }
    }
}

impl datafusion::physical_plan::RecordBatchStream for PanicSafeStream {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// `plan.execute(partition, ctx)` with the call and every poll of its stream panic-contained.
pub fn execute_contained(
    object: &str,
    plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    partition: usize,
    ctx: Arc<datafusion::execution::TaskContext>,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    let stream = contain(object, "execute", || plan.execute(partition, ctx))?;
    Ok(PanicSafeStream::wrap(object, stream))
}

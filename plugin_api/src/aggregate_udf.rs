//! Groups accumulators through this ABI (root module 1.4), both sides side by side.
//!
//! datafusion-ffi's `FFI_GroupsAccumulator` copies the batch's group indices twice on every
//! `update_batch` (into a `stabby` vector on the host, out of it in the plugin): for a cheap
//! aggregate at 8192 rows per batch that is most of the cost of crossing. Rust hosts create a
//! plugin aggregate's groups accumulator through this ABI instead: group indices cross as a
//! borrowed slice, values and results as Arrow C structs. Planning (signature, return and state
//! fields, row accumulators, sliding windows) still goes through datafusion-ffi's
//! `FFI_AggregateUDF`, and so does any accumulator this path cannot create (for example one
//! whose argument expressions use a host function the plugin does not know).

use std::ffi::c_void;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use abi_stable::std_types::{ROption, RResult, RSlice, RString, RVec};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::arrow::ffi::FFI_ArrowSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Documentation, EmitTo, GroupsAccumulator, Signature,
};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion_ffi::arrow_wrappers::{WrappedArray, WrappedSchema};
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::DefaultPhysicalExtensionCodec;
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;

use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::module::PluginModuleRef;
use crate::safety::contain;
use crate::scalar_udf::{from_abi, to_abi, AbiColumnarValue};

/// One ordering expression of an aggregate (`ORDER BY` inside the call).
#[repr(C)]
pub struct AbiSortExpr {
    /// The expression as datafusion-proto bytes.
    pub expr: RVec<u8>,
    pub descending: bool,
    pub nulls_first: bool,
}

/// DataFusion's `AccumulatorArgs`, with expressions as datafusion-proto bytes.
#[repr(C)]
pub struct AbiAccumulatorArgs {
    pub return_field: WrappedSchema,
    /// The aggregate's input schema.
    pub schema: WrappedSchema,
    pub ignore_nulls: bool,
    pub order_bys: RVec<AbiSortExpr>,
    pub is_reversed: bool,
    pub name: RString,
    pub is_distinct: bool,
    pub exprs: RVec<RVec<u8>>,
    pub expr_fields: RVec<WrappedSchema>,
}

/// DataFusion's `EmitTo`: all groups, or the first `n`.
#[repr(C)]
pub struct AbiEmitTo {
    pub first: bool,
    pub n: usize,
}

impl From<EmitTo> for AbiEmitTo {
    fn from(emit: EmitTo) -> Self {
        match emit {
            EmitTo::All => AbiEmitTo { first: false, n: 0 },
            EmitTo::First(n) => AbiEmitTo { first: true, n },
        }
    }
}

impl From<AbiEmitTo> for EmitTo {
    fn from(emit: AbiEmitTo) -> Self {
        if emit.first {
            EmitTo::First(emit.n)
        } else {
            EmitTo::All
        }
    }
}

/// A plugin's groups accumulator. Released exactly once, on drop.
#[repr(C)]
pub struct AbiGroupsAccumulator {
    pub update_batch: extern "C" fn(
        acc: *mut c_void,
        values: RVec<WrappedArray>,
        group_indices: RSlice<'_, usize>,
        opt_filter: ROption<WrappedArray>,
        total_num_groups: usize,
    ) -> RResult<(), PluginError>,
    pub merge_batch: extern "C" fn(
        acc: *mut c_void,
        values: RVec<WrappedArray>,
        group_indices: RSlice<'_, usize>,
        total_num_groups: usize,
    ) -> RResult<(), PluginError>,
    pub evaluate: extern "C" fn(acc: *mut c_void, emit_to: AbiEmitTo) -> RResult<WrappedArray, PluginError>,
    pub state: extern "C" fn(acc: *mut c_void, emit_to: AbiEmitTo) -> RResult<RVec<WrappedArray>, PluginError>,
    pub convert_to_state: extern "C" fn(
        acc: *const c_void,
        values: RVec<WrappedArray>,
        opt_filter: ROption<WrappedArray>,
    ) -> RResult<RVec<WrappedArray>, PluginError>,
    pub size: extern "C" fn(acc: *const c_void) -> usize,
    pub release: extern "C" fn(acc: *mut c_void),
    pub acc: *mut c_void,
}

/// Signature of the root module's `create_groups_accumulator` field: the groups accumulator
/// of the aggregate at `index` of `aggregate_udfs()`.
pub type CreateGroupsAccumulatorFn =
    extern "C" fn(index: usize, args: AbiAccumulatorArgs) -> RResult<AbiGroupsAccumulator, PluginError>;

fn array_to_abi(array: ArrayRef) -> Result<WrappedArray> {
    Ok(to_abi(ColumnarValue::Array(array))?.value)
}

fn array_from_abi(value: WrappedArray) -> Result<ArrayRef> {
    match from_abi(AbiColumnarValue { scalar: false, value })? {
        ColumnarValue::Array(array) => Ok(array),
        ColumnarValue::Scalar(_) => Err(DataFusionError::Internal("array crossed as a scalar".into())),
    }
}

fn filter_from_abi(filter: ROption<WrappedArray>) -> Result<Option<BooleanArray>> {
    filter
        .into_option()
        .map(|f| {
            let array = array_from_abi(f)?;
            array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| DataFusionError::Internal(format!("aggregate filter crossed as {}", array.data_type())))
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Plugin side

type Boxed = Box<dyn GroupsAccumulator>;

/// # Safety
/// `acc` comes from `create_groups_accumulator` and is used by one thread at a time (the host
/// holds it as `&mut`), as `GroupsAccumulator` requires.
unsafe fn boxed<'a>(acc: *mut c_void) -> &'a mut Boxed {
    unsafe { &mut *(acc as *mut Boxed) }
}

fn to_plugin_error(e: DataFusionError) -> PluginError {
    PluginError::from_datafusion(&e, ErrorCode::Execution)
}

extern "C" fn acc_update_batch(
    acc: *mut c_void,
    values: RVec<WrappedArray>,
    group_indices: RSlice<'_, usize>,
    opt_filter: ROption<WrappedArray>,
    total_num_groups: usize,
) -> RResult<(), PluginError> {
    guard_ffi("groups_accumulator.update_batch", || {
        // SAFETY: see `boxed`.
        let acc = unsafe { boxed(acc) };
        let values = values.into_iter().map(array_from_abi).collect::<Result<Vec<_>>>().map_err(to_plugin_error)?;
        let filter = filter_from_abi(opt_filter).map_err(to_plugin_error)?;
        acc.update_batch(&values, group_indices.as_slice(), filter.as_ref(), total_num_groups).map_err(to_plugin_error)
    })
}

extern "C" fn acc_merge_batch(
    acc: *mut c_void,
    values: RVec<WrappedArray>,
    group_indices: RSlice<'_, usize>,
    total_num_groups: usize,
) -> RResult<(), PluginError> {
    guard_ffi("groups_accumulator.merge_batch", || {
        // SAFETY: see `boxed`.
        let acc = unsafe { boxed(acc) };
        let values = values.into_iter().map(array_from_abi).collect::<Result<Vec<_>>>().map_err(to_plugin_error)?;
        acc.merge_batch(&values, group_indices.as_slice(), total_num_groups).map_err(to_plugin_error)
    })
}

extern "C" fn acc_evaluate(acc: *mut c_void, emit_to: AbiEmitTo) -> RResult<WrappedArray, PluginError> {
    guard_ffi("groups_accumulator.evaluate", || {
        // SAFETY: see `boxed`.
        let acc = unsafe { boxed(acc) };
        acc.evaluate(emit_to.into()).and_then(array_to_abi).map_err(to_plugin_error)
    })
}

extern "C" fn acc_state(acc: *mut c_void, emit_to: AbiEmitTo) -> RResult<RVec<WrappedArray>, PluginError> {
    guard_ffi("groups_accumulator.state", || {
        // SAFETY: see `boxed`.
        let acc = unsafe { boxed(acc) };
        let state = acc.state(emit_to.into()).map_err(to_plugin_error)?;
        state.into_iter().map(array_to_abi).collect::<Result<RVec<_>>>().map_err(to_plugin_error)
    })
}

extern "C" fn acc_convert_to_state(
    acc: *const c_void,
    values: RVec<WrappedArray>,
    opt_filter: ROption<WrappedArray>,
) -> RResult<RVec<WrappedArray>, PluginError> {
    guard_ffi("groups_accumulator.convert_to_state", || {
        // SAFETY: see `boxed`; only read here.
        let acc = unsafe { &*(acc as *const Boxed) };
        let values = values.into_iter().map(array_from_abi).collect::<Result<Vec<_>>>().map_err(to_plugin_error)?;
        let filter = filter_from_abi(opt_filter).map_err(to_plugin_error)?;
        let state = acc.convert_to_state(&values, filter.as_ref()).map_err(to_plugin_error)?;
        state.into_iter().map(array_to_abi).collect::<Result<RVec<_>>>().map_err(to_plugin_error)
    })
}

extern "C" fn acc_size(acc: *const c_void) -> usize {
    // SAFETY: see `boxed`; only read here. A panic reports size 0 rather than unwinding.
    std::panic::catch_unwind(|| unsafe { &*(acc as *const Boxed) }.size()).unwrap_or(0)
}

extern "C" fn acc_release(acc: *mut c_void) {
    if !acc.is_null() {
        // SAFETY: `acc` came from `Box::into_raw(Box<Boxed>)` and is released once. A panic
        // in a drop is contained (the memory is then leaked, not freed twice).
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(acc as *mut Boxed) }));
    }
}

fn decode_expr(bytes: &[u8], ctx: &datafusion::execution::TaskContext, schema: &Schema) -> Result<Arc<dyn PhysicalExpr>> {
    let node = PhysicalExprNode::decode(bytes).map_err(|e| DataFusionError::Internal(format!("physical expression: {e}")))?;
    parse_physical_expr(&node, ctx, schema, &DefaultPhysicalExtensionCodec {})
}

pub(crate) extern "C" fn create_groups_accumulator<P: Exported>(
    index: usize,
    args: AbiAccumulatorArgs,
) -> RResult<AbiGroupsAccumulator, PluginError> {
    guard_ffi("create_groups_accumulator", || {
        let state = exported_state::<P>()?;
        let udaf = state.exports.aggregate_udfs.get(index).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("no aggregate function at index {index}"))
        })?;
        let task_ctx = state.task_ctx();
        let create = || -> Result<Boxed> {
            let schema = Schema::try_from(&args.schema.0)?;
            let return_field: FieldRef = Arc::new(Field::try_from(&args.return_field.0)?);
            let expr_fields = args.expr_fields.iter().map(|f| Field::try_from(&f.0).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
            let exprs = args.exprs.iter().map(|e| decode_expr(e.as_slice(), &task_ctx, &schema)).collect::<Result<Vec<_>>>()?;
            let order_bys = args
                .order_bys
                .iter()
                .map(|o| {
                    let expr = decode_expr(o.expr.as_slice(), &task_ctx, &schema)?;
                    Ok(PhysicalSortExpr::new(expr, datafusion::arrow::compute::SortOptions { descending: o.descending, nulls_first: o.nulls_first }))
                })
                .collect::<Result<Vec<_>>>()?;
            let accumulator_args = AccumulatorArgs {
                return_field,
                schema: &schema,
                ignore_nulls: args.ignore_nulls,
                order_bys: &order_bys,
                is_reversed: args.is_reversed,
                name: args.name.as_str(),
                is_distinct: args.is_distinct,
                exprs: &exprs,
                expr_fields: &expr_fields,
            };
            contain(udaf.name(), "create_groups_accumulator", || udaf.create_groups_accumulator(accumulator_args))
        };
        let accumulator = create().map_err(|e| PluginError::from_datafusion(&e, ErrorCode::InvalidArgument))?;
        Ok(AbiGroupsAccumulator {
            update_batch: acc_update_batch,
            merge_batch: acc_merge_batch,
            evaluate: acc_evaluate,
            state: acc_state,
            convert_to_state: acc_convert_to_state,
            size: acc_size,
            release: acc_release,
            acc: Box::into_raw(Box::new(accumulator)) as *mut c_void,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Host side

/// A plugin's groups accumulator as the host drives it.
struct AbiGroupsAccumulatorProxy(AbiGroupsAccumulator);

// SAFETY: the plugin's accumulator is a `GroupsAccumulator` (Send); the host uses it from one
// thread at a time.
unsafe impl Send for AbiGroupsAccumulatorProxy {}

impl Drop for AbiGroupsAccumulatorProxy {
    fn drop(&mut self) {
        (self.0.release)(self.0.acc)
    }
}

fn rresult<T>(r: RResult<T, PluginError>) -> Result<T> {
    match r {
        RResult::ROk(v) => Ok(v),
        RResult::RErr(e) => Err(e.into()),
    }
}

fn arrays_to_abi(values: &[ArrayRef]) -> Result<RVec<WrappedArray>> {
    values.iter().map(|v| array_to_abi(Arc::clone(v))).collect()
}

fn filter_to_abi(filter: Option<&BooleanArray>) -> Result<ROption<WrappedArray>> {
    Ok(filter.map(|f| array_to_abi(Arc::new(f.clone()))).transpose()?.into())
}

impl GroupsAccumulator for AbiGroupsAccumulatorProxy {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        rresult((self.0.update_batch)(
            self.0.acc,
            arrays_to_abi(values)?,
            RSlice::from_slice(group_indices),
            filter_to_abi(opt_filter)?,
            total_num_groups,
        ))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        array_from_abi(rresult((self.0.evaluate)(self.0.acc, emit_to.into()))?)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        rresult((self.0.state)(self.0.acc, emit_to.into()))?.into_iter().map(array_from_abi).collect()
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        rresult((self.0.merge_batch)(self.0.acc, arrays_to_abi(values)?, RSlice::from_slice(group_indices), total_num_groups))
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        rresult((self.0.convert_to_state)(self.0.acc, arrays_to_abi(values)?, filter_to_abi(opt_filter)?))?
            .into_iter()
            .map(array_from_abi)
            .collect()
    }

    fn size(&self) -> usize {
        (self.0.size)(self.0.acc)
    }
}

/// A plugin aggregate whose groups accumulators come through this ABI; everything else goes to
/// `planning` (the datafusion-ffi proxy of the same function).
#[derive(Debug)]
pub struct AbiAggregateUdf {
    planning: Arc<AggregateUDF>,
    create: CreateGroupsAccumulatorFn,
    index: usize,
}

impl AbiAggregateUdf {
    /// Wraps the aggregate at `index` of the plugin's `aggregate_udfs()` list when the root
    /// module has the 1.4 field; otherwise returns `planning` unchanged.
    pub fn wrap(module: PluginModuleRef, index: usize, planning: Arc<AggregateUDF>) -> Arc<AggregateUDF> {
        match module.create_groups_accumulator() {
            Some(create) => Arc::new(AggregateUDF::new_from_impl(AbiAggregateUdf { planning, create, index })),
            None => planning,
        }
    }

    fn create_through_abi(&self, args: &AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let codec = DefaultPhysicalExtensionCodec {};
        let encode = |e: &Arc<dyn PhysicalExpr>| -> Result<RVec<u8>> { Ok(RVec::from(serialize_physical_expr(e, &codec)?.encode_to_vec())) };
        let field = |f: &Field| -> Result<WrappedSchema> { Ok(WrappedSchema(FFI_ArrowSchema::try_from(f)?)) };
        let abi_args = AbiAccumulatorArgs {
            return_field: field(&args.return_field)?,
            schema: WrappedSchema(FFI_ArrowSchema::try_from(args.schema)?),
            ignore_nulls: args.ignore_nulls,
            order_bys: args
                .order_bys
                .iter()
                .map(|o| {
                    Ok(AbiSortExpr { expr: encode(&o.expr)?, descending: o.options.descending, nulls_first: o.options.nulls_first })
                })
                .collect::<Result<RVec<_>>>()?,
            is_reversed: args.is_reversed,
            name: RString::from(args.name),
            is_distinct: args.is_distinct,
            exprs: args.exprs.iter().map(encode).collect::<Result<RVec<_>>>()?,
            expr_fields: args.expr_fields.iter().map(|f| field(f)).collect::<Result<RVec<_>>>()?,
        };
        Ok(Box::new(AbiGroupsAccumulatorProxy(rresult((self.create)(self.index, abi_args))?)))
    }
}

impl PartialEq for AbiAggregateUdf {
    fn eq(&self, other: &Self) -> bool {
        self.planning == other.planning && self.index == other.index
    }
}

impl Eq for AbiAggregateUdf {}

impl Hash for AbiAggregateUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.planning.hash(state);
        self.index.hash(state);
    }
}

impl AggregateUDFImpl for AbiAggregateUdf {
    fn name(&self) -> &str {
        self.planning.name()
    }

    fn signature(&self) -> &Signature {
        self.planning.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.planning.inner().return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.planning.inner().return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.planning.inner().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.planning.inner().accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.planning.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.planning.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        match self.create_through_abi(&args) {
            Ok(accumulator) => Ok(accumulator),
            Err(e) => {
                tracing::debug!(target: "df_plugin", function = %self.name(), error = %e, "groups accumulator through datafusion-ffi");
                self.planning.inner().create_groups_accumulator(args)
            }
        }
    }

    fn aliases(&self) -> &[String] {
        self.planning.aliases()
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.planning.inner().create_sliding_accumulator(args)
    }

    fn with_beneficial_ordering(self: Arc<Self>, beneficial_ordering: bool) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        // A reordered variant is another plugin object: it keeps datafusion-ffi's path.
        Arc::clone(self.planning.inner()).with_beneficial_ordering(beneficial_ordering)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.planning.inner().order_sensitivity()
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.planning.inner().supports_null_handling_clause()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.planning.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.planning.documentation()
    }
}

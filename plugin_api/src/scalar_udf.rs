//! Scalar function invocation through this ABI (root module 1.1), both sides side by side.
//!
//! datafusion-ffi's `FFI_ScalarUDF` still carries everything about a function that planning
//! needs (name, signature, return type, coercion). Its invocation path, though, costs per
//! batch: every scalar argument is expanded to a full array and the session's whole
//! `ConfigOptions` (some 200 entries) is converted to strings and parsed back. For cheap
//! functions that dominates (a 2-4x slowdown measured at batch size 1024). This module gives
//! Rust hosts a lean path for the same functions:
//! - scalars cross as one-row arrays flagged `scalar` and arrive as `ColumnarValue::Scalar`;
//! - the session options cross once per distinct `Arc<ConfigOptions>` (in practice once per
//!   query): the plugin returns a [`ConfigHandle`] the host keeps and passes with each batch.
//!
//! Hosts whose plugin lacks these fields (ABI 1.0) keep using datafusion-ffi's proxy.

use std::ffi::c_void;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RResult, RVec};
use datafusion::arrow::array::{make_array, Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::ffi::{from_ffi, to_ffi, FFI_ArrowSchema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion_ffi::arrow_wrappers::{WrappedArray, WrappedSchema};
use datafusion_ffi::config::FFI_ConfigOptions;

use crate::config::LastForOptions;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::module::PluginModuleRef;
use crate::safety::contain;

/// One argument or result: an array, or a scalar carried as a one-row array.
#[repr(C)]
pub struct AbiColumnarValue {
    pub scalar: bool,
    pub value: WrappedArray,
}

/// An object the plugin built for the host and owns: the host passes `ptr` back to the
/// plugin and never reads it. Released exactly once, on drop.
#[repr(C)]
pub struct PluginOwned {
    pub ptr: *const c_void,
    pub release: extern "C" fn(*const c_void),
}

// SAFETY: every pointee (`Arc<ConfigOptions>`, `PreparedCall`) is Send + Sync and only read
// after creation.
unsafe impl Send for PluginOwned {}
unsafe impl Sync for PluginOwned {}

impl Drop for PluginOwned {
    fn drop(&mut self) {
        (self.release)(self.ptr)
    }
}

impl std::fmt::Debug for PluginOwned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PluginOwned({:p})", self.ptr)
    }
}

/// Session options held by the plugin for the host (ABI 1.1).
pub type ConfigHandle = PluginOwned;

pub(crate) fn to_abi(value: ColumnarValue) -> Result<AbiColumnarValue> {
    let (scalar, array) = match value {
        ColumnarValue::Scalar(s) => (true, s.to_array_of_size(1)?),
        ColumnarValue::Array(a) => (false, a),
    };
    let (array, schema) = to_ffi(&array.to_data())?;
    Ok(AbiColumnarValue { scalar, value: WrappedArray { array, schema: WrappedSchema(schema) } })
}

pub(crate) fn from_abi(value: AbiColumnarValue) -> Result<ColumnarValue> {
    // SAFETY: the peer built this pair with `to_ffi` and transferred ownership to us.
    let data = unsafe { from_ffi(value.value.array, &value.value.schema.0)? };
    let array: ArrayRef = make_array(data);
    if value.scalar {
        if array.len() != 1 {
            return Err(DataFusionError::Internal(format!("scalar value crossed as {} rows, expected 1", array.len())));
        }
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn field_to_abi(field: &Field) -> Result<WrappedSchema> {
    Ok(WrappedSchema(FFI_ArrowSchema::try_from(field)?))
}

fn field_from_abi(schema: &WrappedSchema) -> Result<FieldRef> {
    Ok(Arc::new(Field::try_from(&schema.0)?))
}

// ---------------------------------------------------------------------------------------------
// Plugin side (exported through the root module)

extern "C" fn release_config(ptr: *const c_void) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Box::into_raw(Box<Arc<ConfigOptions>>)` in `register_config`.
        drop(unsafe { Box::from_raw(ptr as *mut Arc<ConfigOptions>) });
    }
}

pub(crate) extern "C" fn register_config(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError> {
    guard_ffi("register_config", || {
        let options = ConfigOptions::try_from(options)
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::InvalidConfig))?;
        let ptr = Box::into_raw(Box::new(Arc::new(options))) as *const c_void;
        Ok(ConfigHandle { ptr, release: release_config })
    })
}

/// Signature of the root module's `invoke_scalar_udf` field.
pub type InvokeScalarUdfFn = extern "C" fn(
    index: usize,
    args: RVec<AbiColumnarValue>,
    arg_fields: RVec<WrappedSchema>,
    number_rows: usize,
    return_field: WrappedSchema,
    config: *const c_void,
) -> RResult<AbiColumnarValue, PluginError>;

pub(crate) extern "C" fn invoke_scalar_udf<P: Exported>(
    index: usize,
    args: RVec<AbiColumnarValue>,
    arg_fields: RVec<WrappedSchema>,
    number_rows: usize,
    return_field: WrappedSchema,
    config: *const c_void,
) -> RResult<AbiColumnarValue, PluginError> {
    guard_ffi("invoke_scalar_udf", || {
        let state = exported_state::<P>()?;
        let udf = state.exports.scalar_udfs.get(index).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("no scalar function at index {index}"))
        })?;
        if config.is_null() {
            return Err(PluginError::new(ErrorCode::InvalidArgument, "invoke_scalar_udf: NULL config handle"));
        }
        // SAFETY: `config` is a live handle from `register_config`, owned by the host for the
        // duration of this call.
        let config_options = Arc::clone(unsafe { &*(config as *const Arc<ConfigOptions>) });
        let run = || -> Result<AbiColumnarValue> {
            let args = args.into_iter().map(from_abi).collect::<Result<Vec<_>>>()?;
            let arg_fields = arg_fields.iter().map(field_from_abi).collect::<Result<Vec<_>>>()?;
            let return_field = field_from_abi(&return_field)?;
            let out = contain(udf.name(), "invoke", || {
                udf.invoke_with_args(ScalarFunctionArgs { args, arg_fields, number_rows, return_field, config_options })
            })?;
            to_abi(out)
        };
        run().map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))
    })
}

// ---- ABI 1.4: prepared calls --------------------------------------------------------------

/// One literal argument of a prepared call: its position and value (a one-row array).
#[repr(C)]
pub struct AbiLiteral {
    pub position: usize,
    pub value: WrappedArray,
}

/// A scalar function call prepared by the plugin: the function, its argument and return
/// fields, its literal arguments and the session options, converted once.
pub type PreparedScalarCall = PluginOwned;

/// Signature of the root module's `prepare_scalar_udf` field.
pub type PrepareScalarUdfFn = extern "C" fn(
    index: usize,
    arg_fields: RVec<WrappedSchema>,
    literals: RVec<AbiLiteral>,
    return_field: WrappedSchema,
    config: *const c_void,
) -> RResult<PreparedScalarCall, PluginError>;

/// Signature of the root module's `invoke_prepared_scalar_udf` field: `arrays` are the
/// arguments that are not literals of the prepared call, in order.
pub type InvokePreparedScalarUdfFn =
    extern "C" fn(call: *const c_void, arrays: RVec<AbiColumnarValue>, number_rows: usize) -> RResult<AbiColumnarValue, PluginError>;

struct PreparedCall {
    udf: Arc<ScalarUDF>,
    arg_fields: Vec<FieldRef>,
    return_field: FieldRef,
    /// Per argument position: the literal, or `None` for an argument that arrives per batch.
    literals: Vec<Option<ScalarValue>>,
    config_options: Arc<ConfigOptions>,
}

extern "C" fn release_prepared(ptr: *const c_void) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Box::into_raw(Box<PreparedCall>)` in `prepare_scalar_udf`.
        drop(unsafe { Box::from_raw(ptr as *mut PreparedCall) });
    }
}

pub(crate) extern "C" fn prepare_scalar_udf<P: Exported>(
    index: usize,
    arg_fields: RVec<WrappedSchema>,
    literals: RVec<AbiLiteral>,
    return_field: WrappedSchema,
    config: *const c_void,
) -> RResult<PreparedScalarCall, PluginError> {
    guard_ffi("prepare_scalar_udf", || {
        let state = exported_state::<P>()?;
        let udf = state.exports.scalar_udfs.get(index).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("no scalar function at index {index}"))
        })?;
        if config.is_null() {
            return Err(PluginError::new(ErrorCode::InvalidArgument, "prepare_scalar_udf: NULL config handle"));
        }
        // SAFETY: `config` is a live handle from `register_config`, held by the host for the
        // duration of this call; the prepared call keeps its own reference.
        let config_options = Arc::clone(unsafe { &*(config as *const Arc<ConfigOptions>) });
        let prepare = || -> Result<PreparedCall> {
            let arg_fields = arg_fields.iter().map(field_from_abi).collect::<Result<Vec<_>>>()?;
            let mut by_position: Vec<Option<ScalarValue>> = vec![None; arg_fields.len()];
            for literal in literals {
                let slot = by_position.get_mut(literal.position).ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "literal at argument {} of a {}-argument call",
                        literal.position,
                        arg_fields.len()
                    ))
                })?;
                match from_abi(AbiColumnarValue { scalar: true, value: literal.value })? {
                    ColumnarValue::Scalar(value) => *slot = Some(value),
                    ColumnarValue::Array(_) => return Err(DataFusionError::Internal("literal crossed as an array".into())),
                }
            }
            Ok(PreparedCall { udf: Arc::clone(udf), arg_fields, return_field: field_from_abi(&return_field)?, literals: by_position, config_options })
        };
        let prepared = prepare().map_err(|e| PluginError::from_datafusion(&e, ErrorCode::InvalidArgument))?;
        Ok(PreparedScalarCall { ptr: Box::into_raw(Box::new(prepared)) as *const c_void, release: release_prepared })
    })
}

pub(crate) extern "C" fn invoke_prepared_scalar_udf(
    call: *const c_void,
    arrays: RVec<AbiColumnarValue>,
    number_rows: usize,
) -> RResult<AbiColumnarValue, PluginError> {
    guard_ffi("invoke_prepared_scalar_udf", || {
        if call.is_null() {
            return Err(PluginError::new(ErrorCode::InvalidArgument, "invoke_prepared_scalar_udf: NULL call"));
        }
        // SAFETY: `call` is a live handle from `prepare_scalar_udf`, held by the host for the
        // duration of this call.
        let call = unsafe { &*(call as *const PreparedCall) };
        let run = || -> Result<AbiColumnarValue> {
            let mut arrays = arrays.into_iter();
            let args = call
                .literals
                .iter()
                .map(|literal| match literal {
                    Some(value) => Ok(ColumnarValue::Scalar(value.clone())),
                    None => arrays
                        .next()
                        .ok_or_else(|| DataFusionError::Internal("a prepared call got fewer arguments than it takes".into()))
                        .and_then(from_abi),
                })
                .collect::<Result<Vec<_>>>()?;
            let out = contain(call.udf.name(), "invoke", || {
                call.udf.invoke_with_args(ScalarFunctionArgs {
                    args,
                    arg_fields: call.arg_fields.clone(),
                    number_rows,
                    return_field: Arc::clone(&call.return_field),
                    config_options: Arc::clone(&call.config_options),
                })
            })?;
            to_abi(out)
        };
        run().map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))
    })
}

// ---------------------------------------------------------------------------------------------
// Host side

/// Signature of the root module's `register_config` field.
pub type RegisterConfigFn = extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>;

/// The last session options sent to a plugin, and the plugin's handle for them: options
/// cross once per distinct `Arc<ConfigOptions>`, in practice once per query.
pub type ConfigCache = LastForOptions<ConfigHandle>;

impl ConfigCache {
    /// The plugin's handle for `options`, registering them if they are not the last ones sent.
    pub fn handle(&self, register: RegisterConfigFn, options: &Arc<ConfigOptions>) -> Result<Arc<ConfigHandle>> {
        self.get_or_try_make(options, || match register(FFI_ConfigOptions::from(options.as_ref())) {
            RResult::ROk(h) => Ok(h),
            RResult::RErr(e) => Err(e.into()),
        })
    }
}

/// A plugin scalar function invoked through this ABI; planning goes through `planning` (the
/// datafusion-ffi proxy of the same function).
#[derive(Debug)]
pub struct AbiScalarUdf {
    planning: Arc<ScalarUDF>,
    module: ModuleRef,
    index: usize,
    config: ConfigCache,
    /// Prepared calls (ABI 1.4), most recent last; see [`PreparedEntry`].
    prepared: Mutex<Vec<PreparedEntry>>,
}

/// How many argument shapes one function keeps prepared calls for (per session function;
/// each expression of a query with distinct literals or fields is one shape).
const PREPARED_CALLS_KEPT: usize = 16;

/// A prepared call and the call shape it was prepared for.
#[derive(Debug)]
struct PreparedEntry {
    config: Arc<ConfigOptions>,
    return_field: FieldRef,
    arg_fields: Vec<FieldRef>,
    /// Per position: the literal value, or `None` where an array is passed per batch.
    literals: Vec<Option<ScalarValue>>,
    call: Arc<PreparedScalarCall>,
}

impl PreparedEntry {
    fn matches(&self, args: &ScalarFunctionArgs) -> bool {
        let same_field = |a: &FieldRef, b: &FieldRef| Arc::ptr_eq(a, b) || a == b;
        Arc::ptr_eq(&self.config, &args.config_options)
            && same_field(&self.return_field, &args.return_field)
            && self.arg_fields.len() == args.arg_fields.len()
            && self.arg_fields.iter().zip(&args.arg_fields).all(|(a, b)| same_field(a, b))
            && self.literals.len() == args.args.len()
            && self.literals.iter().zip(&args.args).all(|(literal, arg)| match (literal, arg) {
                (Some(value), ColumnarValue::Scalar(scalar)) => value == scalar,
                (None, ColumnarValue::Array(_)) => true,
                _ => false,
            })
    }
}

/// `PluginModuleRef` with the traits `ScalarUDFImpl` needs.
#[derive(Clone, Copy)]
struct ModuleRef(PluginModuleRef);

impl std::fmt::Debug for ModuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginModuleRef")
    }
}

impl AbiScalarUdf {
    /// Wraps the function at `index` of the plugin's `scalar_udfs()` list when the plugin's
    /// root module carries the 1.1 invocation fields; otherwise returns `planning` unchanged.
    pub fn wrap(module: PluginModuleRef, index: usize, planning: Arc<ScalarUDF>) -> Arc<ScalarUDF> {
        if module.invoke_scalar_udf().is_none() || module.register_config().is_none() {
            return planning;
        }
        Arc::new(ScalarUDF::new_from_impl(AbiScalarUdf {
            planning,
            module: ModuleRef(module),
            index,
            config: ConfigCache::default(),
            prepared: Mutex::new(Vec::new()),
        }))
    }

    /// ABI 1.4: the call shape (fields, literals, options) crosses once, then each batch sends
    /// only its arrays.
    fn invoke_prepared(
        &self,
        prepare: PrepareScalarUdfFn,
        invoke: InvokePreparedScalarUdfFn,
        args: ScalarFunctionArgs,
    ) -> Result<ColumnarValue> {
        let call = self.prepared_call(prepare, &args)?;
        let arrays = args
            .args
            .into_iter()
            .filter(|a| matches!(a, ColumnarValue::Array(_)))
            .map(to_abi)
            .collect::<Result<RVec<_>>>()?;
        match invoke(call.ptr, arrays, args.number_rows) {
            RResult::ROk(out) => from_abi(out),
            RResult::RErr(e) => Err(e.into()),
        }
    }

    fn prepared_call(&self, prepare: PrepareScalarUdfFn, args: &ScalarFunctionArgs) -> Result<Arc<PreparedScalarCall>> {
        {
            let prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = prepared.iter().rev().find(|e| e.matches(args)) {
                return Ok(Arc::clone(&entry.call));
            }
        }
        let register = self.module.0.register_config().ok_or_else(|| DataFusionError::Internal("register_config missing".into()))?;
        let handle = self.config.handle(register, &args.config_options)?;
        let literals: Vec<Option<ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let abi_literals = literals
            .iter()
            .enumerate()
            .filter_map(|(position, l)| l.clone().map(|v| (position, v)))
            .map(|(position, value)| Ok(AbiLiteral { position, value: to_abi(ColumnarValue::Scalar(value))?.value }))
            .collect::<Result<RVec<_>>>()?;
        let arg_fields = args.arg_fields.iter().map(|f| field_to_abi(f)).collect::<Result<RVec<_>>>()?;
        let call = match prepare(self.index, arg_fields, abi_literals, field_to_abi(&args.return_field)?, handle.ptr) {
            RResult::ROk(call) => Arc::new(call),
            RResult::RErr(e) => return Err(e.into()),
        };
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if prepared.len() >= PREPARED_CALLS_KEPT {
            prepared.remove(0);
        }
        prepared.push(PreparedEntry {
            config: Arc::clone(&args.config_options),
            return_field: Arc::clone(&args.return_field),
            arg_fields: args.arg_fields.clone(),
            literals,
            call: Arc::clone(&call),
        });
        Ok(call)
    }
}

impl PartialEq for AbiScalarUdf {
    fn eq(&self, other: &Self) -> bool {
        self.planning == other.planning && self.index == other.index
    }
}

impl Eq for AbiScalarUdf {}

impl Hash for AbiScalarUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.planning.hash(state);
        self.index.hash(state);
    }
}

impl ScalarUDFImpl for AbiScalarUdf {
    fn name(&self) -> &str {
        self.planning.name()
    }

    fn aliases(&self) -> &[String] {
        self.planning.aliases()
    }

    fn signature(&self) -> &Signature {
        self.planning.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.planning.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.planning.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.planning.coerce_types(arg_types)
    }

    fn short_circuits(&self) -> bool {
        self.planning.short_circuits()
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.planning.preserves_lex_ordering(inputs)
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.planning.placement(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.planning.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let (Some(prepare), Some(invoke)) = (self.module.0.prepare_scalar_udf(), self.module.0.invoke_prepared_scalar_udf()) {
            return self.invoke_prepared(prepare, invoke, args);
        }
        let invoke = self.module.0.invoke_scalar_udf().ok_or_else(|| DataFusionError::Internal("invoke_scalar_udf missing".into()))?;
        let register = self.module.0.register_config().ok_or_else(|| DataFusionError::Internal("register_config missing".into()))?;
        let handle = self.config.handle(register, &args.config_options)?;
        let arg_fields = args.arg_fields.iter().map(|f| field_to_abi(f)).collect::<Result<RVec<_>>>()?;
        let values = args.args.into_iter().map(to_abi).collect::<Result<RVec<_>>>()?;
        let return_field = field_to_abi(&args.return_field)?;
        match invoke(self.index, values, arg_fields, args.number_rows, return_field, handle.ptr) {
            RResult::ROk(out) => from_abi(out),
            RResult::RErr(e) => Err(e.into()),
        }
    }
}

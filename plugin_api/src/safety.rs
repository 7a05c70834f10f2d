//! Panic containment for objects that cross as datafusion-ffi values.
//!
//! datafusion-ffi's `extern "C"` wrappers call the plugin's trait methods without catching
//! panics, and a panic unwinding out of an `extern "C"` function aborts the host process. So
//! before an object is exported, the plugin side wraps it in an adapter whose methods catch
//! panics and return them as DataFusion errors carrying [`ErrorCode::Panic`].

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
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

impl PartialEq for PanicSafeScalarUdf {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for PanicSafeScalarUdf {}

impl Hash for PanicSafeScalarUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state)
    }
}

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

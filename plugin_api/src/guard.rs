//! Panic containment for every `extern "C"` entry point: nothing unwinds across the boundary.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::RResult;

use crate::error::{ErrorCode, PluginError};

/// Text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into a [`PluginError`] with [`ErrorCode::Panic`] that names the
/// entry point.
pub fn guard<T>(entry: &str, f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::error!(target: "df_plugin", entry, panic = %message, "plugin entry point panicked");
            Err(PluginError::new(ErrorCode::Panic, format!("plugin panicked in {entry}: {message}")))
        }
    }
}

/// [`guard`] returning the ABI's `RResult`.
pub fn guard_ffi<T>(entry: &str, f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    guard(entry, f).into()
}

/// For entry points that cannot report an error (they return a plain value): a panic yields
/// `fallback`.
pub fn guard_or<T>(entry: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    guard(entry, || Ok(f())).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_typed_errors() {
        let err = guard::<()>("demo_entry", || panic!("boom {}", 1)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Panic);
        assert!(err.message().contains("demo_entry") && err.message().contains("boom 1"));
        assert_eq!(guard_or("x", 7, || -> i32 { panic!("no") }), 7);
    }
}

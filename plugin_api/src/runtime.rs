//! The plugin-owned tokio runtime.
//!
//! datafusion-ffi does not share the host's tokio runtime: inside `scan()` plugin code sees no
//! runtime at all, and streams and table functions only see one when the plugin passes a
//! handle. So each plugin image owns one multi-thread runtime, created on first use and never
//! shut down (the library is never unloaded).

use std::cell::Cell;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{ErrorCode, PluginError};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

thread_local! {
    /// This thread runs plugin-runtime work: one of its threads, or a thread inside
    /// [`block_on_plugin_runtime`].
    static IN_PLUGIN_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is running work on the plugin runtime, where a future can be
/// awaited in place instead of spawned onto it (saving two thread hand-offs).
pub fn in_plugin_runtime() -> bool {
    IN_PLUGIN_RUNTIME.with(Cell::get)
}

/// Marks the current thread as running plugin-runtime work until dropped.
struct InPluginRuntime(bool);

impl InPluginRuntime {
    fn enter() -> Self {
        Self(IN_PLUGIN_RUNTIME.with(|flag| flag.replace(true)))
    }
}

impl Drop for InPluginRuntime {
    fn drop(&mut self) {
        IN_PLUGIN_RUNTIME.with(|flag| flag.set(self.0));
    }
}

/// Handle of the plugin-owned runtime.
pub fn plugin_runtime() -> Result<Handle, PluginError> {
    let runtime = RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
        Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("df-plugin-rt")
            .on_thread_start(|| IN_PLUGIN_RUNTIME.with(|flag| flag.set(true)))
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(PluginError::new(ErrorCode::Internal, format!("could not start the plugin's tokio runtime: {e}"))),
    }
}

/// Runs `fut` to completion on the plugin runtime from synchronous code (ABI entry points,
/// provider builders). Safe on any thread: a thread already inside a runtime (a host linking
/// the rlib, whose tokio is this image's tokio) hands the wait to a scoped helper thread
/// instead of nesting runtimes.
pub fn block_on_plugin_runtime<T: Send>(fut: impl std::future::Future<Output = T> + Send) -> Result<T, PluginError> {
    let handle = plugin_runtime()?;
    // A panic in the work (a damaged Delta log, a bug) is an error, never an unwind into the
    // caller: callers are often datafusion-ffi's `extern "C"` wrappers, where it would abort.
    let panicked = |payload: Box<dyn std::any::Any + Send>| {
        let message = crate::guard::panic_message(payload.as_ref());
        tracing::error!(target: "df_plugin", panic = %message, "work on the plugin runtime panicked");
        PluginError::new(ErrorCode::Panic, format!("work on the plugin runtime panicked: {message}"))
    };
    if Handle::try_current().is_err() {
        let _marked = InPluginRuntime::enter();
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.block_on(fut))).map_err(panicked);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _marked = InPluginRuntime::enter();
                handle.block_on(fut)
            })
            .join()
            .map_err(panicked)
    })
}

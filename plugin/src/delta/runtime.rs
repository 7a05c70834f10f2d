//! The plugin's own execution environment for Delta work.
//!
//! datafusion-ffi gives a plugin neither the host's tokio runtime nor its `RuntimeEnv` (see
//! `ffi-facts.md`): inside a foreign `scan()` no runtime is current, and the session a plugin
//! sees has a fresh `RuntimeEnv` where deltalake's object-store registration would be lost.
//! So Delta I/O runs on the plugin runtime, and scans plan and execute against one
//! plugin-wide `RuntimeEnv` where deltalake registers each table's object store.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use datafusion::catalog::Session;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use df_plugin_api::config::LastForOptions;
use df_plugin_api::runtime::plugin_runtime;

/// The `RuntimeEnv` all Delta scans of this process plan and execute with.
pub fn plugin_runtime_env() -> Arc<RuntimeEnv> {
    static ENV: OnceLock<Arc<RuntimeEnv>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(RuntimeEnv::default())))
}

/// A session state for Delta work: the host's configuration (batch size, target partitions,
/// Parquet settings) on the plugin's `RuntimeEnv`.
pub fn plugin_session(host_config: &SessionConfig) -> SessionState {
    // Building a state registers every built-in function and rule; do it once and clone
    // (the registries are maps of `Arc`s) for each scan.
    static BASE: OnceLock<SessionState> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        SessionStateBuilder::new().with_runtime_env(plugin_runtime_env()).with_default_features().build()
    });
    // Config extensions are the host's (possibly foreign) objects: the scan needs none of them.
    let mut options = host_config.options().as_ref().clone();
    options.extensions = Default::default();
    let mut state = base.clone();
    *state.config_mut() = SessionConfig::from(options);
    state
}

/// A plugin session for a host session, and its task context.
///
/// Built once per host configuration: Rust hosts scan through this ABI with one configuration
/// object per distinct session options, so consecutive scans find the session they need here
/// instead of copying every registry twice per scan. (Hosts through datafusion-ffi send fresh
/// options on each call and build it each time.)
pub fn plugin_session_for(host: &dyn Session) -> Arc<PluginSession> {
    static LAST: LastForOptions<PluginSession> = LastForOptions::new();
    LAST.get_or_make(host.config().options(), || {
        let state = plugin_session(host.config());
        PluginSession { task_ctx: state.task_ctx(), state }
    })
}

/// A plugin session state with its task context, shared by the scans of one host configuration.
#[derive(Debug)]
pub struct PluginSession {
    pub state: SessionState,
    pub task_ctx: Arc<TaskContext>,
}

fn runtime_error(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(format!("plugin runtime: {e}").into())
}

/// Runs `fut` on the plugin runtime and awaits it from whatever executor polls the caller
/// (the host's runtime, or datafusion-ffi's poller). Already on the plugin runtime (a scan
/// through this ABI runs inside `block_on_plugin_runtime`), it is awaited in place.
pub async fn on_plugin_runtime<T: Send + 'static>(fut: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    if df_plugin_api::runtime::in_plugin_runtime() {
        return fut.await;
    }
    let handle = plugin_runtime().map_err(DataFusionError::from)?;
    handle.spawn(fut).await.map_err(|e| {
        if e.is_panic() {
            let message = df_plugin_api::guard::panic_message(e.into_panic().as_ref());
            df_plugin_api::PluginError::new(df_plugin_api::ErrorCode::Panic, format!("work on the plugin runtime panicked: {message}"))
                .into()
        } else {
            runtime_error(e)
        }
    })?
}

/// Runs `fut` to completion on the plugin runtime from synchronous code (table-function calls,
/// provider builders); safe on any thread.
pub fn block_on_plugin_runtime<T: Send>(fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
    df_plugin_api::runtime::block_on_plugin_runtime(fut).map_err(DataFusionError::from)?
}

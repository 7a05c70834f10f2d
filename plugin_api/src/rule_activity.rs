//! ABI 1.5 rule activity: ask before crossing. Both sides side by side.
//!
//! A plugin's physical optimizer rule crosses as datafusion-ffi's `FFI_PhysicalOptimizerRule`:
//! each call converts the whole plan and every session option (~200 strings) to FFI and back,
//! about 0.2 ms per query. An analyzer rule of this ABI sends a description of the whole plan
//! as JSON. Many rules do nothing under the settings most sessions have (the CodeAnatomy scan
//! guard is off until a limit is set, its SQL policy allows everything until told otherwise).
//! So a Rust host first asks the plugin, with only the plugin's own settings, whether the rule
//! can change or reject a plan at all, and calls it only then. The answer is kept per distinct
//! settings.

use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RResult, RStr};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_optimizer::{PhysicalOptimizerContext, PhysicalOptimizerRule};
use datafusion::physical_plan::ExecutionPlan;

use crate::config::settings_json;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::plugin::options_from_settings;

/// The kinds of rules a host asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RuleKind {
    /// An inspecting analyzer rule of this ABI ([`crate::analyzer`]).
    Analyzer = 0,
    /// A physical optimizer rule (datafusion-ffi).
    PhysicalOptimizer = 1,
}

impl RuleKind {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Analyzer),
            1 => Some(Self::PhysicalOptimizer),
            _ => None,
        }
    }
}

/// `rule_active(kind, rule, settings_json)`: whether the plugin's rule `rule` of kind `kind`
/// ([`RuleKind`] as `u8`) can change or reject a plan under these settings (the session's
/// values of the plugin's configuration namespace, as a JSON object).
pub type RuleActiveFn = extern "C" fn(kind: u8, rule: RStr<'_>, settings_json: RStr<'_>) -> RResult<bool, PluginError>;

/// Plugin side of [`RuleActiveFn`].
pub extern "C" fn rule_active<P: Exported>(kind: u8, rule: RStr<'_>, settings_json: RStr<'_>) -> RResult<bool, PluginError> {
    guard_ffi("rule_active", || {
        let state = exported_state::<P>()?;
        let name = rule.as_str();
        let kind = RuleKind::from_code(kind).ok_or_else(|| {
            PluginError::new(ErrorCode::InvalidArgument, format!("rule_active: expected rule kind 0 or 1, found {kind}"))
        })?;
        let exported = match kind {
            RuleKind::Analyzer => state.exports.analyzer_rules.iter().any(|r| r.name() == name),
            RuleKind::PhysicalOptimizer => state.exports.physical_optimizer_rules.iter().any(|r| r.name() == name),
        };
        if !exported {
            return Err(PluginError::new(ErrorCode::UnknownObject, format!("this plugin exports no {kind:?} rule named '{name}'")));
        }
        let config = options_from_settings(&P::MANIFEST, settings_json.as_str())?;
        Ok(P::rule_active(kind, name, &config))
    })
}

/// Host side: a rule's activity per settings, asked of the plugin once per distinct settings.
#[derive(Debug)]
pub struct RuleActivity {
    kind: RuleKind,
    call: RuleActiveFn,
    /// The last settings asked about and the answer.
    last: Mutex<Option<(String, bool)>>,
}

impl RuleActivity {
    pub fn new(kind: RuleKind, call: RuleActiveFn) -> Self {
        Self { kind, call, last: Mutex::new(None) }
    }

    /// Whether rule `name` is active under `settings` (the namespace's settings as JSON).
    pub fn is_active(&self, name: &str, settings: &str) -> Result<bool> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, active)) = last.as_ref() {
            if seen == settings {
                return Ok(*active);
            }
        }
        let active = match (self.call)(self.kind as u8, RStr::from_str(name), RStr::from_str(settings)) {
            RResult::ROk(active) => active,
            RResult::RErr(error) => return Err(DataFusionError::from(error)),
        };
        tracing::debug!(target: "df_plugin", rule = %name, kind = ?self.kind, active, "rule activity checked");
        *last = Some((settings.to_string(), active));
        Ok(active)
    }
}

/// Host side: a plugin's physical optimizer rule (its datafusion-ffi proxy) that is called only
/// when the plugin says it is active for the session's settings.
#[derive(Debug)]
pub struct AbiPhysicalOptimizerRule {
    inner: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
    namespace: Option<String>,
    activity: RuleActivity,
}

impl AbiPhysicalOptimizerRule {
    /// `inner` guarded by the plugin's `rule_active` entry point; `namespace` is the plugin's
    /// configuration prefix.
    pub fn new(inner: Arc<dyn PhysicalOptimizerRule + Send + Sync>, namespace: Option<&str>, call: RuleActiveFn) -> Self {
        Self { inner, namespace: namespace.map(str::to_string), activity: RuleActivity::new(RuleKind::PhysicalOptimizer, call) }
    }

    fn is_active(&self, config: &ConfigOptions) -> Result<bool> {
        let settings = self.namespace.as_deref().map(|ns| settings_json(config, ns)).unwrap_or_default();
        self.activity.is_active(self.inner.name(), &settings)
    }
}

impl PhysicalOptimizerRule for AbiPhysicalOptimizerRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.is_active(config)? {
            return Ok(plan);
        }
        self.inner.optimize(plan, config)
    }

    fn optimize_with_context(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: &dyn PhysicalOptimizerContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.is_active(context.config_options())? {
            return Ok(plan);
        }
        self.inner.optimize_with_context(plan, context)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn schema_check(&self) -> bool {
        self.inner.schema_check()
    }
}

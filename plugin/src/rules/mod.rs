//! Optimizer rules the pack installs.
pub mod scan_guard;
pub mod policy;

//! `skiff-api`: what the Kubernetes API *is*, as data and pure functions.
//!
//! Owns the resource registry (every served group/version/kind with its names, scope,
//! verbs and subresources), the per-resource strategies (defaulting, validation, which
//! fields a status update may change), server-side printing (Table columns and cells),
//! label/field selectors, and the `Status` error type with upstream's reasons.
//!
//! Must not do I/O: no HTTP, no store, no clocks except the `now` callers pass in. The API
//! server drives these functions; keeping them pure keeps them unit-testable and fuzzable.
//! (The one read-only exception: [`cron`] resolves time-zone names in the IANA database.)

pub mod apply;
pub mod cron;
pub mod names;
pub mod patch;
pub mod printers;
pub mod registry;
pub mod selectors;
pub mod status;
pub mod strategy;

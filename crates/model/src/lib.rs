//! The FHIR R4 (4.0.1) model as data: what resource types, elements, search parameters and
//! compartments exist, compiled from the official definitions into static tables
//! (`src/generated/`, written by `cargo xtask codegen`), plus the few FHIR value types every
//! other crate shares (OperationOutcome issues, ids, instants).
//!
//! Design decision: the model is *tables, not structs*. Caduceus keeps resources as JSON
//! (`serde_json::Value` with exact decimals) and consults these tables to validate, index and
//! describe them. A struct per resource type would mean 150 types to keep in step with the
//! specification, and a parse/re-serialise on every read; tables keep the read path a byte copy.
//!
//! Invariant: this crate knows nothing of storage, HTTP or configuration.
#![deny(missing_docs)]

pub mod defs;
pub mod ids;
pub mod json;
pub mod outcome;

pub use outcome::{Issue, IssueCode, OperationOutcome, Severity};

/// The FHIR version this server implements.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type for FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

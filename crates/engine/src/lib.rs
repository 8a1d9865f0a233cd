//! FHIR REST interactions over a [`Store`]: create, read, vread, update, patch, delete,
//! history, batch and transaction bundles, `$validate`, and the CapabilityStatement that
//! describes exactly these.
//!
//! The engine speaks FHIR's REST *semantics* (which interaction, which status code, which
//! OperationOutcome) but not HTTP: it takes parsed inputs and returns typed results, so the
//! HTTP server, the `import` command and (later) other front ends share one implementation.
//!
//! Design decisions:
//! - Every write, from a single create to a 10,000-entry transaction, becomes one
//!   `Store::write` call with a list of `WriteOp`s: atomicity lives in exactly one place.
//! - Resources are validated before anything is written; the store never sees invalid data.
//! - Bundles returned to clients (history, transaction responses) are assembled as text
//!   around the stored bytes ([`bundle_writer`]), so stored resources are never re-parsed.
//!
//! Invariant: the engine knows nothing of HTTP headers, sockets or configuration files.
#![deny(missing_docs)]

pub mod bundle_writer;
pub mod capability;
mod conditional;
mod error;
mod exact_json;
mod guard;
mod history;
mod interactions;
mod list;
mod maintenance;
mod references;
mod search;
pub mod terminology;
mod transaction;

use std::sync::Arc;

use caduceus_access::Access;
use caduceus_store::Store;

pub use conditional::ConditionalCreate;
pub use error::FhirError;
pub use history::HistoryParams;
pub use interactions::{DeleteResult, ReadResult, WriteResult};
pub use interactions::{check_id, check_type, parse_json};
pub use maintenance::{IndexState, ReindexSummary};
pub use search::{CURSOR_PARAM, SearchRequest};
pub use transaction::{
    BundleKind, BundleResponse, EntryResponse, ReturnPreference, parse_version_tag,
};

/// Paging limits and other engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Page size when a client gives no `_count`.
    pub default_page_size: usize,
    /// Largest page a client may ask for.
    pub max_page_size: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_page_size: 50,
            max_page_size: 1000,
        }
    }
}

/// The FHIR interactions over one store. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    config: EngineConfig,
    /// When this engine started, as a FHIR dateTime (the CapabilityStatement's date).
    started_at: String,
    /// In-process queues in front of the store's named locks (conditional create).
    local_locks: Arc<conditional::LocalLocks>,
    /// Whose request this engine serves ([`Engine::with_access`]); unrestricted for the
    /// server's own work.
    access: Arc<Access>,
}

impl Engine {
    /// An engine over `store`.
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Self {
        let started_at = caduceus_model::ids::format_instant(caduceus_model::ids::now_micros());
        Engine {
            store,
            config,
            started_at,
            local_locks: Arc::default(),
            access: Arc::new(Access::unrestricted()),
        }
    }

    /// This engine acting for one caller: every interaction is checked against `access`
    /// (see the `guard` module). Cheap: the store and locks are shared.
    pub fn with_access(&self, access: Arc<Access>) -> Engine {
        Engine {
            access,
            ..self.clone()
        }
    }

    /// The access this engine acts under.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

//! Liveness and readiness probes.
//!
//! Ready asks the store (`Store::ping`) on every probe, so it goes not-ready while the
//! database is down and ready again by itself once it answers: nothing is cached, and the
//! process never restarts for it. A ping that does not answer within [`PING_TIMEOUT`]
//! counts as a failure (a probe must answer, even when the database hangs).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::response::RETRY_AFTER_SECONDS;

/// How long a readiness probe waits for the store.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Live: the process answers.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "pass" }))
}

/// Ready: the store answers.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let failure = match tokio::time::timeout(PING_TIMEOUT, state.engine().store().ping()).await {
        Ok(Ok(())) => {
            return (
                StatusCode::OK,
                Json(json!({ "status": "pass", "checks": { "store": "pass" } })),
            )
                .into_response();
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", PING_TIMEOUT.as_secs()),
    };
    tracing::warn!(error = %failure, "readiness check failed");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "fail", "checks": { "store": "fail" } })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use caduceus_engine::{Engine, EngineConfig};
    use caduceus_store::{
        HistoryQuery, Store, StoreError, StoreLock, StoredVersion, WriteOp, WriteOutcome,
    };
    use tower::ServiceExt;

    use crate::{AppState, ServerConfig, app};

    /// A store whose database is "down" while `down` is set: every call is Unavailable.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait::async_trait]
    impl Store for Flaky {
        async fn read(&self, _: &str, _: &str) -> Result<Option<StoredVersion>, StoreError> {
            self.check().map(|()| None)
        }
        async fn vread(
            &self,
            _: &str,
            _: &str,
            _: u64,
        ) -> Result<Option<StoredVersion>, StoreError> {
            self.check().map(|()| None)
        }
        async fn write(&self, _: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        async fn history(&self, _: &HistoryQuery) -> Result<Vec<StoredVersion>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        async fn search(
            &self,
            _: &caduceus_search::SearchQuery,
            _: Option<&str>,
        ) -> Result<caduceus_store::search::SearchPage, StoreError> {
            self.check()?;
            Err(StoreError::Unsupported("search".into()))
        }
        async fn count_live(&self, _: Option<&str>) -> Result<u64, StoreError> {
            self.check().map(|()| 0)
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.check()
        }
        async fn scan_current(
            &self,
            _: Option<(String, String)>,
            _: usize,
        ) -> Result<Vec<StoredVersion>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        async fn meta(&self, _: &str) -> Result<Option<String>, StoreError> {
            self.check().map(|()| None)
        }
        async fn set_meta(&self, _: &str, _: &str) -> Result<(), StoreError> {
            self.check()
        }
        async fn insert_meta(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            self.check().map(|()| true)
        }
        async fn meta_list(&self, _: &str) -> Result<Vec<(String, String)>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        async fn delete_meta(&self, _: &str) -> Result<bool, StoreError> {
            self.check().map(|()| false)
        }
        async fn take_meta(&self, _: &str) -> Result<Option<String>, StoreError> {
            self.check().map(|()| None)
        }
        async fn lock(&self, _: &str) -> Result<StoreLock, StoreError> {
            self.check().map(|()| StoreLock::new(()))
        }
        async fn scan_versions(
            &self,
            _: Option<i64>,
            _: usize,
        ) -> Result<Vec<StoredVersion>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        async fn copy_in(&self, _: Vec<StoredVersion>) -> Result<(), StoreError> {
            self.check()
        }
        async fn count_versions(&self) -> Result<u64, StoreError> {
            self.check().map(|()| 0)
        }
    }

    async fn get(store: &Arc<Flaky>, uri: &str) -> axum::response::Response {
        let engine = Engine::new(store.clone(), EngineConfig::default());
        let app = app(AppState::new(
            engine,
            ServerConfig::default(),
            crate::AuthMode::Insecure,
        ));
        let request = Request::get(uri)
            .header("host", "localhost")
            .body(Body::empty())
            .unwrap_or_default();
        app.oneshot(request).await.unwrap_or_else(|e| match e {})
    }

    async fn body_json(response: axum::response::Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn ready_follows_the_store_and_an_outage_is_a_503_with_an_outcome() {
        let store = Arc::new(Flaky::default());
        assert_eq!(get(&store, "/health/ready").await.status(), 200);

        store.down.store(true, Ordering::SeqCst);
        let ready = get(&store, "/health/ready").await;
        assert_eq!(ready.status(), 503);
        assert!(ready.headers().contains_key("retry-after"));

        let read = get(&store, "/fhir/Patient/p1").await;
        assert_eq!(read.status(), 503);
        assert_eq!(
            read.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let outcome = body_json(read).await;
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "transient");

        // Nothing is cached: the next probe after the database is back is ready again.
        store.down.store(false, Ordering::SeqCst);
        assert_eq!(get(&store, "/health/ready").await.status(), 200);
        assert_eq!(get(&store, "/fhir/Patient/p1").await.status(), 404);
    }
}

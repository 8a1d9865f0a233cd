//! Test helpers: a self-removing temporary data folder and resource builders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use caduceus_store::{Method, WriteOp};
use serde_json::{Value, json};

/// A unique folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "caduceus-store-sqlite-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "active": true})
}

pub fn create(id: &str, family: &str) -> WriteOp {
    WriteOp::Create {
        resource_type: "Patient".into(),
        id: id.into(),
        resource: patient(family),
        index: Vec::new(),
        contained: Vec::new(),
    }
}

pub fn update(id: &str, family: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Update {
        resource_type: "Patient".into(),
        id: id.into(),
        resource: patient(family),
        index: Vec::new(),
        contained: Vec::new(),
        if_match,
        method: Method::Update,
    }
}

pub fn delete(id: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Delete {
        resource_type: "Patient".into(),
        id: id.into(),
        if_match,
    }
}

pub fn observation(id: &str) -> WriteOp {
    WriteOp::Create {
        resource_type: "Observation".into(),
        id: id.into(),
        // Parsed from text: with arbitrary_precision the decimal keeps its written form.
        resource: serde_json::from_str(
            r#"{"resourceType": "Observation", "status": "final", "valueQuantity": {"value": 200.00}}"#,
        )
        .expect("valid JSON"),
        index: Vec::new(),
        contained: Vec::new(),
    }
}

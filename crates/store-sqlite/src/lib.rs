//! The embedded store: FHIR resources in SQLite.

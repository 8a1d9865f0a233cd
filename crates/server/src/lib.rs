//! The FHIR REST API over HTTP.

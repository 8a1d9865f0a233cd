//! FHIR interactions over a store.

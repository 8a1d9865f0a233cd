//! Validation of FHIR R4 JSON resources against the compiled official definitions.

//! The FHIR definitions code generator behind `cargo xtask codegen`.
//!
//! It reads the official `hl7.fhir.r4.examples` 4.0.1 npm package (a `.tgz`), keeps the base
//! definitions (StructureDefinitions with derivation `specialization`, plus the abstract roots
//! `Resource` and `Element`), the SearchParameters, CompartmentDefinitions, ValueSets and
//! CodeSystems, and writes compact static tables for `caduceus-model` (see
//! `crates/model/src/defs.rs` for the types the tables are made of).
//!
//! Generation is deterministic (every table is sorted), so the committed output can be checked
//! for staleness by regenerating in memory and comparing; see the test at the end of this file.

mod constraints;
mod emit;
mod package;
mod search;
mod structures;
mod valuesets;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One generated source file: its name inside `crates/model/src/generated/` and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name, e.g. `types.rs`.
    pub name: &'static str,
    /// Complete file contents.
    pub contents: String,
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the definitions package is expected by default: `../shared/fhir/...` next to the
/// repository.
pub fn default_package_path() -> PathBuf {
    workspace_root().join("../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz")
}

/// The directory the generated tables are written to.
pub fn generated_dir() -> PathBuf {
    workspace_root().join("crates/model/src/generated")
}

/// Reads the package and produces every generated file, in memory.
pub fn generate(package_path: &Path) -> Result<Vec<GeneratedFile>> {
    let pkg = package::Package::load(package_path)?;
    let structures = structures::build(&pkg)?;
    let value_sets = valuesets::resolve(&pkg, &structures.required_bindings());
    let search = search::build(&pkg, &structures)?;
    let compartments = search::compartments(&pkg)?;
    Ok(emit::emit(&structures, &value_sets, &search, &compartments))
}

/// Writes the generated files, replacing the previous ones.
pub fn write_files(dir: &Path, files: &[GeneratedFile]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in files {
        let path = dir.join(f.name);
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when the committed tables are not what the generator produces today.
    #[test]
    fn committed_tables_are_fresh() {
        let package = default_package_path();
        if !package.exists() {
            println!("skipped: ../shared not present");
            return;
        }
        let files = generate(&package).expect("generation succeeds");
        let dir = generated_dir();
        let mut stale = Vec::new();
        for f in &files {
            let committed = std::fs::read_to_string(dir.join(f.name)).unwrap_or_default();
            if committed != f.contents {
                stale.push(f.name);
            }
        }
        assert!(
            stale.is_empty(),
            "generated tables are stale ({stale:?}); run `cargo xtask codegen` and commit"
        );
    }
}

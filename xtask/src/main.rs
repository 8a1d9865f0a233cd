//! `cargo xtask <task>`: development tasks that are not part of the product.
//!
//! The only task is `codegen`, which compiles the official FHIR R4 definitions package into the
//! static Rust tables under `crates/model/src/generated/`. Those files are committed, so a build
//! of the product never needs the package; rerun this after changing the generator.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("codegen") => {
            let package = match args.next() {
                Some(p) => PathBuf::from(p),
                None => xtask::default_package_path(),
            };
            let files = xtask::generate(&package)
                .with_context(|| format!("generating from {}", package.display()))?;
            let out_dir = xtask::generated_dir();
            xtask::write_files(&out_dir, &files)?;
            let total: usize = files.iter().map(|f| f.contents.len()).sum();
            println!(
                "wrote {} files ({} KiB) to {}",
                files.len(),
                total / 1024,
                out_dir.display()
            );
            Ok(())
        }
        _ => bail!("usage: cargo xtask codegen [path/to/hl7.fhir.r4.examples-4.0.1.tgz]"),
    }
}

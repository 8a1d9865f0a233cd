//! Reading the definitions package: the `.tgz` is unpacked in memory and only the JSON files
//! the generator needs are parsed (examples are left alone).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// The file-name prefixes (under `package/`) the generator reads.
const WANTED: &[&str] = &[
    "StructureDefinition-",
    "SearchParameter-",
    "CompartmentDefinition-",
    "ValueSet-",
    "CodeSystem-",
    "Bundle-searchParams.json",
];

/// The parsed definition files of the package, keyed by file name (sorted, so every
/// iteration is deterministic).
pub struct Package {
    files: BTreeMap<String, Value>,
}

impl Package {
    /// Unpacks and parses the package at `path`.
    pub fn load(path: &Path) -> Result<Package> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = BTreeMap::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            let Some(base) = name.strip_prefix("package/") else {
                continue;
            };
            if base.contains('/')
                || !base.ends_with(".json")
                || !WANTED.iter().any(|p| base.starts_with(p))
            {
                continue;
            }
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let value: Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {base}"))?;
            files.insert(base.to_owned(), value);
        }
        Ok(Package { files })
    }

    /// The parsed file called `name`, if the package has it.
    pub fn file(&self, name: &str) -> Option<&Value> {
        self.files.get(name)
    }

    /// The resources of the files whose names start with `prefix`, in file-name order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.files
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }
}

/// `v[key]` as a string, or "".
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `v[key]` as an array, or an empty slice.
pub fn arr_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

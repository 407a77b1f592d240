//! Result files: JSON (versioned schema, see docs/results.md) and CSV, written atomically.

use serde::Serialize;
use std::path::Path;

use crate::error::{ExperimentError, Result};

/// Version of the JSON schema of every result file; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ExperimentError::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// CSV from a header and string records.
pub fn write_csv(path: &Path, header: &[&str], records: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| ExperimentError::Csv(e.to_string());
    w.write_record(header).map_err(err)?;
    for r in records {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| ExperimentError::Csv(e.to_string()))?;
    write_atomic(path, &bytes)
}

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

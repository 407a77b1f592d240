//! Reading the transformers references in tests/fixtures/experiments/ (shared by the reference
//! tests; `scripts/make-experiment-references.sh` writes them).
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference file of one case (`llama`, `smollm2`, ...).
pub fn reference(case: &str) -> Value {
    let p = root()
        .join("tests/fixtures/experiments")
        .join(format!("{case}.json"));
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/make-experiment-references.sh)", p.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn u(v: &Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}")) as usize
}

/// The model a reference file names (a fixture directory or a real GGUF under models/).
pub fn load_model(r: &Value) -> strata_model::Model {
    let path = root().join(r["model"].as_str().unwrap());
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/fetch-models.sh`",
        path.display()
    );
    strata_model::Model::load(path.to_str().unwrap(), &strata_model::LoadOptions::default()).unwrap()
}

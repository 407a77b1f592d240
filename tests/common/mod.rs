//! Helpers shared by the integration tests: fixture paths, scratch folders and tensor comparison.
#![allow(dead_code)]

use candle_core::{DType, Tensor};
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture families under tests/fixtures/models (scripts/make-fixtures.py).
pub const FAMILIES: &[&str] = &[
    "gpt2",
    "llama",
    "llama_tied",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "phi3",
];

pub fn fixture_model(family: &str) -> PathBuf {
    repo_root().join("tests/fixtures/models").join(family)
}

/// A fixture family's model on the CPU, f32; `fused`: on the decoder's fused-kernel path (the
/// kernels' CPU twins where CUDA runs the kernels).
pub fn load_fixture(family: &str, fused: bool) -> strata_model::Model {
    let path = fixture_model(family);
    let mut model = strata_model::Model::load(path.to_str().unwrap(), &Default::default()).unwrap();
    if fused {
        model.decoder = model.decoder.with_fused_kernels();
    }
    model
}

/// A real model under `models/`; fails (never skips) with the command that fetches it.
pub fn real_model(file: &str) -> PathBuf {
    let p = repo_root().join("models").join(file);
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/fetch-models.sh` first",
        p.display()
    );
    p
}

/// A path in a fresh folder under the system's temp dir; the folder and everything in it are
/// removed when this is dropped, whether the test passes or panics. Bind it to a variable for as
/// long as the path is used (`scratch(..).join(..)` alone would outlive the folder).
pub struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// A new scratch folder whose name starts with `strata-<name>-`.
pub fn scratch(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("strata-{name}-"))
        .tempdir()
        .expect("creating a scratch folder in the temp dir");
    let path = dir.path().to_path_buf();
    Scratch { _dir: dir, path }
}

impl Scratch {
    /// The same folder, standing for `name` inside it (e.g. a file to write there).
    pub fn child(self, name: impl AsRef<Path>) -> Scratch {
        Scratch {
            path: self.path.join(name),
            _dir: self._dir,
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

/// Max |a - b| over entries where the reference is finite; both must agree on which entries
/// are -inf (masked attention scores).
pub fn max_abs_diff(actual: &Tensor, expected: &Tensor) -> f32 {
    assert_eq!(actual.dims(), expected.dims(), "shape mismatch");
    let a = actual
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let e = expected
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut worst = 0f32;
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        if y.is_infinite() {
            assert_eq!(x, y, "entry {i}: expected {y}, got {x}");
            continue;
        }
        assert!(x.is_finite(), "entry {i}: expected {y}, got {x}");
        worst = worst.max((x - y).abs());
    }
    worst
}

/// Max |x| of a tensor (the scale tolerances are relative to).
pub fn max_abs(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

//! Compiles the workspace's `kernels/*.cu` to PTX with nvcc, only with the `cuda` feature
//! (a CPU build never looks for a CUDA toolkit). nvcc: $NVCC, else $CUDA_ROOT/bin/nvcc (also
//! CUDA_HOME/CUDA_PATH), else `nvcc` on PATH. Target: `compute_$CUDA_COMPUTE_CAP` PTX (default
//! 90), JIT-compiled by the driver at first use for that capability or newer.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = manifest.join("../../kernels");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for var in ["NVCC", "CUDA_ROOT", "CUDA_HOME", "CUDA_PATH", "CUDA_COMPUTE_CAP"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed={}", kernels.display());
    let cap = env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let cap = cap.trim_end_matches(['a', 'f']);
    let nvcc = find_nvcc();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&kernels)
        .unwrap_or_else(|e| panic!("{}: {e}", kernels.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu" || x == "cuh"))
        .collect();
    sources.sort();
    for src in &sources {
        println!("cargo::rerun-if-changed={}", src.display());
    }
    for src in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
    {
        let stem = src.file_stem().unwrap().to_str().unwrap();
        let ptx = out.join(format!("{stem}.ptx"));
        let status = Command::new(&nvcc)
            .args([
                "--ptx",
                "-O3",
                "-std=c++17",
                &format!("-arch=compute_{cap}"),
                "-I",
            ])
            .arg(&kernels)
            .arg(src)
            .arg("-o")
            .arg(&ptx)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nvcc ({}): {e}. Build the cuda feature with scripts/build-cuda.sh, \
                     or set NVCC / CUDA_ROOT",
                    nvcc.display()
                )
            });
        assert!(status.success(), "nvcc failed on {}", src.display());
    }
}

fn find_nvcc() -> PathBuf {
    if let Some(n) = env::var_os("NVCC") {
        return PathBuf::from(n);
    }
    for var in ["CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = env::var_os(var) {
            let p = Path::new(&root).join("bin/nvcc");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("nvcc")
}

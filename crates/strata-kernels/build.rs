//! Compiles the workspace's `kernels/*.cu` to PTX with nvcc, only with the `cuda` feature
//! (a CPU build never looks for a CUDA toolkit). nvcc and flags: `nvcc.rs`. Target:
//! `compute_$CUDA_COMPUTE_CAP` PTX (default 90), JIT-compiled by the driver at first use for that
//! capability or newer.
use std::env;

include!("nvcc.rs");

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=nvcc.rs");
    println!("cargo::rustc-check-cfg=cfg(fused_attention_unavailable)");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for var in ["NVCC", "CUDA_ROOT", "CUDA_HOME", "CUDA_PATH", "CUDA_COMPUTE_CAP"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let (kernels, files) = kernel_files(&manifest);
    println!("cargo::rerun-if-changed={}", kernels.display());
    let cap = env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let cap = cap.trim_end_matches(['a', 'f']);
    // The fused attention kernel needs bf16 tensor cores and cp.async (compute capability 8.0);
    // built for an older GPU, its entry points only trap and the decoder never launches them.
    if cap.parse::<u32>().is_ok_and(|c| c < 80) {
        println!("cargo::rustc-cfg=fused_attention_unavailable");
    }
    let nvcc = find_nvcc();
    for src in &files {
        println!("cargo::rerun-if-changed={}", src.display());
    }
    for src in files.iter().filter(|p| p.extension().is_some_and(|x| x == "cu")) {
        let stem = src.file_stem().unwrap().to_str().unwrap();
        let status = nvcc_command(&nvcc, &kernels, src, &format!("compute_{cap}"))
            .arg("--ptx")
            .arg("-o")
            .arg(out.join(format!("{stem}.ptx")))
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

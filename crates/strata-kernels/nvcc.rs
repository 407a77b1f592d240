// How `kernels/*.cu` are compiled: shared (`include!`) by build.rs, which makes the PTX the
// `cuda` feature embeds, and by tests/nvcc.rs, which compiles the same sources to GPU code on
// every `cargo test` so that a kernel that nvcc or ptxas rejects fails before a GPU is at hand.
use std::path::{Path, PathBuf};

/// nvcc flags of every kernel besides `-arch` and the output kind.
const NVCC_FLAGS: [&str; 2] = ["-O3", "-std=c++17"];

/// `$NVCC`, else `bin/nvcc` under `$CUDA_ROOT`, `$CUDA_HOME` or `$CUDA_PATH`, else `nvcc` on PATH.
fn find_nvcc() -> PathBuf {
    if let Some(n) = std::env::var_os("NVCC") {
        return PathBuf::from(n);
    }
    for var in ["CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var) {
            let p = Path::new(&root).join("bin/nvcc");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("nvcc")
}

/// The workspace's kernel folder and its `.cu` (kernel) and `.cuh` (header) files, sorted.
fn kernel_files(manifest_dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let dir = manifest_dir.join("../../kernels");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu" || x == "cuh"))
        .collect();
    files.sort();
    (dir, files)
}

/// An nvcc command compiling the kernel `src` (with `-I` the kernel folder) for `arch`
/// (`compute_90` for PTX, `sm_90` for GPU code); the caller adds the output kind and file.
fn nvcc_command(nvcc: &Path, kernels: &Path, src: &Path, arch: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(nvcc);
    cmd.args(NVCC_FLAGS).arg(format!("-arch={arch}")).arg("-I").arg(kernels).arg(src);
    cmd
}

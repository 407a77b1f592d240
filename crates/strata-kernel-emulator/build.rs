//! Compiles every `kernels/*.cu` as host C++ (with `cpp/cuda_emulation.h` force-included and the
//! `cpp/` stand-ins for CUDA's headers first on the include path) together with the fiber
//! launcher `cpp/launch.cpp` into one static library. Needs a C++17 compiler with `_Float16`
//! (GCC ≥ 12, Clang ≥ 15 on x86-64 and aarch64); no CUDA toolkit.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let cpp = manifest.join("cpp");
    let kernels = manifest.join("../../kernels");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&kernels)
        .unwrap_or_else(|e| panic!("{}: {e}", kernels.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    sources.sort();
    println!("cargo::rerun-if-changed={}", kernels.display());
    println!("cargo::rerun-if-changed={}", cpp.display());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(2)
        .include(&cpp)
        .include(&kernels)
        .flag("-include")
        .flag(cpp.join("cuda_emulation.h").to_str().unwrap())
        .flag_if_supported("-Wno-unknown-pragmas")
        .flag_if_supported("-Wno-unused-parameter")
        .file(cpp.join("launch.cpp"));
    for src in &sources {
        println!("cargo::rerun-if-changed={}", src.display());
    }
    // The .cu files are C++ to the host compiler.
    build.flag("-x").flag("c++");
    for src in &sources {
        build.file(src);
    }
    build.compile("strata_kernel_emulation");
}

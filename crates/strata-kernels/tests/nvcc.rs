//! Every `kernels/*.cu` compiled to GPU code (nvcc, then ptxas) for the compute capabilities users
//! build for, on every `cargo test`: the CPU twins and the emulator (`strata-kernel-emulator`)
//! check what the kernels compute, this checks that the GPU toolchain accepts them as written —
//! no compile error, no warning, no register spill — and that each file defines exactly the
//! entry points the launchers in `src/cuda.rs` load by name. nvcc comes from NVIDIA's wheels:
//! `scripts/test.sh` installs them (`scripts/build-cuda.sh --nvcc`) and sets `NVCC`.
use std::collections::BTreeSet;
use std::sync::Mutex;

include!("../nvcc.rs");

/// T4 / RTX 20xx (7.5: the fused attention compiles to stubs there), A100 (8.0), L4 / RTX 40xx
/// (8.9), H100 / H200 (9.0).
const CAPABILITIES: [&str; 4] = ["75", "80", "89", "90"];

/// Shared memory a block may use at each capability (static + dynamic, with the opt-in the
/// launcher sets; CUDA programming guide, technical specifications per compute capability).
fn max_shared_bytes(cap: &str) -> u32 {
    1024 * match cap {
        "75" => 64,
        "80" => 163,
        "89" => 99,
        "90" => 227,
        other => panic!("no shared memory limit known for sm_{other}"),
    }
}

/// The dynamic shared memory `src/cuda.rs` launches an entry point with.
fn dynamic_shared_bytes(entry: &str) -> u32 {
    match entry.strip_prefix("fused_attention_") {
        Some(rest) => {
            let head_dim = rest.rsplit('_').next().and_then(|e| e.parse().ok()).unwrap();
            strata_kernels::fused_attention_dynamic_shared_bytes(candle_core::DType::BF16, head_dim) as u32
        }
        None => 0,
    }
}

/// What ptxas said of one entry point.
#[derive(Debug)]
struct Entry {
    name: String,
    registers: u32,
    smem_bytes: u32,
    spill_bytes: u32,
}

/// Compiles `src` to a cubin for `sm_{cap}` with ptxas' resource report; panics on failure or
/// on any warning, with nvcc's output.
fn compile(nvcc: &Path, kernels: &Path, src: &Path, cap: &str) -> Vec<Entry> {
    let cubin = std::env::temp_dir().join(format!(
        "strata-nvcc-{}-{}-sm{cap}.cubin",
        std::process::id(),
        src.file_stem().unwrap().to_str().unwrap()
    ));
    let out = nvcc_command(nvcc, kernels, src, &format!("sm_{cap}"))
        .args(["-cubin", "-Xptxas", "-v,-warn-spills,-warn-lmem-usage", "-o"])
        .arg(&cubin)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nvcc.display()));
    let _ = std::fs::remove_file(&cubin);
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let what = format!("{} for sm_{cap}", src.display());
    assert!(out.status.success(), "nvcc failed on {what}:\n{log}");
    assert!(
        !log.to_lowercase().contains("warning"),
        "nvcc warned on {what}:\n{log}"
    );
    parse_ptxas_report(&log)
}

/// The entry points of a `ptxas -v` report with their registers, shared memory and spills.
fn parse_ptxas_report(log: &str) -> Vec<Entry> {
    // The sum of the numbers followed by `unit` ("registers", "bytes smem", "bytes spill"...).
    let count = |line: &str, unit: &str| -> u32 {
        let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let unit: Vec<&str> = unit.split(' ').collect();
        words
            .windows(unit.len() + 1)
            .filter(|w| w[1..] == unit[..])
            .map(|w| {
                w[0].parse::<u32>()
                    .unwrap_or_else(|_| panic!("ptxas report: {line}"))
            })
            .sum()
    };
    let mut entries: Vec<Entry> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap().to_string();
            entries.push(Entry {
                name,
                registers: 0,
                smem_bytes: 0,
                spill_bytes: 0,
            });
        } else if let Some(e) = entries.last_mut() {
            e.spill_bytes += count(line, "bytes spill");
            e.registers += count(line, "registers");
            e.smem_bytes += count(line, "bytes smem");
        }
    }
    entries
}

/// The entry points a kernel file must define: the names `src/cuda.rs` asks for
/// (`{file}_{dtype}`; the fused attention `{file}_{dtype}_{head_dim}` for bf16/f16 only, and
/// `attention_tile_classes`, which it launches first).
fn expected_entries(stem: &str) -> BTreeSet<String> {
    if stem == "fused_attention" {
        ["bf16", "f16"]
            .iter()
            .flat_map(|t| strata_kernels::FUSED_ATTENTION_HEAD_DIMS.map(|e| format!("{stem}_{t}_{e}")))
            .chain(["attention_tile_classes".to_string()])
            .collect()
    } else {
        ["f32", "bf16", "f16"]
            .iter()
            .map(|t| format!("{stem}_{t}"))
            .collect()
    }
}

#[test]
fn every_kernel_compiles_for_the_gpu_without_warnings_or_spills() {
    let nvcc = find_nvcc();
    let runs = std::process::Command::new(&nvcc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        runs,
        "nvcc not found ({}): `bash scripts/test.sh` installs it; by hand, \
         `export NVCC=$(bash scripts/build-cuda.sh --nvcc)` (NVIDIA's compiler wheels, ~100 MB, no GPU needed)",
        nvcc.display()
    );
    let (kernels, files) = kernel_files(Path::new(env!("CARGO_MANIFEST_DIR")));
    let sources: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    assert!(!sources.is_empty(), "no kernels in {}", kernels.display());
    let jobs: Mutex<Vec<(&PathBuf, &str)>> = Mutex::new(
        sources
            .iter()
            .flat_map(|s| CAPABILITIES.map(|c| (*s, c)))
            .collect(),
    );
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some((src, cap)) = jobs.lock().unwrap().pop() else {
                    break;
                };
                let entries = compile(&nvcc, &kernels, src, cap);
                results.lock().unwrap().push((src.clone(), cap, entries));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (src, cap, entries) in &results {
        let stem = src.file_stem().unwrap().to_str().unwrap();
        for e in entries {
            let dynamic = dynamic_shared_bytes(&e.name);
            println!(
                "sm_{cap} {:<28} {:>3} registers {:>6} B shared (+{dynamic} B dynamic) {} B spilled",
                e.name, e.registers, e.smem_bytes, e.spill_bytes
            );
            assert_eq!(e.spill_bytes, 0, "{} spills registers on sm_{cap}", e.name);
            assert!(
                e.smem_bytes + dynamic <= max_shared_bytes(cap),
                "{} needs {} B of shared memory per block, more than sm_{cap} has",
                e.name,
                e.smem_bytes + dynamic
            );
        }
        let defined: BTreeSet<String> = entries.iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            defined,
            expected_entries(stem),
            "{}: entry points for sm_{cap} differ from what src/cuda.rs loads",
            src.display()
        );
    }
}

#[test]
fn ptxas_report_is_read() {
    let log = "ptxas info    : Compiling entry function 'row_norm_bf16' for 'sm_90'\n\
               ptxas info    : Function properties for row_norm_bf16\n    \
               8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n\
               ptxas info    : Used 30 registers, used 1 barriers, 128 bytes smem, 400 bytes cmem[0]\n";
    let e = &parse_ptxas_report(log)[0];
    assert_eq!(
        (e.name.as_str(), e.registers, e.smem_bytes, e.spill_bytes),
        ("row_norm_bf16", 30, 128, 8)
    );
}

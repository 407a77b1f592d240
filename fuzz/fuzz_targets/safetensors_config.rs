//! A checkpoint directory from any bytes: the first 4 bytes (little-endian) give the length of
//! the config.json part, the rest is model.safetensors. The config parser, the safetensors header
//! validation and the whole directory load must fail cleanly, never panic or allocate gigabytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("strata-fuzz-st-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = (u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize).min(data.len() - 4);
    let (config, weights) = data[4..].split_at(n);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(config) {
        if let Ok(c) = strata_model::ModelConfig::from_hf_json(&json) {
            let _ = c.parameter_count();
        }
    }
    let dir = scratch();
    std::fs::write(dir.join("config.json"), config).expect("write config");
    let weights_path = dir.join("model.safetensors");
    std::fs::write(&weights_path, weights).expect("write weights");
    let _ = strata_model::load::validate_safetensors_header(&weights_path);
    let _ = strata_model::Model::load(dir.to_str().unwrap(), &strata_model::LoadOptions::default());
});

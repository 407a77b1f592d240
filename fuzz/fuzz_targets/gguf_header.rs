//! Any bytes as a GGUF file: reading the header, building the HF config, checking tensor sizes
//! against the file and listing the tensors must return (an error or a value), never panic, hang
//! or allocate much more than the file's size. No tensor data is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("strata-fuzz-gguf-{}.gguf", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    let Ok(header) = strata_model::load::gguf::read_gguf_header(path) else {
        return;
    };
    let _ = header.architecture();
    let _ = header.hf_config();
    let _ = header.check_sizes();
    if let Ok(entries) = header.entries() {
        let _ = strata_model::load::gguf::quant_groups(&entries);
    }
    // The config built from the metadata goes on to the decoder's config parser.
    if let Ok(config) = header.hf_config() {
        if let Ok(c) = strata_model::ModelConfig::from_hf_json(&config) {
            let _ = c.parameter_count();
        }
    }
    let _ = strata_model::tokenizer_gguf::tokenizer_from_gguf(&header.content.metadata);
});

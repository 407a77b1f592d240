//! Any text as a probe suite file: parsing must name the line and field of what is wrong, and
//! validation against a real tokenizer (the llama fixture's) must never panic or blow up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use strata_experiments::probes::{SuiteFile, SuiteOptions};
use strata_model::Tokenizer;

fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/llama/tokenizer.json");
        Tokenizer::from_file(&p).expect("fixture tokenizer")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let tok = tokenizer();
    let Ok(suite) = SuiteFile::parse("fuzz", Path::new("fuzz.jsonl"), text) else {
        return;
    };
    for skip_invalid in [false, true] {
        let opts = SuiteOptions {
            skip_invalid,
            vocab_size: None,
        };
        if let Ok(s) = suite.validate(tok, &opts) {
            let _ = s.items();
            let _ = s.summary();
        }
    }
});

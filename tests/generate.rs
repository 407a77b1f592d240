//! `strata generate` (greedy) on every fixture family against transformers' greedy `generate`
//! (`greedy_new_ids` in each fixture's reference.json, written by scripts/make-fixtures.py).

mod common;

use common::{fixture_model, FAMILIES};
use std::process::Command;

fn ids_of(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn greedy_generation_matches_transformers() {
    for family in FAMILIES {
        let dir = fixture_model(family);
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
        let prompt: Vec<String> = ids_of(&reference["input_ids"])
            .iter()
            .map(u64::to_string)
            .collect();
        let expected = ids_of(&reference["greedy_new_ids"]);
        assert!(!expected.is_empty(), "{family}: no greedy reference");
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["generate", dir.to_str().unwrap(), "--tokens", &prompt.join(",")])
            .args(["-n", &expected.len().to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{family}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ids: "))
            .unwrap_or_else(|| panic!("{family}: no ids line in {stdout}"));
        let got: Vec<u64> = serde_json::from_str(line).unwrap();
        assert_eq!(got, expected, "{family}");
    }
}

//! `strata generate` (greedy) on every fixture family against transformers' greedy `generate`
//! (`greedy_new_ids` in each fixture's reference.json, written by scripts/make-fixtures.py), and
//! the key/value-cached decoding it runs on against full forwards.

mod common;

use candle_core::IndexOp;
use common::{fixture_model, load_fixture, max_abs, max_abs_diff, FAMILIES};
use std::process::Command;
use strata_model::{NoHooks, TokenBatch};

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

/// `forward_cached` after the prompt, one token and then two at once, against full forwards of
/// the longer sequences at the same positions, on the plain and the fused-kernel path: f32, within
/// 1e-5 of the logits' scale (the same products, the cached keys concatenated before attention).
#[test]
fn cached_decoding_equals_full_forwards() {
    for family in FAMILIES {
        for fused in [false, true] {
            let model = load_fixture(family, fused);
            let ids: Vec<u32> = (0..12u32)
                .map(|i| (i * 7 + 3) % model.config.vocab_size as u32)
                .collect();
            let full = model
                .decoder
                .forward(&TokenBatch::single(ids.clone()).unwrap(), &mut NoHooks)
                .unwrap();
            let (_, kv, _) = model
                .decoder
                .forward_with_kv(&TokenBatch::single(ids[..9].to_vec()).unwrap(), &mut NoHooks)
                .unwrap();
            assert_eq!(kv.len(), 9, "{family}");
            let (one, kv) = model.decoder.forward_cached(&ids[..10], &kv).unwrap();
            let (two, kv) = model.decoder.forward_cached(&ids, &kv).unwrap();
            assert_eq!(kv.len(), 12, "{family}");
            for (got, from) in [(one, 9), (two, 10)] {
                let want = full.i((.., from..from + got.dim(1).unwrap(), ..)).unwrap();
                let diff = max_abs_diff(&got, &want);
                let scale = max_abs(&want).max(1.0);
                assert!(
                    diff <= 1e-5 * scale,
                    "{family} (fused {fused}): cached logits from position {from} differ by {diff} (scale {scale})"
                );
            }
        }
    }
}

#[test]
fn cached_decoding_rejects_a_cache_that_does_not_fit() {
    let model = load_fixture("llama", false);
    let (_, kv, _) = model
        .decoder
        .forward_with_kv(&TokenBatch::single(vec![1, 2, 3]).unwrap(), &mut NoHooks)
        .unwrap();
    let err = model
        .decoder
        .forward_cached(&[1, 2, 3], &kv)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("a cache of 3 positions"), "{err}");
}

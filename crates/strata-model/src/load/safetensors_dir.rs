//! A local Hugging Face checkpoint directory: config.json, model.safetensors or a sharded
//! `model.safetensors.index.json`, tokenizer.json. Weights are memory-mapped.

use candle_nn::VarBuilder;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{check_vocab, refuse_pickle, LoadOptions, Model};
use crate::config::ModelConfig;
use crate::decoder::HookedDecoder;
use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;

pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Model> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| ModelError::file(&config_path, format!("cannot read: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::file(&config_path, format!("not valid JSON: {e}")))?;
    let config =
        ModelConfig::from_hf_json(&json).map_err(|e| ModelError::file(&config_path, e.to_string()))?;

    let files = weight_files(dir)?;
    let mut stored = std::collections::BTreeMap::<String, usize>::new();
    for f in &files {
        for dtype in check_safetensors(f)? {
            *stored.entry(dtype).or_default() += 1;
        }
    }
    // SAFETY: the files are memory-mapped read-only; strata never writes to them while loaded.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, opts.dtype, &opts.device) }
        .map_err(|e| ModelError::file(dir, format!("cannot map weights: {e}")))?;
    let decoder =
        HookedDecoder::load(config.clone(), &vb).map_err(|e| ModelError::file(dir, e.to_string()))?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = if tok_path.is_file() {
        Some(Tokenizer::from_file(&tok_path)?)
    } else {
        None
    };
    let model = Model {
        name: dir.display().to_string(),
        config,
        decoder,
        tokenizer,
        stored_types: stored
            .into_iter()
            .map(|(t, n)| ("all".to_string(), t, n))
            .collect(),
    };
    check_vocab(&model)?;
    Ok(model)
}

/// The safetensors files of a checkpoint: the shards an index names, or `model.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::file(&index, e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::file(&index, format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::file(&index, "field 'weight_map' missing or not an object"))?;
        let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        return shards
            .into_iter()
            .map(|s| {
                let p = dir.join(s);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(ModelError::file(
                        &index,
                        format!(
                            "names shard '{s}' which is missing from {}; download every shard the index \
                             names (an interrupted download leaves some out)",
                            dir.display()
                        ),
                    ))
                }
            })
            .collect();
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let others: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::file(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    if !others.is_empty() {
        return Ok(others);
    }
    refuse_pickle(dir)
}

/// Validates a safetensors header against the file size before anything is mapped, and
/// returns the dtypes of its tensors.
pub fn check_safetensors(path: &Path) -> Result<Vec<String>> {
    use std::io::Read;
    let bad = |m: String| ModelError::file(path, m);
    let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let len = f.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| bad(format!("truncated: {len} bytes, not even a safetensors header")))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > 100_000_000 || 8 + header_len > len {
        return Err(bad(format!(
            "truncated or corrupt: header claims {header_len} bytes but the file has {len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| bad("header is not a JSON object".into()))?;
    let data_len = len - 8 - header_len;
    let mut dtypes = Vec::new();
    for (name, info) in obj.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let size =
            dtype_size(dtype).ok_or_else(|| bad(format!("tensor '{name}' has unknown dtype '{dtype}'")))?;
        let shape: Vec<u64> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .ok_or_else(|| bad(format!("tensor '{name}' has no shape")))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .filter(|o: &Vec<u64>| o.len() == 2)
            .ok_or_else(|| bad(format!("tensor '{name}' has no data_offsets")))?;
        let elems = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let bytes = elems.and_then(|e| e.checked_mul(size));
        if bytes != Some(offsets[1].saturating_sub(offsets[0])) || offsets[0] > offsets[1] {
            return Err(bad(format!(
                "tensor '{name}': shape {shape:?} does not match its data offsets {offsets:?}"
            )));
        }
        if offsets[1] > data_len {
            return Err(bad(format!(
                "truncated: tensor '{name}' ends at byte {} of the data but the file holds {data_len} data bytes",
                offsets[1]
            )));
        }
        dtypes.push(dtype.to_string());
    }
    Ok(dtypes)
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "U8" | "I8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

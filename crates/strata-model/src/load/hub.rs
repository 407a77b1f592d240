//! Hugging Face hub repos, resolved with hf-hub into its cache (HF_HOME honoured).
//! With `HF_HUB_OFFLINE=1` only the local cache is consulted.

use hf_hub::{Cache, Repo, RepoType};
use std::path::PathBuf;

use crate::error::{ModelError, Result};

/// Files a checkpoint may need; those absent from a repo are skipped (only config.json and the
/// weights are required).
const OPTIONAL: &[&str] = &[
    "tokenizer.json",
    "model.safetensors.index.json",
    "model.safetensors",
];

/// Downloads (or finds in the cache) a repo's files and returns the snapshot directory.
pub fn resolve(repo_id: &str, revision: Option<&str>) -> Result<PathBuf> {
    let revision = revision.unwrap_or("main").to_string();
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.clone());
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if offline {
        return resolve_cached(repo_id, &revision, repo);
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| ModelError::Input(format!("hub: {e}")))?;
    let api_repo = api.repo(repo);
    let config = api_repo.get("config.json").map_err(|e| {
        ModelError::Input(format!(
            "hub repo '{repo_id}' (revision {revision}): config.json: {e}"
        ))
    })?;
    for name in OPTIONAL {
        let got = api_repo.get(name);
        if *name == "model.safetensors.index.json" {
            if let Ok(index) = got {
                for shard in shard_names(&index)? {
                    api_repo.get(&shard).map_err(|e| {
                        ModelError::Input(format!("hub repo '{repo_id}': shard {shard}: {e}"))
                    })?;
                }
            }
        }
    }
    Ok(config.parent().map(PathBuf::from).unwrap_or_default())
}

fn resolve_cached(repo_id: &str, revision: &str, repo: Repo) -> Result<PathBuf> {
    let cache = Cache::from_env();
    let cached = cache.repo(repo);
    let config = cached.get("config.json").ok_or_else(|| {
        ModelError::Input(format!(
            "HF_HUB_OFFLINE is set and '{repo_id}' (revision {revision}) is not in the hub cache at {}; \
             download it first or unset HF_HUB_OFFLINE",
            cache.path().display()
        ))
    })?;
    Ok(config.parent().map(PathBuf::from).unwrap_or_default())
}

fn shard_names(index: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::file(index, e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::file(index, format!("not valid JSON: {e}")))?;
    let mut shards: Vec<String> = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| m.values().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

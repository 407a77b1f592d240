//! `strata inspect`: the architecture table of a model, or one CSV row joinable to the dataset.
use anyhow::Result;
use clap::{Args, ValueEnum};
use strata_model::{HookLayout, HookPoint};

use super::common::ModelArgs;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let model = args.model.load()?;
    let c = &model.config;
    // Column names and vocabulary of the bundled dataset, so a CSV row joins it directly.
    let positional = match c.positional_scheme() {
        "rotary" => "rope",
        other => other,
    };
    let norm = match c.norm {
        strata_model::config::NormKind::LayerNorm => "LayerNorm",
        _ => "RMSNorm",
    };
    let fields: Vec<(&str, String)> = vec![
        ("model_id", model.name.clone()),
        ("arch_class", c.family.hf_class().to_string()),
        ("params_b", format!("{:.6}", c.parameter_count() as f64 / 1e9)),
        ("d_model", c.d_model.to_string()),
        ("d_ffn", c.d_mlp.to_string()),
        ("n_layers", c.n_layers.to_string()),
        ("n_heads", c.n_heads.to_string()),
        ("n_kv_heads", c.n_kv_heads.to_string()),
        ("head_dim", c.d_head.to_string()),
        ("vocab_size", c.vocab_size.to_string()),
        ("context_length", c.max_position_embeddings.to_string()),
        ("activation", c.activation.name().to_string()),
        ("gated_mlp", c.gated_mlp.to_string()),
        ("norm", norm.to_string()),
        ("positional", positional.to_string()),
        ("family", c.family.to_string()),
        ("norm_detail", c.norm.name().to_string()),
        ("parameters", c.parameter_count().to_string()),
        ("tied_embeddings", c.tie_embeddings.to_string()),
        ("dtype", args.model.dtype.clone()),
    ];
    match args.format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(fields.iter().map(|(k, _)| *k))?;
            w.write_record(fields.iter().map(|(_, v)| v.as_str()))?;
            w.flush()?;
        }
        Format::Json => {
            let mut obj = serde_json::Map::new();
            for (k, v) in &fields {
                obj.insert(k.to_string(), serde_json::Value::String(v.clone()));
            }
            let groups: Vec<_> = model
                .stored_types
                .iter()
                .map(|(g, t, n)| serde_json::json!({"group": g, "type": t, "tensors": n}))
                .collect();
            obj.insert("stored_types".into(), serde_json::Value::Array(groups));
            obj.insert(
                "hook_points".into(),
                serde_json::json!(hook_names(c, HookPoint::all)),
            );
            obj.insert(
                "hook_points_on_request".into(),
                serde_json::json!(hook_names(c, HookPoint::on_request)),
            );
            println!("{}", serde_json::to_string_pretty(&obj)?);
        }
        Format::Table => {
            for (k, v) in &fields {
                println!("{k:<16} {v}");
            }
            let windows: Vec<String> = c
                .layer_windows
                .iter()
                .map(|w| w.map_or("full".into(), |w| w.to_string()))
                .collect();
            println!("{:<16} {}", "attention", windows.join(" "));
            println!("\nhook points (l = 0..{}):", c.n_layers.saturating_sub(1));
            for name in hook_names(c, HookPoint::all) {
                println!("  {name}");
            }
            println!("on request only (TransformerLens' split inputs):");
            for name in hook_names(c, HookPoint::on_request) {
                println!("  {name}");
            }
            if !model.stored_types.is_empty() {
                println!("\nstored tensor types (group, type, tensors):");
                for (g, t, n) in &model.stored_types {
                    println!("  {g:<24} {t:<6} {n}");
                }
            }
        }
    }
    Ok(())
}

/// The model's hook points that `list` gives, in forward order, each per-block one once as
/// `blocks.{l}.…`.
fn hook_names(c: &strata_model::ModelConfig, list: fn(HookLayout) -> Vec<HookPoint>) -> Vec<String> {
    let one_block = HookLayout {
        n_layers: 1,
        ..HookLayout::from(c)
    };
    list(one_block)
        .iter()
        .map(|p| p.to_string().replacen("blocks.0.", "blocks.{l}.", 1))
        .collect()
}

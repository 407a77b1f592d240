//! `strata generate`: greedy decoding with a key/value cache, a sanity check of a loaded model.
use anyhow::Result;
use clap::Args;
use strata_model::{NoHooks, TokenBatch};

use super::common::{prompt_ids, ModelArgs};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, conflicts_with = "tokens")]
    pub prompt: Option<String>,
    #[arg(long)]
    pub tokens: Option<String>,
    /// Number of tokens to generate.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub max_new_tokens: usize,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let model = args.model.load()?;
    let mut ids = prompt_ids(&model, args.prompt.as_deref(), args.tokens.as_deref())?;
    let prompt_len = ids.len();
    // The prompt once, then one position per new token over the cached keys and values.
    let (mut logits, mut kv, _) = model
        .decoder
        .forward_with_kv(&TokenBatch::single(ids.clone())?, &mut NoHooks)?;
    for step in 0..args.max_new_tokens {
        let last = logits.dim(1)? - 1;
        let next = logits.get(0)?.get(last)?.argmax(0)?.to_scalar::<u32>()?;
        ids.push(next);
        if model.config.eos_token_id == Some(next) || step + 1 == args.max_new_tokens {
            break;
        }
        (logits, kv) = model.decoder.forward_cached(&ids, &kv)?;
    }
    let new = &ids[prompt_len..];
    println!("ids: {new:?}");
    if let Ok(tok) = model.tokenizer() {
        println!("{}{}", args.prompt.as_deref().unwrap_or(""), tok.decode(new));
    }
    Ok(())
}

//! The tokenizer a GGUF file describes (`tokenizer.ggml.*`), as a [`tokenizers::Tokenizer`].
//!
//! It reproduces what transformers builds for the same file
//! (`integrations/gguf/gguf_tokenizer_mapping.py` plus the tokenizer class it hands the result to),
//! so that ids are identical to `AutoTokenizer.from_pretrained(dir, gguf_file=...)`:
//!
//! * `tokenizer.ggml.model == "gpt2"`: byte-level BPE (GPT-2 style) with the file's merges; tokens
//!   not written in the byte alphabet are re-spelled from their UTF-8 bytes. `tokenizer.ggml.pre`
//!   picks a split regex for the known pre-tokenizers (llama3, qwen2, gpt-4o, tekken, ...); an
//!   unknown one (e.g. SmolLM2's `smollm`) keeps GPT-2's byte-level regex.
//! * `"llama"` (SentencePiece): BPE with byte fallback. Gemma files (architectures gemma, gemma2,
//!   gemma3) get Gemma's normalizer (space -> `▁`), whitespace-only tokens re-spelled with `▁`, and
//!   merges rebuilt from the vocabulary ordered by token position; other files a Metaspace
//!   pre-tokenizer (prepend `▁` to the first word) and merges from the file or rebuilt from the
//!   scores; Phi-3 the prepend/replace normalizer.
//! * token types: CONTROL (3) tokens become special added tokens, USER_DEFINED (4) ones plain added
//!   tokens (matched whole in the text).
//! * `tokenizer.ggml.add_bos_token` / `add_eos_token` (SentencePiece files add BOS unless they say
//!   otherwise) become a template post-processor, as transformers' `update_post_processor` does.
use std::collections::{HashMap, HashSet};

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::load::gguf::{value_f64, value_i64, GgufMetadata, GgufValue};

/// Why a tokenizer could not be built from GGUF metadata.
#[derive(Debug, thiserror::Error)]
pub enum GgufTokenizerError {
    #[error("missing metadata key '{0}'")]
    MissingKey(String),
    #[error("metadata key '{key}': {message}")]
    BadKey { key: String, message: String },
    #[error("unsupported tokenizer model '{0}' (supported: gpt2, llama)")]
    Unsupported(String),
    #[error("building the tokenizer: {0}")]
    Build(String),
}

type Res<T> = Result<T, GgufTokenizerError>;

fn build_err(e: impl std::fmt::Display) -> GgufTokenizerError {
    GgufTokenizerError::Build(e.to_string())
}

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex for a `tokenizer.ggml.pre` value (transformers' `GGUF_PRE_TOKENIZER_SPLITS`).
fn pre_tokenizer_split(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "qwen35" => QWEN35_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

struct Md<'a>(&'a GgufMetadata);

impl Md<'_> {
    fn get(&self, key: &str) -> Option<&GgufValue> {
        self.0.get(key)
    }
    fn string_opt(&self, key: &str) -> Res<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(GgufValue::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(bad(key, format!("expected a string, found {v:?}"))),
        }
    }
    fn bool_opt(&self, key: &str) -> Res<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(GgufValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(bad(key, format!("expected a bool, found {v:?}"))),
        }
    }
    fn id_opt(&self, key: &str) -> Res<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => value_i64(v)
                .and_then(|x| usize::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| bad(key, format!("expected a token id, found {v:?}"))),
        }
    }
    fn array(&self, key: &str) -> Res<Option<&Vec<GgufValue>>> {
        match self.get(key) {
            None => Ok(None),
            Some(GgufValue::Array(a)) => Ok(Some(a)),
            Some(v) => Err(bad(key, format!("expected an array, found {v:?}"))),
        }
    }
    fn strings_opt(&self, key: &str) -> Res<Option<Vec<String>>> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| match v {
                GgufValue::String(s) => Ok(s.clone()),
                other => Err(bad(key, format!("expected strings, found {other:?}"))),
            })
            .collect::<Res<Vec<_>>>()
            .map(Some)
    }
    fn numbers_opt(&self, key: &str) -> Res<Option<Vec<f64>>> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| value_f64(v).ok_or_else(|| bad(key, format!("expected numbers, found {v:?}"))))
            .collect::<Res<Vec<_>>>()
            .map(Some)
    }
    fn ints_opt(&self, key: &str) -> Res<Option<Vec<i64>>> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| value_i64(v).ok_or_else(|| bad(key, format!("expected integers, found {v:?}"))))
            .collect::<Res<Vec<_>>>()
            .map(Some)
    }
}

fn bad(key: &str, message: String) -> GgufTokenizerError {
    GgufTokenizerError::BadKey {
        key: key.to_string(),
        message,
    }
}

/// GPT-2's byte -> printable character table (`bytes_to_unicode`).
pub fn bytes_to_unicode() -> [char; 256] {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut table = ['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        table[*b as usize] = char::from_u32(c).expect("valid code point");
    }
    table
}

/// Python's `str.isspace` for one character.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The vocabulary as transformers' `{token: index for index, token in enumerate(tokens)}`:
/// a repeated token keeps its last index; `order` lists distinct tokens by first occurrence.
struct Vocab {
    ids: HashMap<String, u32>,
    order: Vec<String>,
}

fn vocab_of(tokens: &[String]) -> Vocab {
    let mut ids = HashMap::with_capacity(tokens.len());
    let mut order = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if ids.insert(t.clone(), i as u32).is_none() {
            order.push(t.clone());
        }
    }
    Vocab { ids, order }
}

/// transformers' `generate_merges(vocab, vocab_scores)` with scores (sorted best-first): every
/// split of every token into two vocabulary pieces, ordered by (score, len(left), len(right))
/// descending, ties kept in (token order, then (id(left), id(right))).
fn generate_merges(vocab: &Vocab, score: &dyn Fn(&str) -> f64) -> Vec<(String, String)> {
    struct M {
        l: String,
        r: String,
        score: f64,
        ll: usize,
        lr: usize,
    }
    let mut merges: Vec<M> = Vec::new();
    for token in &vocab.order {
        let s = score(token);
        let bounds: Vec<usize> = token.char_indices().map(|(i, _)| i).skip(1).collect();
        let mut local: Vec<(u32, u32, M)> = Vec::new();
        for b in bounds {
            let (l, r) = token.split_at(b);
            if let (Some(&il), Some(&ir)) = (vocab.ids.get(l), vocab.ids.get(r)) {
                let m = M {
                    l: l.to_string(),
                    r: r.to_string(),
                    score: s,
                    ll: l.chars().count(),
                    lr: r.chars().count(),
                };
                local.push((il, ir, m));
            }
        }
        local.sort_by_key(|(il, ir, _)| (*il, *ir));
        merges.extend(local.into_iter().map(|(_, _, m)| m));
    }
    // stable, descending: Python's sort(reverse=True) keeps equal elements in their original order
    merges.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.ll.cmp(&a.ll))
            .then(b.lr.cmp(&a.lr))
    });
    merges.into_iter().map(|m| (m.l, m.r)).collect()
}

fn file_merges(merges: &[String]) -> Res<Vec<(String, String)>> {
    merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad("tokenizer.ggml.merges", format!("merge without a space: {m:?}")))
        })
        .collect()
}

enum Kind {
    ByteLevel,
    Gemma,
    Llama,
    Phi3,
}

/// Builds the tokenizer described by a GGUF file's metadata, identical in its ids to transformers'
/// `AutoTokenizer.from_pretrained(dir, gguf_file=...)`.
pub fn tokenizer_from_gguf(metadata: &GgufMetadata) -> Result<Tokenizer, GgufTokenizerError> {
    let md = Md(metadata);
    let arch = md.string_opt("general.architecture")?.unwrap_or_default();
    let model = md
        .string_opt("tokenizer.ggml.model")?
        .ok_or_else(|| GgufTokenizerError::MissingKey("tokenizer.ggml.model".into()))?;
    let tokens = md
        .strings_opt("tokenizer.ggml.tokens")?
        .ok_or_else(|| GgufTokenizerError::MissingKey("tokenizer.ggml.tokens".into()))?;
    let token_types = md.ints_opt("tokenizer.ggml.token_type")?;
    if let Some(tt) = &token_types {
        if tt.len() != tokens.len() {
            return Err(bad(
                "tokenizer.ggml.token_type",
                format!("{} entries for {} tokens", tt.len(), tokens.len()),
            ));
        }
    }
    let merges = md.strings_opt("tokenizer.ggml.merges")?;
    let pre = md.string_opt("tokenizer.ggml.pre")?;

    let kind = match (model.as_str(), arch.as_str()) {
        ("gpt2", _) => Kind::ByteLevel,
        ("llama", "gemma" | "gemma2" | "gemma3") => Kind::Gemma,
        ("llama", "phi3") => Kind::Phi3,
        ("llama", _) => Kind::Llama,
        (other, _) => return Err(GgufTokenizerError::Unsupported(other.to_string())),
    };

    // the vocabulary as the BPE model sees it
    let model_tokens: Vec<String> = match kind {
        Kind::ByteLevel => {
            let table = bytes_to_unicode();
            let alphabet: HashSet<char> = table.iter().copied().collect();
            tokens
                .iter()
                .map(|t| {
                    if t.chars().all(|c| alphabet.contains(&c)) {
                        t.clone()
                    } else {
                        t.bytes().map(|b| table[b as usize]).collect()
                    }
                })
                .collect()
        }
        // Gemma files store a token of 2+ spaces as real spaces; Gemma's tokenizer spells them `▁`
        Kind::Gemma => tokens
            .iter()
            .map(|t| {
                if t.contains(' ') && t.chars().all(py_isspace) {
                    "\u{2581}".repeat(t.chars().count())
                } else {
                    t.clone()
                }
            })
            .collect(),
        Kind::Llama | Kind::Phi3 => tokens.clone(),
    };
    let vocab = vocab_of(&model_tokens);

    let merge_list: Vec<(String, String)> = match (&kind, &merges) {
        (_, Some(m)) => file_merges(m)?,
        (Kind::Gemma, None) => {
            // Gemma's scores do not follow its merge order; the token order does
            let pos = &vocab.ids;
            generate_merges(&vocab, &|t: &str| -(pos[t] as f64))
        }
        (Kind::Llama | Kind::Phi3, None) => {
            let scores = md
                .numbers_opt("tokenizer.ggml.scores")?
                .ok_or_else(|| GgufTokenizerError::MissingKey("tokenizer.ggml.scores".into()))?;
            if scores.len() != tokens.len() {
                return Err(bad(
                    "tokenizer.ggml.scores",
                    format!("{} scores for {} tokens", scores.len(), tokens.len()),
                ));
            }
            // dict(zip(tokens, scores)): the last score of a repeated token wins
            let mut by_token: HashMap<&str, f64> = HashMap::with_capacity(tokens.len());
            for (t, s) in model_tokens.iter().zip(&scores) {
                by_token.insert(t.as_str(), *s);
            }
            generate_merges(&vocab, &|t: &str| by_token[t])
        }
        (Kind::ByteLevel, None) => Vec::new(),
    };

    let ahash_vocab: tokenizers::models::bpe::Vocab =
        vocab.ids.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let mut builder = BPE::builder().vocab_and_merges(ahash_vocab, merge_list);
    builder = match kind {
        Kind::ByteLevel => builder
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix(String::new())
            .fuse_unk(false),
        Kind::Gemma => builder
            .fuse_unk(true)
            .byte_fallback(true)
            .unk_token("<unk>".to_string()),
        Kind::Llama | Kind::Phi3 => builder.fuse_unk(true).byte_fallback(true),
    };
    let bpe = builder.build().map_err(build_err)?;
    let mut tok = Tokenizer::new(bpe);

    let spm_decoder = |strip: bool| -> DecoderWrapper {
        let mut seq: Vec<DecoderWrapper> = vec![
            Replace::new("\u{2581}", " ").expect("literal pattern").into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
        ];
        if strip {
            seq.push(Strip::new(' ', 1, 0).into());
        }
        DecoderSequence::new(seq).into()
    };
    match kind {
        Kind::ByteLevel => {
            tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            tok.with_decoder(Some(ByteLevelDecoder::new(true, true, true)));
        }
        Kind::Gemma => {
            tok.with_normalizer(Some(Replace::new(" ", "\u{2581}").map_err(build_err)?))
                .map_err(build_err)?;
            tok.with_pre_tokenizer(Some(
                Split::new(
                    SplitPattern::String(" ".into()),
                    SplitDelimiterBehavior::MergedWithPrevious,
                    false,
                )
                .map_err(build_err)?,
            ));
            tok.with_decoder(Some(spm_decoder(false)));
        }
        Kind::Llama => {
            tok.with_pre_tokenizer(Some(Metaspace::new('\u{2581}', PrependScheme::First, false)));
            tok.with_decoder(Some(spm_decoder(true)));
        }
        Kind::Phi3 => {
            let norm = NormalizerSequence::new(vec![
                Prepend::new("\u{2581}".into()).into(),
                Replace::new(" ", "\u{2581}").map_err(build_err)?.into(),
            ]);
            tok.with_normalizer(Some(norm)).map_err(build_err)?;
            tok.with_decoder(Some(spm_decoder(true)));
        }
    }

    // CONTROL tokens -> special added tokens; USER_DEFINED ones -> plain added tokens
    if let Some(tt) = &token_types {
        let byte_level = matches!(kind, Kind::ByteLevel);
        let alphabet: HashSet<char> = bytes_to_unicode().iter().copied().collect();
        let control: Vec<AddedToken> = tokens
            .iter()
            .zip(tt)
            .filter(|(t, ty)| {
                **ty == TOKEN_TYPE_CONTROL && (!byte_level || t.chars().all(|c| alphabet.contains(&c)))
            })
            .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false))
            .collect();
        if !control.is_empty() {
            tok.add_special_tokens(control).map_err(build_err)?;
        }
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(tt)
            .filter(|(t, ty)| **ty == TOKEN_TYPE_USER_DEFINED && vocab.ids.contains_key(t.as_str()))
            .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
            .collect();
        if !user.is_empty() {
            tok.add_tokens(user).map_err(build_err)?;
        }
    }

    // the split regex of the pre-tokenizer the file names
    if let Some(split) = pre.as_deref().and_then(pre_tokenizer_split) {
        let seq = PreTokenizerSequence::new(vec![
            PreTokenizerWrapper::Split(
                Split::new(
                    SplitPattern::Regex(split.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(build_err)?,
            ),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
        ]);
        tok.with_pre_tokenizer(Some(seq));
    }

    // special tokens of the tokenizer class that are not added tokens yet
    let special =
        |key: &str| -> Res<Option<String>> { Ok(md.id_opt(key)?.and_then(|id| tokens.get(id).cloned())) };
    let bos = special("tokenizer.ggml.bos_token_id")?;
    let eos = special("tokenizer.ggml.eos_token_id")?;
    let unk = special("tokenizer.ggml.unknown_token_id")?;
    let pad = special("tokenizer.ggml.padding_token_id")?;
    let mut named: Vec<String> = [&bos, &eos, &unk, &pad].into_iter().flatten().cloned().collect();
    if matches!(kind, Kind::Gemma) {
        named.push("<mask>".to_string()); // GemmaTokenizer's mask_token
    }
    let present: HashSet<String> = tok.get_added_vocabulary().get_vocab().keys().cloned().collect();
    let mut missing: Vec<AddedToken> = Vec::new();
    for t in named {
        if !present.contains(&t) && !missing.iter().any(|a| a.content == t) {
            missing.push(AddedToken::from(t, true).normalized(false));
        }
    }
    if !missing.is_empty() {
        tok.add_special_tokens(missing).map_err(build_err)?;
    }

    // BOS / EOS: SentencePiece files add BOS unless they say otherwise
    let add_bos_default = model == "llama";
    let mut add_bos = md
        .bool_opt("tokenizer.ggml.add_bos_token")?
        .unwrap_or(add_bos_default);
    let mut add_eos = md.bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    if bos.is_none() {
        add_bos = false;
    }
    if eos.is_none() {
        add_eos = false;
    }
    let bos_s = bos.clone().unwrap_or_default();
    let eos_s = eos.clone().unwrap_or_default();
    let single = format!(
        "{}$A:0{}",
        if add_bos {
            format!("{bos_s}:0 ")
        } else {
            String::new()
        },
        if add_eos {
            format!(" {eos_s}:0")
        } else {
            String::new()
        }
    );
    let pair = format!(
        "{single}{} $B:1{}",
        if add_bos {
            format!(" {bos_s}:1")
        } else {
            String::new()
        },
        if add_eos {
            format!(" {eos_s}:1")
        } else {
            String::new()
        }
    );
    let mut special_tokens: Vec<(String, u32)> = Vec::new();
    let id_of = |key: &str| -> Res<u32> {
        md.id_opt(key)?
            .map(|x| x as u32)
            .ok_or_else(|| GgufTokenizerError::MissingKey(key.to_string()))
    };
    if add_bos {
        special_tokens.push((bos_s.clone(), id_of("tokenizer.ggml.bos_token_id")?));
    }
    if add_eos {
        special_tokens.push((eos_s.clone(), id_of("tokenizer.ggml.eos_token_id")?));
    }
    let post = TemplateProcessing::builder()
        .try_single(single.as_str())
        .map_err(build_err)?
        .try_pair(pair.as_str())
        .map_err(build_err)?
        .special_tokens(special_tokens)
        .build()
        .map_err(build_err)?;
    tok.with_post_processor(Some(post));
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], '\u{120}'); // Ġ
        assert_eq!(t[b'\n' as usize], '\u{10a}'); // Ċ
        let distinct: HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn merges_are_generated_best_first() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "abc", "bc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let vocab = vocab_of(&tokens);
        let pos = &vocab.ids;
        let merges = generate_merges(&vocab, &|t: &str| -(pos[t] as f64));
        // "ab" (index 3) first, then "abc" (index 4) splits: a|bc (len 1,2) after ab|c (len 2,1), then "bc"
        let want: Vec<(String, String)> = [("a", "b"), ("ab", "c"), ("a", "bc"), ("b", "c")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(merges, want);
    }
}

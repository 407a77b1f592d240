//! Probe suites: prompt sets stored as JSONL files in `probes/` (format in `probes/README.md`),
//! loaded and validated against a model's tokenizer.
//!
//! A suite is named (`factual`, `ioi`, `induction`, `greater_than`: the files in `probes/` are
//! compiled into the crate) or given as a path. Loading checks every item for the tokenizer in
//! use: a target or distractor that is not one token, a corrupted partner whose token length
//! differs from the clean prompt, a subject that is not in the prompt, or a token the model
//! lacks (id ≥ its vocabulary, or the unknown token) is an error naming the suite file, the
//! item and its line and showing the tokenizations. With [`SuiteOptions::skip_invalid`] such
//! items are skipped instead, listed in [`Suite::skipped`] and reported on stderr: never
//! silently.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use strata_model::Tokenizer;

use crate::error::{ExperimentError, Result};
use crate::item::Item;
use crate::rng::Rng;

/// The suites shipped in `probes/`, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("factual", include_str!("../../../probes/factual.jsonl")),
    ("ioi", include_str!("../../../probes/ioi.jsonl")),
    ("induction", include_str!("../../../probes/induction.jsonl")),
    ("greater_than", include_str!("../../../probes/greater_than.jsonl")),
];

/// Names of the shipped suites.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// One probe: the experiment [`Item`] plus where it came from and, for tasks scored over sets
/// of answers (greater-than), the single-token answers counted as correct (`good`) and wrong
/// (`bad`).
/// Most items one generator line may produce (a typo must not allocate millions of prompts).
const MAX_GENERATED_ITEMS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeItem {
    pub item: Item,
    /// 1-based line in the suite file (for generated items: the generator's line).
    pub line: usize,
    pub good: Vec<String>,
    pub bad: Vec<String>,
}

/// Generator of induction items: `count` sequences of `length` distinct random words (each a
/// single token with its leading space), the prompt being the sequence followed by its first
/// `repeat` words again; the target is the next word of the repetition, the distractor a word
/// absent from the sequence, and the corrupted prompt starts with a different random sequence
/// (so copying cannot work) followed by the same `repeat` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InductionSpec {
    pub line: usize,
    pub id_prefix: String,
    pub count: usize,
    pub length: usize,
    pub repeat: usize,
    pub seed: u64,
    pub words: Vec<String>,
}

/// A parsed line of a suite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteLine {
    Item(ProbeItem),
    Induction(InductionSpec),
}

/// A suite file parsed but not yet checked against a tokenizer.
#[derive(Debug, Clone)]
pub struct SuiteFile {
    pub name: String,
    /// Where it came from, as shown in messages (`probes/factual.jsonl` for the shipped ones).
    pub path: PathBuf,
    pub lines: Vec<SuiteLine>,
}

/// How to load a suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Skip (and report) invalid items instead of failing on the first one.
    pub skip_invalid: bool,
    /// The model's vocabulary size (embedding rows); ids at or above it are tokens the model
    /// lacks. Default: the tokenizer's vocabulary size.
    pub vocab_size: Option<usize>,
}

/// An item that failed validation and was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub id: String,
    pub line: usize,
    pub reason: String,
}

/// A suite validated for one tokenizer.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    pub items: Vec<ProbeItem>,
    pub skipped: Vec<Skipped>,
}

impl Suite {
    /// The experiment inputs.
    pub fn items(&self) -> Vec<Item> {
        self.items.iter().map(|p| p.item.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// One line: how many items are valid and how many were skipped.
    pub fn summary(&self) -> String {
        format!(
            "suite {} ({}): {} valid item(s), {} skipped",
            self.name,
            self.path.display(),
            self.items.len(),
            self.skipped.len()
        )
    }
}

fn err<T>(msg: String) -> Result<T> {
    Err(ExperimentError::Input(msg))
}

/// Finds a suite: an existing file path, or the name of a shipped suite.
pub fn resolve(spec: &str) -> Result<SuiteFile> {
    let path = Path::new(spec);
    if path.is_file() {
        return SuiteFile::read(path);
    }
    let name = spec.strip_suffix(".jsonl").unwrap_or(spec);
    let name = name.strip_prefix("probes/").unwrap_or(name);
    if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return SuiteFile::parse(n, Path::new(&format!("probes/{n}.jsonl")), text);
    }
    err(format!(
        "probe suite {spec:?}: no such file, and not a shipped suite (shipped: {})",
        builtin_names().join(", ")
    ))
}

/// Loads a suite (name or path) and validates it for `tok`.
pub fn load(spec: &str, tok: &Tokenizer, opts: &SuiteOptions) -> Result<Suite> {
    resolve(spec)?.validate(tok, opts)
}

const ITEM_FIELDS: &[&str] = &[
    "id",
    "prompt",
    "target",
    "distractor",
    "corrupted",
    "subject",
    "good",
    "bad",
];
const INDUCTION_FIELDS: &[&str] = &[
    "generate",
    "id_prefix",
    "count",
    "length",
    "repeat",
    "seed",
    "words",
];

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    at: String,
}

impl Fields<'_> {
    fn check_known(&self, known: &[&str]) -> Result<()> {
        for k in self.obj.keys() {
            if !known.contains(&k.as_str()) {
                return err(format!(
                    "{}: unknown field '{k}' (expected one of: {})",
                    self.at,
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => err(format!(
                "{}: field '{key}': expected a string, found {}",
                self.at,
                kind(v)
            )),
        }
    }

    fn required(&self, key: &str) -> Result<String> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => err(format!("{}: field '{key}' is empty", self.at)),
            None => err(format!("{}: missing field '{key}'", self.at)),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => err(format!(
                        "{}: field '{key}'[{i}]: expected a string, found {}",
                        self.at,
                        kind(v)
                    )),
                })
                .collect(),
            Some(v) => err(format!(
                "{}: field '{key}': expected a list of strings, found {}",
                self.at,
                kind(v)
            )),
        }
    }

    fn count(&self, key: &str) -> Result<u64> {
        match self.obj.get(key) {
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
            Some(v) => err(format!(
                "{}: field '{key}': expected a non-negative integer, found {}",
                self.at,
                kind(v)
            )),
            None => err(format!("{}: missing field '{key}'", self.at)),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl SuiteFile {
    /// Reads and parses a suite file.
    pub fn read(path: &Path) -> Result<SuiteFile> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".into());
        SuiteFile::parse(&name, path, &text)
    }

    /// Parses suite text; `path` is only used in messages. Blank lines and lines starting with
    /// `#` are skipped; every other line is one JSON object.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<SuiteFile> {
        let mut lines = Vec::new();
        let mut ids: Vec<(String, usize)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let at = format!("{}:{line}", path.display());
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let v: Value = serde_json::from_str(t).map_err(|e| {
                ExperimentError::Input(format!(
                    "{at}: not valid JSON ({e}); each line of a suite is one JSON object"
                ))
            })?;
            let Value::Object(obj) = &v else {
                return err(format!("{at}: expected a JSON object, found {}", kind(&v)));
            };
            let f = Fields { obj, at };
            let parsed = if obj.contains_key("generate") {
                f.check_known(INDUCTION_FIELDS)?;
                let what = f.required("generate")?;
                if what != "induction" {
                    return err(format!(
                        "{}: field 'generate': unknown generator {what:?} (known: induction)",
                        f.at
                    ));
                }
                let spec = InductionSpec {
                    line,
                    id_prefix: f.string("id_prefix")?.unwrap_or_else(|| "induction".into()),
                    count: f.count("count")? as usize,
                    length: f.count("length")? as usize,
                    repeat: f.count("repeat")? as usize,
                    seed: f.count("seed")?,
                    words: f.strings("words")?,
                };
                if spec.length < 2 || spec.repeat == 0 || spec.repeat >= spec.length {
                    return err(format!(
                        "{}: field 'repeat': need 0 < repeat < length, found repeat {} and length {}",
                        f.at, spec.repeat, spec.length
                    ));
                }
                if spec.count == 0 || spec.count > MAX_GENERATED_ITEMS {
                    return err(format!(
                        "{}: field 'count' must be between 1 and {MAX_GENERATED_ITEMS}, found {}",
                        f.at, spec.count
                    ));
                }
                // Checked before any arithmetic on the length can overflow.
                if spec.words.len() < spec.length.saturating_mul(2).saturating_add(1) {
                    return err(format!(
                        "{}: field 'words': {} words, need at least 2 × length + 1 = {}",
                        f.at,
                        spec.words.len(),
                        spec.length.saturating_mul(2).saturating_add(1)
                    ));
                }
                ids.extend((0..spec.count).map(|k| (format!("{}-{k:02}", spec.id_prefix), line)));
                SuiteLine::Induction(spec)
            } else {
                f.check_known(ITEM_FIELDS)?;
                let item = Item {
                    id: f.required("id")?,
                    prompt: f.required("prompt")?,
                    target: f.required("target")?,
                    distractor: f.string("distractor")?,
                    corrupted: f.string("corrupted")?,
                    subject: f.string("subject")?,
                };
                ids.push((item.id.clone(), line));
                SuiteLine::Item(ProbeItem {
                    item,
                    line,
                    good: f.strings("good")?,
                    bad: f.strings("bad")?,
                })
            };
            lines.push(parsed);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        for w in sorted.windows(2) {
            if w[0].0 == w[1].0 {
                return err(format!(
                    "{}:{}: duplicate item id '{}' (first at line {})",
                    path.display(),
                    w[1].1.max(w[0].1),
                    w[0].0,
                    w[1].1.min(w[0].1)
                ));
            }
        }
        if lines.is_empty() {
            return err(format!("{}: the suite has no items", path.display()));
        }
        Ok(SuiteFile {
            name: name.to_string(),
            path: path.to_path_buf(),
            lines,
        })
    }

    /// Expands generators and checks every item for `tok`.
    pub fn validate(&self, tok: &Tokenizer, opts: &SuiteOptions) -> Result<Suite> {
        let vocab = opts.vocab_size.unwrap_or_else(|| tok.vocab_size());
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        let mut consider = |p: ProbeItem| -> Result<()> {
            match check_item(tok, &p, vocab) {
                Ok(()) => items.push(p),
                Err(reason) => {
                    let msg = format!(
                        "{}:{}: item '{}': {reason} (tokenizer: {})",
                        self.path.display(),
                        p.line,
                        p.item.id,
                        tok.path().display()
                    );
                    if !opts.skip_invalid {
                        return err(format!(
                            "{msg}\n  (fix the item, or pass --skip-invalid to skip such items)"
                        ));
                    }
                    eprintln!("warning: skipping {msg}");
                    skipped.push(Skipped {
                        id: p.item.id.clone(),
                        line: p.line,
                        reason,
                    });
                }
            }
            Ok(())
        };
        for line in &self.lines {
            match line {
                SuiteLine::Item(p) => consider(p.clone())?,
                SuiteLine::Induction(spec) => {
                    for p in generate_induction(spec, tok, vocab).map_err(|e| {
                        ExperimentError::Input(format!(
                            "{}:{}: {e} (tokenizer: {})",
                            self.path.display(),
                            spec.line,
                            tok.path().display()
                        ))
                    })? {
                        consider(p)?;
                    }
                }
            }
        }
        if items.is_empty() {
            return err(format!(
                "{}: no valid item for tokenizer {} ({} skipped)",
                self.path.display(),
                tok.path().display(),
                skipped.len()
            ));
        }
        if !skipped.is_empty() {
            eprintln!(
                "warning: suite {}: {} of {} item(s) skipped as invalid for {}",
                self.name,
                skipped.len(),
                skipped.len() + items.len(),
                tok.path().display()
            );
        }
        Ok(Suite {
            name: self.name.clone(),
            path: self.path.clone(),
            items,
            skipped,
        })
    }
}

fn show(tok: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&i| format!("{:?}", tok.token(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn encode(tok: &Tokenizer, text: &str, plain: bool) -> std::result::Result<Vec<u32>, String> {
    let r = if plain {
        tok.encode_plain(text)
    } else {
        tok.encode(text)
    };
    r.map_err(|e| e.to_string())
}

/// Ids the model cannot embed: at or beyond its vocabulary, or the tokenizer's unknown token.
fn lacking(tok: &Tokenizer, ids: &[u32], vocab: usize) -> Option<String> {
    let unk = tok.inner().token_to_id("<unk>");
    let bad: Vec<String> = ids
        .iter()
        .filter(|&&i| i as usize >= vocab || Some(i) == unk)
        .map(|&i| {
            if i as usize >= vocab {
                format!("id {i} ≥ vocabulary size {vocab}")
            } else {
                format!("id {i} is the unknown token")
            }
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

/// Checks one item for a tokenizer; the error says what is wrong and shows the tokens.
pub fn check_item(tok: &Tokenizer, p: &ProbeItem, vocab: usize) -> std::result::Result<(), String> {
    let item = &p.item;
    let ids = encode(tok, &item.prompt, false)?;
    if ids.is_empty() {
        return Err("the prompt has no tokens".into());
    }
    if let Some(l) = lacking(tok, &ids, vocab) {
        return Err(format!(
            "the prompt has a token the model lacks ({l}): {}",
            show(tok, &ids)
        ));
    }
    let single = |text: &str, what: &str| -> std::result::Result<u32, String> {
        let t = encode(tok, text, true)?;
        match t.as_slice() {
            [id] => match lacking(tok, &t, vocab) {
                Some(l) => Err(format!("{what} {text:?} is a token the model lacks ({l})")),
                None => Ok(*id),
            },
            _ => Err(format!(
                "{what} {text:?} is {} tokens ({}), not one",
                t.len(),
                show(tok, &t)
            )),
        }
    };
    let target = single(&item.target, "target")?;
    if let Some(d) = &item.distractor {
        let did = single(d, "distractor")?;
        if did == target {
            return Err(format!(
                "distractor {d:?} is the same token as target {:?}",
                item.target
            ));
        }
    }
    for a in &p.good {
        single(a, "good answer")?;
    }
    for a in &p.bad {
        single(a, "bad answer")?;
    }
    if let Some(c) = &item.corrupted {
        let cids = encode(tok, c, false)?;
        if cids.len() != ids.len() {
            return Err(format!(
                "clean and corrupted prompts have different token lengths:\n  clean     ({} tokens): {}\n  corrupted ({} tokens): {}",
                ids.len(),
                show(tok, &ids),
                cids.len(),
                show(tok, &cids)
            ));
        }
        if cids == ids {
            return Err("the corrupted prompt tokenizes exactly like the clean one".into());
        }
        if let Some(l) = lacking(tok, &cids, vocab) {
            return Err(format!(
                "the corrupted prompt has a token the model lacks ({l}): {}",
                show(tok, &cids)
            ));
        }
    }
    if let Some(s) = &item.subject {
        let Some(start) = item.prompt.rfind(s.as_str()) else {
            return Err(format!(
                "subject {s:?} does not occur in the prompt {:?}",
                item.prompt
            ));
        };
        let end = start + s.len();
        let enc = tok
            .inner()
            .encode(item.prompt.as_str(), true)
            .map_err(|e| e.to_string())?;
        let covered = enc
            .get_offsets()
            .iter()
            .zip(enc.get_special_tokens_mask())
            .any(|((a, b), sp)| *sp == 0 && b > a && *a < end && *b > start);
        if !covered {
            return Err(format!(
                "no token of the prompt covers the subject {s:?}: {}",
                show(tok, &ids)
            ));
        }
    }
    Ok(())
}

/// Expands an induction generator for `tok` (deterministic for a seed and tokenizer).
pub fn generate_induction(
    spec: &InductionSpec,
    tok: &Tokenizer,
    vocab: usize,
) -> std::result::Result<Vec<ProbeItem>, String> {
    // The pool: words that are one token (with their leading space) the model has.
    let mut pool: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    for w in &spec.words {
        let text = format!(" {}", w.trim());
        match encode(tok, &text, true)?.as_slice() {
            [id] if (*id as usize) < vocab && !pool.contains(&text) => pool.push(text),
            _ => dropped.push(w.clone()),
        }
    }
    if !dropped.is_empty() {
        eprintln!(
            "note: induction generator: {} word(s) are not single tokens for {} and are not used: {}",
            dropped.len(),
            tok.path().display(),
            dropped.join(", ")
        );
    }
    let need = 2 * spec.length + 1;
    if pool.len() < need {
        return Err(format!(
            "induction generator: only {} of its words are single tokens for this tokenizer, need {need}",
            pool.len()
        ));
    }
    let mut rng = Rng::new(spec.seed);
    let mut draw = |n: usize, exclude: &[String]| -> Vec<String> {
        let mut avail: Vec<&String> = pool.iter().filter(|w| !exclude.contains(w)).collect();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let i = rng.below(avail.len());
            out.push(avail.swap_remove(i).clone());
        }
        out
    };
    let mut items = Vec::with_capacity(spec.count);
    for k in 0..spec.count {
        let id = format!("{}-{k:02}", spec.id_prefix);
        // Redraw (deterministically) until the words tokenize one token each, as they do in
        // byte-level BPE; a tokenizer merging across words would spoil the repetition.
        let mut found = None;
        for _attempt in 0..20 {
            let seq = draw(spec.length, &[]);
            let other = draw(spec.length, &seq);
            let distractor = draw(1, &seq)[0].clone();
            let head = &seq[..spec.repeat];
            let prompt: String = seq.iter().chain(head).cloned().collect();
            let corrupted: String = other.iter().chain(head).cloned().collect();
            let n_words = spec.length + spec.repeat;
            if encode(tok, &prompt, true)?.len() == n_words && encode(tok, &corrupted, true)?.len() == n_words
            {
                found = Some(ProbeItem {
                    item: Item {
                        id: id.clone(),
                        prompt: prompt.clone(),
                        target: seq[spec.repeat].clone(),
                        distractor: Some(distractor),
                        corrupted: Some(corrupted.clone()),
                        subject: None,
                    },
                    line: spec.line,
                    good: Vec::new(),
                    bad: Vec::new(),
                });
                break;
            }
        }
        match found {
            Some(p) => items.push(p),
            None => {
                return Err(format!(
                    "induction generator: item {id}: no draw of words tokenizes one token per word"
                ))
            }
        }
    }
    Ok(items)
}

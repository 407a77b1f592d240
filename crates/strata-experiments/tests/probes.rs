//! Probe suites: parsing errors, validation, and every shipped suite against both real
//! tokenizers (models/ — run `bash scripts/fetch-models.sh` if they are missing).

use std::path::{Path, PathBuf};

use strata_experiments::probes::{self, SuiteFile, SuiteLine, SuiteOptions};
use strata_model::load::gguf::{read_gguf_header, tokenizer_from_gguf_file};
use strata_model::Tokenizer;

const MODELS: [&str; 2] = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"];

fn model_path(file: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(file);
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/fetch-models.sh` to fetch the real models",
        p.display()
    );
    p.canonicalize().unwrap()
}

/// The tokenizer the GGUF file describes, and the model's vocabulary size (embedding rows).
fn tokenizer(file: &str) -> (Tokenizer, usize) {
    let path = model_path(file);
    let t = tokenizer_from_gguf_file(&path).expect("tokenizer from GGUF metadata");
    let cfg = read_gguf_header(&path).unwrap().hf_config().unwrap();
    let vocab = cfg["vocab_size"].as_u64().expect("vocab_size") as usize;
    (Tokenizer::new(t, path), vocab)
}

#[test]
fn shipped_suites_are_valid_for_both_real_tokenizers() {
    let mut table = Vec::new();
    for file in MODELS {
        let (tok, vocab) = tokenizer(file);
        for name in probes::builtin_names() {
            let opts = SuiteOptions {
                skip_invalid: true,
                vocab_size: Some(vocab),
            };
            let suite = probes::load(name, &tok, &opts).unwrap();
            for s in &suite.skipped {
                eprintln!("{file} {name}: skipped {} (line {}): {}", s.id, s.line, s.reason);
            }
            table.push(format!(
                "{file:36} {name:13} {:3} valid {:2} skipped",
                suite.len(),
                suite.skipped.len()
            ));
            // Every shipped item is designed to be valid for both models.
            assert!(suite.skipped.is_empty(), "{}", suite.summary());
            let min = match name {
                "factual" => 40,
                "ioi" => 40,
                "induction" => 20,
                "greater_than" => 20,
                _ => 1,
            };
            assert!(suite.len() >= min, "{}", suite.summary());
            // Strict loading agrees.
            let strict = SuiteOptions {
                skip_invalid: false,
                vocab_size: Some(vocab),
            };
            probes::load(name, &tok, &strict).unwrap();
        }
    }
    println!("{}", table.join("\n"));
}

#[test]
fn factual_items_have_partners_of_equal_length_and_subjects() {
    let (tok, _) = tokenizer(MODELS[0]);
    let suite = probes::load("factual", &tok, &SuiteOptions::default()).unwrap();
    let paris = suite
        .items
        .iter()
        .find(|p| p.item.id == "capital-france")
        .unwrap();
    assert_eq!(paris.item.prompt, "The capital of France is");
    assert_eq!(paris.item.target, " Paris");
    assert_eq!(paris.item.subject.as_deref(), Some("France"));
    let landmarks = suite
        .items
        .iter()
        .filter(|p| p.item.id.starts_with("landmark-"))
        .count();
    assert!(landmarks >= 20, "{landmarks} landmark items");
    for p in &suite.items {
        let c = p.item.corrupted.as_deref().unwrap();
        assert_eq!(
            tok.encode(&p.item.prompt).unwrap().len(),
            tok.encode(c).unwrap().len()
        );
        assert_ne!(p.item.distractor.as_deref(), Some(p.item.target.as_str()));
    }
}

#[test]
fn induction_items_repeat_and_are_deterministic() {
    let (tok, vocab) = tokenizer(MODELS[1]);
    let opts = SuiteOptions {
        skip_invalid: false,
        vocab_size: Some(vocab),
    };
    let a = probes::load("induction", &tok, &opts).unwrap();
    let b = probes::load("induction", &tok, &opts).unwrap();
    assert_eq!(a.items, b.items);
    let SuiteLine::Induction(spec) = &probes::resolve("induction").unwrap().lines[0] else {
        panic!("induction suite has no generator line")
    };
    for p in &a.items {
        let words: Vec<&str> = p.item.prompt.split(' ').skip(1).collect();
        assert_eq!(words.len(), spec.length + spec.repeat);
        // The prompt ends with the sequence's first `repeat` words; the target continues it.
        assert_eq!(&words[..spec.repeat], &words[spec.length..]);
        assert_eq!(p.item.target.trim(), words[spec.repeat]);
        let ids = tok.encode_plain(&p.item.prompt).unwrap();
        assert_eq!(ids.len(), spec.length + spec.repeat, "one token per word");
        let d = p.item.distractor.as_deref().unwrap().trim();
        assert!(!words.contains(&d));
    }
    let ids: Vec<&str> = a.items.iter().map(|p| p.item.id.as_str()).collect();
    assert_eq!(ids[0], "induction-00");
}

#[test]
fn greater_than_answers_are_single_digits() {
    let (tok, _) = tokenizer(MODELS[0]);
    let s = probes::load("greater_than", &tok, &SuiteOptions::default()).unwrap();
    for p in &s.items {
        assert!(!p.good.is_empty() && !p.bad.is_empty());
        assert!(p.good.contains(&p.item.target));
        assert!(p.bad.contains(p.item.distractor.as_ref().unwrap()));
    }
}

fn parse(text: &str) -> Result<SuiteFile, String> {
    SuiteFile::parse("t", Path::new("probes/t.jsonl"), text).map_err(|e| e.to_string())
}

#[test]
fn malformed_files_name_line_and_field() {
    let ok = r#"{"id": "a", "prompt": "The capital of France is", "target": " Paris"}"#;
    let e = parse(&format!("# c\n{ok}\n{{not json\n")).unwrap_err();
    assert!(e.starts_with("probes/t.jsonl:3: not valid JSON"), "{e}");
    let e = parse(r#"{"id": "a", "prompt": "x"}"#).unwrap_err();
    assert_eq!(e, "probes/t.jsonl:1: missing field 'target'");
    let e = parse(r#"{"id": "a", "prompt": "x", "target": 3}"#).unwrap_err();
    assert_eq!(
        e,
        "probes/t.jsonl:1: field 'target': expected a string, found a number"
    );
    let e = parse(r#"{"id": "a", "prompt": "x", "target": " y", "distracter": " z"}"#).unwrap_err();
    assert!(
        e.starts_with("probes/t.jsonl:1: unknown field 'distracter'"),
        "{e}"
    );
    let e = parse(r#"{"id": "a", "prompt": "x", "target": " y", "good": [" a", 1]}"#).unwrap_err();
    assert!(e.contains("field 'good'[1]: expected a string"), "{e}");
    let e = parse(&format!("{ok}\n\n{ok}\n")).unwrap_err();
    assert_eq!(e, "probes/t.jsonl:3: duplicate item id 'a' (first at line 1)");
    let e = parse("[1, 2]").unwrap_err();
    assert!(e.contains(":1: expected a JSON object, found a list"), "{e}");
    let e = parse("# only a comment\n").unwrap_err();
    assert!(e.contains("no items"), "{e}");
    let e =
        parse(r#"{"generate": "induction", "count": 2, "length": 4, "repeat": 4, "seed": 1, "words": []}"#)
            .unwrap_err();
    assert!(e.contains("field 'repeat'"), "{e}");
    let e = parse(r#"{"generate": "bigrams"}"#).unwrap_err();
    assert!(e.contains("unknown generator \"bigrams\""), "{e}");
    assert!(probes::resolve("no-such-suite")
        .unwrap_err()
        .to_string()
        .contains("factual, ioi, induction, greater_than"));
}

#[test]
fn invalid_items_are_errors_or_reported_skips() {
    let (tok, vocab) = tokenizer(MODELS[0]);
    let text = [
        r#"{"id": "good", "prompt": "The capital of France is", "target": " Paris", "distractor": " Rome", "corrupted": "The capital of Italy is", "subject": "France"}"#,
        r#"{"id": "uneven", "prompt": "The capital of France is", "target": " Paris", "corrupted": "The capital of the Czech Republic is"}"#,
        r#"{"id": "multi", "prompt": "The capital of France is", "target": " Pariserstadt"}"#,
        r#"{"id": "nosubj", "prompt": "The capital of France is", "target": " Paris", "subject": "Spain"}"#,
        r#"{"id": "same", "prompt": "The capital of France is", "target": " Paris", "distractor": " Paris"}"#,
    ]
    .join("\n");
    let file = SuiteFile::parse("t", Path::new("probes/t.jsonl"), &text).unwrap();
    let strict = SuiteOptions {
        skip_invalid: false,
        vocab_size: Some(vocab),
    };
    let e = file.validate(&tok, &strict).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "probes/t.jsonl:2: item 'uneven': clean and corrupted prompts have different token lengths"
        ),
        "{e}"
    );
    // Both tokenizations are shown.
    assert!(e.contains("clean     (5 tokens)"), "{e}");
    assert!(e.contains("\" Czech\""), "{e}");
    assert!(e.contains("--skip-invalid"), "{e}");

    let lenient = SuiteOptions {
        skip_invalid: true,
        vocab_size: Some(vocab),
    };
    let s = file.validate(&tok, &lenient).unwrap();
    assert_eq!(s.len(), 1);
    let skipped: Vec<(&str, usize)> = s.skipped.iter().map(|k| (k.id.as_str(), k.line)).collect();
    assert_eq!(skipped, [("uneven", 2), ("multi", 3), ("nosubj", 4), ("same", 5)]);
    assert!(s.skipped[1].reason.contains("not one"), "{}", s.skipped[1].reason);
    assert!(s.summary().contains("1 valid item(s), 4 skipped"));

    // A model whose vocabulary is smaller than the tokenizer's lacks some tokens.
    let small = SuiteOptions {
        skip_invalid: false,
        vocab_size: Some(1000),
    };
    let e = file.validate(&tok, &small).unwrap_err().to_string();
    assert!(e.contains("token the model lacks"), "{e}");
    assert!(e.contains("≥ vocabulary size 1000"), "{e}");
}

#[test]
fn induction_generator_limits_are_errors_not_allocations() {
    let dir = tempfile::Builder::new()
        .prefix("strata-probe-limits-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("gen.jsonl");
    for (line, field) in [
        (
            r#"{"generate":"induction","count":100000000000,"length":4,"repeat":2,"seed":1,"words":["a","b","c","d","e","f","g","h","i"]}"#,
            "count",
        ),
        (
            r#"{"generate":"induction","count":2,"length":18446744073709551615,"repeat":2,"seed":1,"words":["a","b"]}"#,
            "words",
        ),
    ] {
        std::fs::write(&path, line).unwrap();
        let Err(err) = strata_experiments::probes::SuiteFile::read(&path) else {
            panic!("{field}: must be refused")
        };
        let err = err.to_string();
        assert!(err.contains(field) && err.contains("gen.jsonl"), "{err}");
    }
}

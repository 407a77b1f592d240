//! Loader behaviour: header mapping, units, duplicates, malformed rows.

use strata_dataset::{load_str, Column, DatasetError, LoadOptions};

const PAPER_STYLE: &str = "\
Model,size,hidden_size,intermediate_size,num_hidden_layers,num_attention_heads,num_key_value_heads,vocab_size,max_position_embeddings,hidden_act,architectures,precision,ARC,HellaSwag,MMLU,Winogrande,TruthfulQA,GSM8K,upload date,notes
org/a,7,4096,11008,32,32,32,32000,4096,silu,LlamaForCausalLM,float16,0.53,0.78,0.44,0.74,0.39,0.14,2023-07-13,x
org/a,7,4096,11008,32,32,32,32000,4096,silu,LlamaForCausalLM,bfloat16,0.54,0.79,0.45,0.75,0.40,0.15,2023-07-13,y
org/b,13B,5120,13824,40,40,40,32000,4096,silu,[\"LlamaForCausalLM\"],bfloat16,0.59,0.81,0.54,0.77,0.34,0.23,2023-07,
org/c,125M,768,3072,12,12,,50257,NA,gelu_new,OPTForCausalLM,,0.23,0.31,0.26,0.50,0.42,0.00,2022,
";

#[test]
fn paper_style_headers_units_and_duplicates() {
    let (ds, rep) = load_str(PAPER_STYLE, "model_info.csv", &LoadOptions::default()).unwrap();
    assert_eq!(rep.rows_read, 4);
    assert_eq!(rep.duplicates_dropped, 1);
    assert_eq!(ds.model_ids, vec!["org/a", "org/b", "org/c"]);
    assert_eq!(rep.unmapped_headers, vec!["notes"]);
    // bfloat16 row of org/a kept
    let arc = ds.numeric(Column::ArcC).unwrap();
    assert!(
        (arc[0].unwrap() - 54.0).abs() < 1e-12,
        "fractions scaled to 0-100"
    );
    let p = ds.numeric(Column::ParamsB).unwrap();
    assert_eq!(p[1], Some(13.0));
    assert!((p[2].unwrap() - 0.125).abs() < 1e-12);
    assert_eq!(ds.numeric(Column::NLayers).unwrap()[2], Some(12.0));
    assert_eq!(ds.numeric(Column::NKvHeads).unwrap()[2], None);
    assert_eq!(ds.numeric(Column::ContextLength).unwrap()[2], None);
    assert_eq!(
        ds.text(Column::ArchClass).unwrap()[1].as_deref(),
        Some("LlamaForCausalLM")
    );
    assert_eq!(
        ds.text(Column::Activation).unwrap()[2].as_deref(),
        Some("gelu_new")
    );
    assert_eq!(ds.year(), vec![Some(2023), Some(2023), Some(2022)]);
    assert!((ds.miss_rate(Column::NKvHeads) - 1.0 / 3.0).abs() < 1e-12);
    assert!(rep.conversions.iter().any(|c| c.contains("ARC")));
}

#[test]
fn raw_parameter_counts_are_billions() {
    let text = "name,num_params,mmlu\nm1,6738415616,45.3\nm2,124439808,25.0\n";
    let (ds, rep) = load_str(text, "t.csv", &LoadOptions::default()).unwrap();
    let p = ds.numeric(Column::ParamsB).unwrap();
    assert!((p[0].unwrap() - 6.738415616).abs() < 1e-12);
    assert!((p[1].unwrap() - 0.124439808).abs() < 1e-12);
    // 0-100 scores stay as they are
    assert_eq!(ds.numeric(Column::Mmlu).unwrap()[0], Some(45.3));
    assert!(rep.conversions.iter().any(|c| c.contains("num_params")));
}

const MALFORMED: &str = "\
model_id,params_b,n_layers,arc_c
good/one,7,32,50.0
bad/layers,7,thirty-two,51.0
bad/score,7,32,150
good/two,1.1,22,30.5
";

#[test]
fn malformed_row_names_file_line_and_column() {
    let err = load_str(MALFORMED, "data/x.csv", &LoadOptions::default()).unwrap_err();
    match &err {
        DatasetError::Value {
            path,
            line,
            column_index,
            column,
            value,
            ..
        } => {
            assert_eq!(path.to_str(), Some("data/x.csv"));
            assert_eq!(*line, 3);
            assert_eq!(*column_index, 3);
            assert_eq!(column, "n_layers");
            assert_eq!(value, "thirty-two");
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("data/x.csv:3: column 3 `n_layers`"), "{msg}");
    assert_eq!(err.location(), Some((3, 3)));
}

#[test]
fn skip_invalid_counts_and_reports() {
    let (ds, rep) = load_str(MALFORMED, "x.csv", &LoadOptions { skip_invalid: true }).unwrap();
    assert_eq!(ds.model_ids, vec!["good/one", "good/two"]);
    assert_eq!(rep.rows_read, 4);
    assert_eq!(rep.rows_kept, 2);
    assert_eq!(rep.skipped.len(), 2);
    assert_eq!((rep.skipped[0].line, rep.skipped[0].column_index), (3, 3));
    assert_eq!(
        (
            rep.skipped[1].line,
            rep.skipped[1].column_index,
            rep.skipped[1].column.as_str()
        ),
        (4, 4, "arc_c")
    );
    assert!(rep.summary().contains("2 skipped as invalid"));
}

#[test]
fn ragged_row_is_an_error_with_line_and_column() {
    let text = "model_id,params_b,n_layers\nok/a,7,32\nshort/b,7\nlong/c,7,32,extra\n";
    let err = load_str(text, "r.csv", &LoadOptions::default()).unwrap_err();
    assert_eq!(err.location(), Some((3, 3)), "{err}");
    assert!(
        err.to_string().contains("row has 2 fields, the header has 3"),
        "{err}"
    );
    let (ds, rep) = load_str(text, "r.csv", &LoadOptions { skip_invalid: true }).unwrap();
    assert_eq!(ds.model_ids, vec!["ok/a"]);
    assert_eq!(rep.rows_read, 3);
    assert_eq!(
        rep.skipped
            .iter()
            .map(|s| (s.line, s.column_index))
            .collect::<Vec<_>>(),
        vec![(3, 3), (4, 4)]
    );
}

#[test]
fn missing_id_column_is_reported() {
    let err = load_str("foo,bar\n1,2\n", "n.csv", &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::MissingColumn { .. }), "{err:?}");
}

#[test]
fn header_aliases_are_unambiguous() {
    let mut seen = std::collections::HashMap::new();
    for &c in Column::ALL {
        assert!(
            c.aliases()
                .contains(&strata_dataset::columns::normalise_header(c.name()).as_str()),
            "{c:?}"
        );
        for a in c.aliases() {
            if let Some(prev) = seen.insert(*a, c) {
                panic!("alias {a} maps to both {prev:?} and {c:?}");
            }
        }
    }
}

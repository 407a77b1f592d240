//! Canonical columns and the header aliases that map onto them.
//!
//! A header is normalised before lookup: lower-cased, every run of characters other than ASCII
//! letters and digits removed (`"Model Size (B)"` → `modelsizeb`, `num_hidden_layers` →
//! `numhiddenlayers`). Unknown headers are kept out of the dataset and listed in the load report.

/// How a column's cells are typed and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The model's id (required).
    Id,
    /// Free text / category (architecture class, activation, ...).
    Category,
    /// Non-negative integer (layers, widths, heads, ...).
    Integer,
    /// Parameters, normalised to billions.
    Params,
    /// Benchmark score, normalised to 0–100.
    Score,
    /// Date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (a time part is ignored).
    Date,
    /// Boolean (`true/false`, `1/0`, `yes/no`), stored as 1.0 / 0.0.
    Bool,
}

macro_rules! columns {
    ($( $var:ident = $name:literal, $kind:ident, [$($alias:literal),*]; )*) => {
        /// A canonical column of the dataset.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Column { $($var),* }

        impl Column {
            pub const ALL: &'static [Column] = &[$(Column::$var),*];

            /// The canonical (bundled-file) header.
            pub fn name(self) -> &'static str {
                match self { $(Column::$var => $name),* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Column::$var => Kind::$kind),* }
            }

            /// Normalised aliases (see the module docs), the canonical name included.
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $(Column::$var => &[$($alias),*]),* }
            }
        }
    };
}

columns! {
    ModelId = "model_id", Id, ["modelid", "model", "modelname", "name", "fullname", "id", "evalname", "hfid", "repoid"];
    Family = "family", Category, ["family", "modelfamily"];
    ArchClass = "arch_class", Category, ["archclass", "architecture", "architectures", "arch", "architectureclass", "configclass"];
    ModelType = "model_type", Category, ["modeltype", "type"];
    Precision = "precision", Category, ["precision", "dtype", "torchdtype"];
    ReleaseDate = "release_date", Date, ["releasedate", "date", "release", "releasetime"];
    UploadDate = "upload_date", Date, ["uploaddate", "uploadtohubdate", "createdat", "hubuploaddate"];
    ParamsB = "params_b", Params, ["paramsb", "size", "params", "parameters", "numparams", "nparams", "paramsbillions", "modelsizeb", "modelsize", "paramcount", "hubparamsb", "paramsbn"];
    DModel = "d_model", Integer, ["dmodel", "hiddensize", "nembd", "dim", "hiddendim", "embeddim", "width"];
    DFfn = "d_ffn", Integer, ["dffn", "intermediatesize", "ffndim", "ninner", "ffnhiddensize", "dff", "ffnsize", "mlpdim"];
    NLayers = "n_layers", Integer, ["nlayers", "numhiddenlayers", "nlayer", "layers", "numlayers", "depth"];
    NHeads = "n_heads", Integer, ["nheads", "numattentionheads", "nhead", "heads", "numheads", "attentionheads"];
    NKvHeads = "n_kv_heads", Integer, ["nkvheads", "numkeyvalueheads", "kvheads", "nqueryheadgroups", "nquerygroups", "numkvheads", "multiquerygroupnum"];
    HeadDim = "head_dim", Integer, ["headdim", "headsize", "kvchannels", "dhead"];
    VocabSize = "vocab_size", Integer, ["vocabsize", "vocab", "nvocab", "paddedvocabsize"];
    ContextLength = "context_length", Integer, ["contextlength", "context", "maxpositionembeddings", "nctx", "npositions", "seqlength", "maxseqlen", "blocksize", "contextwindow", "maxsequencelength"];
    Activation = "activation", Category, ["activation", "hiddenact", "activationfunction", "act", "hiddenactivation"];
    GatedMlp = "gated_mlp", Bool, ["gatedmlp", "glu", "gated"];
    Norm = "norm", Category, ["norm", "normtype", "normalization", "normclass", "normclassname"];
    Positional = "positional", Category, ["positional", "positionembeddingtype", "posemb", "positionalencoding", "positionembedding", "pe"];
    NExperts = "n_experts", Integer, ["nexperts", "numlocalexperts", "nexpert", "numexperts", "nroutedexperts"];
    ArcC = "arc_c", Score, ["arcc", "arc", "arcchallenge", "arcchallengeacc", "arcaccnorm"];
    HellaSwag = "hellaswag", Score, ["hellaswag"];
    Winogrande = "winogrande", Score, ["winogrande", "winograd"];
    TruthfulQa = "truthfulqa", Score, ["truthfulqa", "truthfulqamc2", "truthfulqamc"];
    Gsm8k = "gsm8k", Score, ["gsm8k"];
    Mmlu = "mmlu", Score, ["mmlu", "hendrycks"];
    IfEval = "ifeval", Score, ["ifeval"];
    Bbh = "bbh", Score, ["bbh"];
    MathLvl5 = "math_lvl5", Score, ["mathlvl5", "mathhard", "math"];
    Gpqa = "gpqa", Score, ["gpqa"];
    Musr = "musr", Score, ["musr"];
    MmluPro = "mmlu_pro", Score, ["mmlupro"];
}

/// The six Open LLM Leaderboard v1 benchmarks, in the paper's order.
pub const V1_BENCHMARKS: &[Column] = &[
    Column::ArcC,
    Column::HellaSwag,
    Column::Winogrande,
    Column::TruthfulQa,
    Column::Gsm8k,
    Column::Mmlu,
];

/// The six Open LLM Leaderboard v2 benchmarks (normalised scores).
pub const V2_BENCHMARKS: &[Column] = &[
    Column::IfEval,
    Column::Bbh,
    Column::MathLvl5,
    Column::Gpqa,
    Column::Musr,
    Column::MmluPro,
];

/// Numeric structural columns (the features correlated with benchmarks).
pub const STRUCTURE: &[Column] = &[
    Column::ParamsB,
    Column::DModel,
    Column::DFfn,
    Column::NLayers,
    Column::NHeads,
    Column::NKvHeads,
    Column::HeadDim,
    Column::VocabSize,
    Column::ContextLength,
];

/// Normalise a header for alias lookup.
pub fn normalise_header(h: &str) -> String {
    h.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The canonical column a header maps to, if any.
pub fn map_header(h: &str) -> Option<Column> {
    let n = normalise_header(h);
    if n.is_empty() {
        return None;
    }
    Column::ALL
        .iter()
        .copied()
        .find(|c| c.aliases().contains(&n.as_str()))
}

/// Parse a canonical name (`n_layers`) or any alias (`num_hidden_layers`).
pub fn parse_column(s: &str) -> Option<Column> {
    map_header(s)
}

impl Column {
    pub fn is_benchmark(self) -> bool {
        self.kind() == Kind::Score
    }

    /// Columns that hold numbers (integers, params, scores, booleans).
    pub fn is_numeric(self) -> bool {
        matches!(
            self.kind(),
            Kind::Integer | Kind::Params | Kind::Score | Kind::Bool
        )
    }
}

//! GGUF files: metadata -> Hugging Face style config, tensors -> dequantized, HF-named.
//!
//! The contract with the decoder: [`load_gguf`] hands back what a Hugging Face checkpoint would
//! hold, a `config.json` (as a [`serde_json::Value`]) and tensors under transformers' parameter
//! names, in transformers' layout and semantics. It follows transformers' own GGUF loading
//! (`modeling_gguf_pytorch_utils.py`, `integrations/ggml.py`), which undoes llama.cpp's conventions:
//!
//! * `llama`: llama.cpp's converter permutes the rows of `attn_q`/`attn_k` so that its rotary
//!   embedding can rotate adjacent pairs; the permutation is reversed here (transformers'
//!   `reverse_permute_weights`). Other architectures (Qwen, Gemma, Phi-3) use the "neox" rotary
//!   layout in llama.cpp and are stored unpermuted.
//! * `gemma2`/`gemma3`: llama.cpp stores every RMSNorm weight (all tensors whose name contains
//!   `norm.weight`, q/k norms included) as `1 + w`; transformers' Gemma norms compute `x * (1 + w)`,
//!   so 1 is subtracted (in f32, before any cast).
//! * tied embeddings: a file without `output.weight` ties the unembedding to `token_embd`; the
//!   config says `tie_word_embeddings: true` and `lm_head.weight` is inserted as a second handle on
//!   the embedding tensor (same storage, no copy), as transformers' state dict has it.
//!
//! Every tensor is dequantized on the CPU with candle (bit-identical to gguf-py, which
//! transformers uses), converted in f32, then cast to the requested dtype and moved to the device.
//! Sizes are checked against the file length before any tensor data is read, so a truncated file
//! fails with an error naming the file and the first tensor that does not fit.
pub mod config;
pub mod names;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, TensorInfo};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};

pub use candle_core::quantized::gguf_file::Value as GgufValue;

/// The metadata key/value pairs of a GGUF file, as candle reads them.
pub type GgufMetadata = HashMap<String, GgufValue>;

/// Everything that can go wrong reading a GGUF file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{}: no such GGUF file{hint}", path.display())]
    NotFound { path: PathBuf, hint: String },

    #[error("{}: cannot read: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: not a readable GGUF file ({message}); the file may be truncated or corrupt", path.display())]
    Header { path: PathBuf, message: String },

    #[error(
        "{}: truncated: tensor '{tensor}' needs bytes {start}..{end} but the file is only {file_len} bytes long \
         (incomplete download or chunk concatenation?)",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        tensor: String,
        start: u64,
        end: u64,
        file_len: u64,
    },

    #[error("{}: unsupported GGUF architecture '{arch}' (supported: {supported})", path.display())]
    UnsupportedArchitecture {
        path: PathBuf,
        arch: String,
        supported: String,
    },

    #[error("{}: missing metadata key '{key}'", path.display())]
    MissingMetadata { path: PathBuf, key: String },

    #[error("{}: metadata key '{key}': {message}", path.display())]
    BadMetadata {
        path: PathBuf,
        key: String,
        message: String,
    },

    #[error("{}: tensor '{tensor}': {message}", path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        message: String,
    },

    #[error("{}: tokenizer: {source}", path.display())]
    Tokenizer {
        path: PathBuf,
        source: crate::tokenizer_gguf::GgufTokenizerError,
    },
}

/// A GGUF file's header: metadata and tensor table, no tensor data read.
#[derive(Debug)]
pub struct GgufHeader {
    pub path: PathBuf,
    pub content: Content,
    pub file_len: u64,
}

/// One tensor of the file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorEntry {
    /// llama.cpp's name, e.g. `blk.3.attn_q.weight`.
    pub gguf_name: String,
    /// transformers' name, e.g. `model.layers.3.self_attn.q_proj.weight`; `None` when transformers
    /// has no such parameter (e.g. llama 3's `rope_freqs.weight`), in which case it is not loaded.
    pub hf_name: Option<String>,
    /// ggml's type name: `F32`, `F16`, `BF16`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`, `Q8_1`,
    /// `Q2_K` … `Q8_K`.
    pub quant_type: String,
    /// Row-major shape (`[out, in]` for a linear weight), as the HF tensor has it.
    pub shape: Vec<usize>,
    /// Bytes in the file.
    pub n_bytes: u64,
}

/// A GGUF model, converted to what a Hugging Face checkpoint holds.
#[derive(Debug)]
pub struct GgufModel {
    pub path: PathBuf,
    /// `general.architecture`, e.g. `llama`, `gemma3`.
    pub architecture: String,
    /// The HF `config.json` built from the metadata (see [`config::hf_config`]).
    pub config: serde_json::Value,
    /// HF-named tensors in HF layout, in the requested dtype, on the requested device.
    pub tensors: HashMap<String, Tensor>,
    /// `(name, ggml type)` for every tensor of the file, in file order; the name is the HF name
    /// where there is one, else the GGUF name.
    pub quant_types: Vec<(String, String)>,
    /// Every tensor of the file, in file order, with both names.
    pub entries: Vec<GgufTensorEntry>,
    /// All metadata, tokenizer arrays included (see [`crate::tokenizer_gguf::tokenizer_from_gguf`]).
    pub metadata: GgufMetadata,
}

impl GgufModel {
    /// Quantization types per tensor group: layer indices replaced by `*`
    /// (`model.layers.*.self_attn.q_proj.weight`), `(group, type, count)` in file order.
    pub fn quant_groups(&self) -> Vec<(String, String, usize)> {
        quant_groups(&self.entries)
    }
}

/// `(group, type, count)` for the entries, layer indices replaced by `*`, first-seen order.
pub fn quant_groups(entries: &[GgufTensorEntry]) -> Vec<(String, String, usize)> {
    let mut out: Vec<(String, String, usize)> = Vec::new();
    for e in entries {
        let name = e.hf_name.as_deref().unwrap_or(&e.gguf_name);
        let group = name
            .split('.')
            .map(|part| {
                if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                    "*"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        match out.iter_mut().find(|(g, t, _)| *g == group && *t == e.quant_type) {
            Some(slot) => slot.2 += 1,
            None => out.push((group, e.quant_type.clone(), 1)),
        }
    }
    out
}

/// ggml's name for a tensor type (`Q4_K`, not candle's `Q4K`).
pub fn ggml_type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

fn open(path: &Path) -> Result<(File, u64), GgufError> {
    let file = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            GgufError::NotFound {
                path: path.to_path_buf(),
                hint: String::new(),
            }
        } else {
            GgufError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    let file_len = file
        .metadata()
        .map_err(|e| GgufError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    Ok((file, file_len))
}

/// Reads the header (metadata and tensor table) of a GGUF file, no tensor data.
pub fn read_gguf_header(path: &Path) -> Result<GgufHeader, GgufError> {
    let (file, file_len) = open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let content = match Content::read(&mut reader) {
        Ok(content) => content,
        Err(e) => {
            // candle's error names only the type code: find the tensor that carries it
            if let Some((tensor, code)) = tensor_with_unknown_type(path) {
                return Err(GgufError::Tensor {
                    path: path.to_path_buf(),
                    tensor,
                    message: format!(
                        "ggml type {code} is not one strata can read ({READABLE_TYPES}); \
                         re-quantize the model to one of these (e.g. llama.cpp's llama-quantize with Q4_K_M) \
                         or load its safetensors checkpoint"
                    ),
                });
            }
            // (without the backtrace candle attaches when RUST_BACKTRACE is set)
            let e = match e {
                candle_core::Error::WithBacktrace { inner, .. } => *inner,
                e => e,
            };
            return Err(GgufError::Header {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    Ok(GgufHeader {
        path: path.to_path_buf(),
        content,
        file_len,
    })
}

/// The ggml types candle reads, by name.
const READABLE_TYPES: &str =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K";

/// The first tensor (name, type code) whose ggml type candle does not know, found by walking the
/// header of a GGUF v2/v3 file; `None` when there is none or the header cannot be walked.
fn tensor_with_unknown_type(path: &Path) -> Option<(String, u32)> {
    use std::io::{Read, Seek, SeekFrom};
    const KNOWN: &[u32] = &[0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 30];
    fn u32_(r: &mut impl Read) -> Option<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).ok()?;
        Some(u32::from_le_bytes(b))
    }
    fn u64_(r: &mut impl Read) -> Option<u64> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }
    fn skip(r: &mut impl Seek, n: u64) -> Option<()> {
        r.seek(SeekFrom::Current(i64::try_from(n).ok()?)).ok().map(|_| ())
    }
    fn fixed_size(ty: u32) -> Option<u64> {
        match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }
    fn skip_value<R: Read + Seek>(r: &mut R, ty: u32, depth: u32) -> Option<()> {
        if let Some(n) = fixed_size(ty) {
            return skip(r, n);
        }
        match ty {
            8 => {
                let n = u64_(r)?;
                skip(r, n)
            }
            9 if depth < 4 => {
                let (elem, n) = (u32_(r)?, u64_(r)?);
                match fixed_size(elem) {
                    Some(size) => skip(r, n.checked_mul(size)?),
                    // strings and nested arrays: each read fails once past the end of the file
                    None => (0..n).try_for_each(|_| skip_value(r, elem, depth + 1)),
                }
            }
            _ => None,
        }
    }
    let mut r = BufReader::new(File::open(path).ok()?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).ok()?;
    if &magic != b"GGUF" || !matches!(u32_(&mut r)?, 2 | 3) {
        return None;
    }
    let (n_tensors, n_kv) = (u64_(&mut r)?, u64_(&mut r)?);
    for _ in 0..n_kv {
        let key_len = u64_(&mut r)?;
        skip(&mut r, key_len)?;
        let ty = u32_(&mut r)?;
        skip_value(&mut r, ty, 0)?;
    }
    for _ in 0..n_tensors {
        let name_len = u64_(&mut r)?;
        if name_len > 1 << 16 {
            return None;
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).ok()?;
        let n_dims = u32_(&mut r)?;
        if n_dims > 8 {
            return None;
        }
        skip(&mut r, 8 * n_dims as u64)?;
        let ty = u32_(&mut r)?;
        if !KNOWN.contains(&ty) {
            return Some((String::from_utf8_lossy(&name).into_owned(), ty));
        }
        skip(&mut r, 8)?;
    }
    None
}

impl GgufHeader {
    /// `general.architecture`.
    pub fn architecture(&self) -> Result<String, GgufError> {
        Meta::new(&self.content.metadata, &self.path).string("general.architecture")
    }

    /// Tensor infos sorted by their offset in the file (the order the file lists them in).
    pub fn tensors_in_file_order(&self) -> Vec<(&String, &TensorInfo)> {
        let mut v: Vec<_> = self.content.tensor_infos.iter().collect();
        v.sort_by(|a, b| a.1.offset.cmp(&b.1.offset).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// Bytes a tensor takes in the file.
    pub fn tensor_bytes(&self, name: &str, info: &TensorInfo) -> Result<u64, GgufError> {
        let bad = |message: String| GgufError::Tensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            message,
        };
        // checked: a corrupt shape's product overflows (candle's `elem_count` does not check)
        let dims = info.shape.dims();
        let elems = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {dims:?} has more elements than can be addressed; the header is corrupt: re-download or re-convert the file")))?;
        let block = info.ggml_dtype.block_size();
        if !elems.is_multiple_of(block) {
            return Err(GgufError::Tensor {
                path: self.path.clone(),
                tensor: name.to_string(),
                message: format!(
                    "{elems} elements is not a multiple of the {} block size {block}",
                    ggml_type_name(info.ggml_dtype)
                ),
            });
        }
        (elems / block)
            .checked_mul(info.ggml_dtype.type_size())
            .map(|n| n as u64)
            .ok_or_else(|| bad(format!("shape {dims:?} needs more bytes than can be addressed; the header is corrupt: re-download or re-convert the file")))
    }

    /// Checks that every tensor's data lies inside the file; errors on the first one that does not.
    pub fn check_sizes(&self) -> Result<(), GgufError> {
        for (name, info) in self.tensors_in_file_order() {
            let n = self.tensor_bytes(name, info)?;
            let start = self.content.tensor_data_offset.saturating_add(info.offset);
            let end = start.saturating_add(n);
            if end > self.file_len {
                return Err(GgufError::Truncated {
                    path: self.path.clone(),
                    tensor: name.clone(),
                    start,
                    end,
                    file_len: self.file_len,
                });
            }
        }
        Ok(())
    }

    /// The file's tensors with their HF names, in file order.
    pub fn entries(&self) -> Result<Vec<GgufTensorEntry>, GgufError> {
        let arch = self.architecture()?;
        let n_layers = Meta::new(&self.content.metadata, &self.path).u64(&format!("{arch}.block_count"))?;
        let mut out = Vec::with_capacity(self.content.tensor_infos.len());
        for (name, info) in self.tensors_in_file_order() {
            out.push(GgufTensorEntry {
                gguf_name: name.clone(),
                hf_name: names::hf_name(&arch, name, n_layers as usize),
                quant_type: ggml_type_name(info.ggml_dtype).to_string(),
                shape: info.shape.dims().to_vec(),
                n_bytes: self.tensor_bytes(name, info)?,
            });
        }
        Ok(out)
    }

    /// One tensor as stored, dequantized to f32 on the CPU (GGUF name, no HF conversion), after
    /// checking that its data lies inside the file.
    pub fn read_tensor_f32(&self, gguf_name: &str) -> Result<Tensor, GgufError> {
        let info = self
            .content
            .tensor_infos
            .get(gguf_name)
            .ok_or_else(|| GgufError::Tensor {
                path: self.path.clone(),
                tensor: gguf_name.to_string(),
                message: "no such tensor in the file".to_string(),
            })?;
        let n = self.tensor_bytes(gguf_name, info)?;
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        if start.saturating_add(n) > self.file_len {
            return Err(GgufError::Truncated {
                path: self.path.clone(),
                tensor: gguf_name.to_string(),
                start,
                end: start.saturating_add(n),
                file_len: self.file_len,
            });
        }
        let (file, _) = open(&self.path)?;
        let mut reader = BufReader::new(file);
        let err = |e: candle_core::Error| GgufError::Tensor {
            path: self.path.clone(),
            tensor: gguf_name.to_string(),
            message: e.to_string(),
        };
        let q = info
            .read(&mut reader, self.content.tensor_data_offset, &Device::Cpu)
            .map_err(err)?;
        q.dequantize(&Device::Cpu).map_err(err)
    }

    /// The HF config built from the metadata.
    pub fn hf_config(&self) -> Result<serde_json::Value, GgufError> {
        let names: Vec<&str> = self.content.tensor_infos.keys().map(|s| s.as_str()).collect();
        config::hf_config(&self.content.metadata, &names, &self.path)
    }
}

/// Loads a GGUF file: HF config from the metadata, every tensor dequantized to `dtype` on `device`
/// under its HF name, with llama.cpp's conventions undone (see the module docs).
pub fn load_gguf(path: &Path, dtype: DType, device: &Device) -> Result<GgufModel, GgufError> {
    let header = read_gguf_header(path)?;
    let arch = header.architecture()?;
    let config = header.hf_config()?;
    // sizes first: a truncated file fails here, before any tensor data is read
    header.check_sizes()?;
    let entries = header.entries()?;

    let n_heads = config["num_attention_heads"].as_u64().unwrap_or(0) as usize;
    let n_kv_heads = config["num_key_value_heads"].as_u64().unwrap_or(n_heads as u64) as usize;

    let (file, _) = open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let tensor_err = |tensor: &str, e: candle_core::Error| GgufError::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        message: e.to_string(),
    };

    let mut tensors = HashMap::with_capacity(entries.len() + 1);
    for entry in &entries {
        let Some(hf_name) = &entry.hf_name else { continue };
        let info = &header.content.tensor_infos[&entry.gguf_name];
        let q = info
            .read(&mut reader, header.content.tensor_data_offset, &Device::Cpu)
            .map_err(|e| tensor_err(&entry.gguf_name, e))?;
        let t = q
            .dequantize(&Device::Cpu)
            .map_err(|e| tensor_err(&entry.gguf_name, e))?;
        let t = names::to_hf(&arch, &entry.gguf_name, t, n_heads, n_kv_heads)
            .map_err(|e| tensor_err(&entry.gguf_name, e))?;
        let t = t
            .to_dtype(dtype)
            .and_then(|t| t.to_device(device))
            .map_err(|e| tensor_err(&entry.gguf_name, e))?;
        tensors.insert(hf_name.clone(), t);
    }
    if config["tie_word_embeddings"].as_bool() == Some(true) && !tensors.contains_key("lm_head.weight") {
        if let Some(embed) = tensors.get("model.embed_tokens.weight") {
            tensors.insert("lm_head.weight".to_string(), embed.clone());
        }
    }

    let quant_types = entries
        .iter()
        .map(|e| {
            (
                e.hf_name.clone().unwrap_or_else(|| e.gguf_name.clone()),
                e.quant_type.clone(),
            )
        })
        .collect();
    Ok(GgufModel {
        path: path.to_path_buf(),
        architecture: arch,
        config,
        tensors,
        quant_types,
        entries,
        metadata: header.content.metadata,
    })
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`), reading only the header.
pub fn tokenizer_from_gguf_file(path: &Path) -> Result<tokenizers::Tokenizer, GgufError> {
    let header = read_gguf_header(path)?;
    crate::tokenizer_gguf::tokenizer_from_gguf(&header.content.metadata).map_err(|source| {
        GgufError::Tokenizer {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The tokenizer for a GGUF model: a `tokenizer.json` given beside the file wins
/// (`<file stem>.tokenizer.json`, then `tokenizer.json` in the same directory), else the one the
/// GGUF metadata describes. Returns the tokenizer and the file it came from.
pub fn tokenizer_for_gguf(path: &Path) -> Result<(tokenizers::Tokenizer, PathBuf), GgufError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for candidate in [
        dir.join(format!("{stem}.tokenizer.json")),
        dir.join("tokenizer.json"),
    ] {
        if candidate.is_file() {
            let tok = tokenizers::Tokenizer::from_file(&candidate).map_err(|e| GgufError::Tokenizer {
                path: candidate.clone(),
                source: crate::tokenizer_gguf::GgufTokenizerError::Build(e.to_string()),
            })?;
            return Ok((tok, candidate));
        }
    }
    Ok((tokenizer_from_gguf_file(path)?, path.to_path_buf()))
}

/// Typed access to metadata, with errors naming the file and the key.
pub(crate) struct Meta<'a> {
    pub md: &'a GgufMetadata,
    pub path: &'a Path,
}

impl<'a> Meta<'a> {
    pub fn new(md: &'a GgufMetadata, path: &'a Path) -> Self {
        Meta { md, path }
    }

    fn missing(&self, key: &str) -> GgufError {
        GgufError::MissingMetadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
        }
    }

    fn bad(&self, key: &str, message: String) -> GgufError {
        GgufError::BadMetadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message,
        }
    }

    pub fn u64_opt(&self, key: &str) -> Result<Option<u64>, GgufError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => value_u64(v)
                .map(Some)
                .ok_or_else(|| self.bad(key, format!("expected an integer, found {v:?}"))),
        }
    }

    pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
        self.u64_opt(key)?.ok_or_else(|| self.missing(key))
    }

    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => value_f64(v)
                .map(Some)
                .ok_or_else(|| self.bad(key, format!("expected a number, found {v:?}"))),
        }
    }

    pub fn string_opt(&self, key: &str) -> Result<Option<String>, GgufError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(GgufValue::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.bad(key, format!("expected a string, found {v:?}"))),
        }
    }

    pub fn string(&self, key: &str) -> Result<String, GgufError> {
        self.string_opt(key)?.ok_or_else(|| self.missing(key))
    }

    /// An integer per layer: either one integer (same for all) or an array of them.
    pub fn per_layer_u64_opt(&self, key: &str) -> Result<Option<Vec<u64>>, GgufError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(GgufValue::Array(a)) => a
                .iter()
                .map(|v| value_u64(v).ok_or_else(|| self.bad(key, format!("expected integers, found {v:?}"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => value_u64(v)
                .map(|x| Some(vec![x]))
                .ok_or_else(|| self.bad(key, format!("expected an integer, found {v:?}"))),
        }
    }
}

pub(crate) fn value_u64(v: &GgufValue) -> Option<u64> {
    match v {
        GgufValue::U8(x) => Some(*x as u64),
        GgufValue::U16(x) => Some(*x as u64),
        GgufValue::U32(x) => Some(*x as u64),
        GgufValue::U64(x) => Some(*x),
        GgufValue::I8(x) => u64::try_from(*x).ok(),
        GgufValue::I16(x) => u64::try_from(*x).ok(),
        GgufValue::I32(x) => u64::try_from(*x).ok(),
        GgufValue::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

pub(crate) fn value_i64(v: &GgufValue) -> Option<i64> {
    match v {
        GgufValue::U8(x) => Some(*x as i64),
        GgufValue::U16(x) => Some(*x as i64),
        GgufValue::U32(x) => Some(*x as i64),
        GgufValue::U64(x) => i64::try_from(*x).ok(),
        GgufValue::I8(x) => Some(*x as i64),
        GgufValue::I16(x) => Some(*x as i64),
        GgufValue::I32(x) => Some(*x as i64),
        GgufValue::I64(x) => Some(*x),
        _ => None,
    }
}

pub(crate) fn value_f64(v: &GgufValue) -> Option<f64> {
    match v {
        GgufValue::F32(x) => Some(*x as f64),
        GgufValue::F64(x) => Some(*x),
        other => value_i64(other).map(|x| x as f64),
    }
}

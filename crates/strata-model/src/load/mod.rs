//! Where weights and configs come from: local safetensors directories, the Hugging Face hub,
//! GGUF files. Every source ends as an HF-style config plus HF-named tensors fed to the decoder.
pub mod gguf;
pub mod hub;
pub mod safetensors_dir;

/// Validates a safetensors file's header against its size (no data read); returns its dtypes.
pub use safetensors_dir::check_safetensors as validate_safetensors_header;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use crate::config::ModelConfig;
use crate::decoder::HookedDecoder;
use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;

/// How to load: dtype, device, hub revision.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    pub revision: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            revision: None,
        }
    }
}

/// A loaded model: architecture, decoder, tokenizer and where it came from.
pub struct Model {
    /// What the user named (path or repo id).
    pub name: String,
    pub config: ModelConfig,
    pub decoder: HookedDecoder,
    pub tokenizer: Option<Tokenizer>,
    /// Storage types of the weights as found on disk, by tensor group, e.g. `("attn_q", "Q4_1", 30)`.
    pub stored_types: Vec<(String, String, usize)>,
}

impl Model {
    /// Loads a `.gguf` file, a local directory, or a Hugging Face repo id.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Model> {
        crate::device_memory::keep_freed_device_memory(&opts.device, true)?;
        let path = Path::new(spec);
        if spec.ends_with(".gguf") || path.is_file() {
            return load_gguf_model(path, opts);
        }
        if path.is_dir() {
            return safetensors_dir::load(path, opts);
        }
        if looks_like_path(spec) {
            return Err(ModelError::file(path, "no such file or directory"));
        }
        let dir = hub::resolve(spec, opts.revision.as_deref())?;
        let mut model = safetensors_dir::load(&dir, opts)?;
        model.name = spec.to_string();
        Ok(model)
    }

    /// The tokenizer, or an error saying how to get one.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            ModelError::Input(format!(
                "{}: no tokenizer (put a tokenizer.json beside the weights, or pass token ids)",
                self.name
            ))
        })
    }
}

fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') || spec.matches('/').count() != 1
}

fn load_gguf_model(path: &Path, opts: &LoadOptions) -> Result<Model> {
    let g = gguf::load_gguf(path, opts.dtype, &opts.device)
        .map_err(|e| ModelError::file(path, strip_path(&e.to_string(), path)))?;
    let config =
        ModelConfig::from_hf_json(&g.config).map_err(|e| ModelError::file(path, format!("metadata: {e}")))?;
    let mut tensors = g.tensors;
    if config.tie_embeddings {
        // The decoder reads a tied unembedding from the embedding: no second handle kept alive.
        tensors.remove("lm_head.weight");
    }
    let vb = VarBuilder::from_backend(
        Box::new(HandedOver::new(tensors)),
        opts.dtype,
        opts.device.clone(),
    );
    let decoder =
        HookedDecoder::load(config.clone(), &vb).map_err(|e| ModelError::file(path, e.to_string()))?;
    let beside = path.with_file_name("tokenizer.json");
    let tokenizer = if beside.is_file() {
        Tokenizer::from_file(&beside)?
    } else {
        let t = crate::tokenizer_gguf::tokenizer_from_gguf(&g.metadata)
            .map_err(|e| ModelError::file(path, format!("tokenizer: {e}")))?;
        Tokenizer::new(t, path.to_path_buf())
    };
    let stored_types = gguf::quant_groups(&g.entries);
    let model = Model {
        name: path.display().to_string(),
        config,
        decoder,
        tokenizer: Some(tokenizer),
        stored_types,
    };
    check_vocab(&model)?;
    Ok(model)
}

/// Dequantized GGUF tensors that leave the map as the decoder takes them, so that each one's
/// memory goes when the decoder has re-laid it out (CPU panels, fused projections) instead of
/// staying until the end of loading.
struct HandedOver {
    left: Mutex<HashMap<String, Tensor>>,
    /// Every name there was, taken or not: what `contains_tensor` answers.
    names: HashSet<String>,
}

impl HandedOver {
    fn new(tensors: HashMap<String, Tensor>) -> Self {
        let names = tensors.keys().cloned().collect();
        HandedOver {
            left: Mutex::new(tensors),
            names,
        }
    }

    fn take(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.left.lock().expect("not poisoned").remove(name);
        let Some(tensor) = tensor else {
            candle_core::bail!("tensor '{name}' missing or already taken")
        };
        tensor.to_device(dev)?.to_dtype(dtype)
    }
}

impl candle_nn::var_builder::SimpleBackend for HandedOver {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.take(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                tensor.dims()
            )
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.take(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// GGUF errors already name the file; avoid saying it twice.
fn strip_path(message: &str, path: &Path) -> String {
    message
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(message)
        .to_string()
}

/// A tokenizer whose ids exceed the embedding matrix would index out of range: refuse it.
pub(crate) fn check_vocab(model: &Model) -> Result<()> {
    if let Some(t) = &model.tokenizer {
        let n = t.vocab_size();
        if n > model.config.vocab_size {
            return Err(ModelError::file(
                t.path(),
                format!(
                    "tokenizer has {n} tokens but the embedding matrix has {} rows (config vocab_size); \
                     the tokenizer does not belong to these weights: use the tokenizer.json that came with them",
                    model.config.vocab_size
                ),
            ));
        }
    }
    Ok(())
}

/// `f32`, `f16`, `bf16`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => Err(ModelError::Input(format!(
            "unknown dtype '{other}' (f32, f16, bf16)"
        ))),
    }
}

/// `cpu`, `cuda`, `cuda:N`, `metal`, `auto` (the first GPU compiled in and present, else CPU).
pub fn parse_device(s: &str) -> Result<Device> {
    let gpu_err = |e: candle_core::Error| {
        ModelError::Input(format!(
            "device '{s}' is not available: {e} (is a GPU present with its driver, and was strata built with --features cuda or metal? otherwise use --device cpu)"
        ))
    };
    match s {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            if candle_core::utils::cuda_is_available() {
                Device::new_cuda(0).map_err(gpu_err)
            } else if candle_core::utils::metal_is_available() {
                Device::new_metal(0).map_err(gpu_err)
            } else {
                Ok(Device::Cpu)
            }
        }
        "metal" => Device::new_metal(0).map_err(gpu_err),
        "cuda" => Device::new_cuda(0).map_err(gpu_err),
        other => match other.strip_prefix("cuda:").map(usize::from_str) {
            Some(Ok(n)) => Device::new_cuda(n).map_err(gpu_err),
            _ => Err(ModelError::Input(format!(
                "unknown device '{other}' (cpu, cuda, cuda:N, metal, auto)"
            ))),
        },
    }
}

/// Refuses pickle checkpoints: they can execute code when loaded.
pub(crate) fn refuse_pickle<T>(dir: &Path) -> Result<T> {
    let pickles: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::file(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("bin" | "pt" | "pth" | "ckpt")
            )
        })
        .collect();
    Err(ModelError::file(
        dir,
        format!(
            "no safetensors weights; found pickle files ({}) which strata never unpickles (they can run code). \
             Convert them to safetensors first, e.g. with transformers: \
             AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)",
            pickles.iter().filter_map(|p| p.file_name()?.to_str()).collect::<Vec<_>>().join(", ")
        ),
    ))
}

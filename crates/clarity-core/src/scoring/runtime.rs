//! ONNX Runtime through `ort` with `load-dynamic`: the shared library is found at run time
//! (`--onnxruntime-lib`, else `ORT_DYLIB_PATH`), never downloaded, never required.
//!
//! Rules:
//! - ONNX Runtime allows one library and one environment per process: both are set up once,
//!   by the first caller, and every later caller shares them (or their error).
//! - Without a library path no `ort` call is made at all: `ort` would otherwise look for the
//!   library by itself and panic when it is absent.
//! - A model's inputs and outputs are checked against what the bundle says before it is used:
//!   a bundle whose encoder does not produce (batch, tokens, 96) and (batch, 96) is refused.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::bundle::{Bundle, EMBED_DIM, INPUT_LENGTH};

/// Where the library is: the explicit setting, else `ORT_DYLIB_PATH` (the variable `ort`
/// itself documents), else nothing.
pub fn library_path(setting: Option<&Path>) -> Option<PathBuf> {
    setting.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("ORT_DYLIB_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Loads the library (first call only) and returns the process's environment.
pub fn environment(lib: &Path) -> Result<&'static Environment, String> {
    static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        if !lib.is_file() {
            return Err(format!(
                "ONNX Runtime library {} not found (install the onnxruntime==1.31.1 wheel; see README)",
                lib.display()
            ));
        }
        ort::init_from(lib)
            .map_err(|e| format!("cannot load ONNX Runtime: {e}"))?
            .with_name("clarity")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// One encoder session (and head session) per inference thread: `Session::run` takes `&mut`.
pub struct Model {
    encoder: Session,
    head: Option<(Session, Vec<String>)>,
    tokens: usize,
}

/// What one week gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub embedding: Vec<f32>,
    /// Head scores in the bundle's order (empty without a head).
    pub scores: Vec<(String, f32)>,
    /// Token rows, `tokens × 96`, only when asked for (tests and `clarity score`).
    pub tokens: Option<Vec<f32>>,
}

fn dims(t: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    Some((t.tensor_type()?, t.tensor_shape()?.to_vec()))
}

fn open(env: &Environment, path: &Path, intra_threads: usize) -> Result<Session, String> {
    let fail = |e: ort::Error| format!("{}: {e}", path.display());
    let mut b = Session::builder(env)
        .map_err(fail)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if intra_threads > 0 {
        b = b
            .with_intra_threads(intra_threads)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    b.commit_from_file(path).map_err(fail)
}

impl Model {
    /// Opens the bundle's sessions and checks their signatures. `intra_threads` 0 leaves
    /// ONNX Runtime's default (one per core).
    pub fn open(env: &Environment, bundle: &Bundle, intra_threads: usize) -> Result<Model, String> {
        let tokens = bundle.manifest.tokens as i64;
        let encoder = open(env, &bundle.encoder_path(), intra_threads)?;
        let sig = |s: &Session, name: &str, inputs: bool| {
            let list = if inputs { s.inputs() } else { s.outputs() };
            list.iter()
                .find(|o| o.name() == name)
                .and_then(|o| dims(o.dtype()))
        };
        let f = TensorElementType::Float32;
        let checks = [
            ("input", true, vec![-1, INPUT_LENGTH as i64]),
            ("tokens", false, vec![-1, tokens, EMBED_DIM as i64]),
            ("embedding", false, vec![-1, EMBED_DIM as i64]),
        ];
        for (name, is_input, want) in checks {
            match sig(&encoder, name, is_input) {
                Some((ty, d)) if ty == f && d == want => {}
                got => {
                    return Err(format!(
                        "encoder.onnx: `{name}` should be float32 {want:?} (-1 = any batch), is {got:?}"
                    ));
                }
            }
        }
        let head = match (bundle.head_path(), &bundle.manifest.head) {
            (Some(path), Some(info)) => {
                let s = open(env, &path, intra_threads)?;
                match sig(&s, "embedding", true) {
                    Some((ty, d)) if ty == f && d == [-1, EMBED_DIM as i64] => {}
                    got => {
                        return Err(format!(
                            "{}: input `embedding` should be float32 [-1, 96], is {got:?}",
                            info.file
                        ));
                    }
                }
                for name in &info.scores {
                    if !s.outputs().iter().any(|o| o.name() == name) {
                        return Err(format!("{}: no output `{name}`", info.file));
                    }
                }
                Some((s, info.scores.clone()))
            }
            _ => None,
        };
        Ok(Model {
            encoder,
            head,
            tokens: bundle.manifest.tokens,
        })
    }

    /// Runs `input` (`n × 10080`, standardised) as one batch.
    pub fn run(&mut self, input: &[f32], with_tokens: bool) -> Result<Vec<Output>, String> {
        let n = input.len() / INPUT_LENGTH;
        if n == 0 || input.len() != n * INPUT_LENGTH {
            return Err(format!(
                "input of {} values is not whole weeks",
                input.len()
            ));
        }
        let e = |e: ort::Error| format!("encoder: {e}");
        let x = TensorRef::from_array_view(([n, INPUT_LENGTH], input)).map_err(e)?;
        let outputs = self.encoder.run(ort::inputs!["input" => x]).map_err(e)?;
        let extract = |name: &str, len: usize| -> Result<Vec<f32>, String> {
            let v = outputs
                .get(name)
                .ok_or_else(|| format!("encoder: no output `{name}`"))?;
            let (_, data) = v.try_extract_tensor::<f32>().map_err(e)?;
            if data.len() != len {
                return Err(format!("encoder: `{name}` has {} values", data.len()));
            }
            Ok(data.to_vec())
        };
        let embedding = extract("embedding", n * EMBED_DIM)?;
        let tokens = if with_tokens {
            Some(extract("tokens", n * self.tokens * EMBED_DIM)?)
        } else {
            None
        };
        drop(outputs);
        let mut scores = vec![Vec::new(); n];
        if let Some((head, names)) = &mut self.head {
            let e = |e: ort::Error| format!("head: {e}");
            let x = TensorRef::from_array_view(([n, EMBED_DIM], &embedding[..])).map_err(e)?;
            let out = head.run(ort::inputs!["embedding" => x]).map_err(e)?;
            for name in names.iter() {
                let v = out
                    .get(name)
                    .ok_or_else(|| format!("head: no output `{name}`"))?;
                let (_, data) = v.try_extract_tensor::<f32>().map_err(e)?;
                if data.len() != n {
                    return Err(format!(
                        "head: `{name}` has {} values for {n} weeks",
                        data.len()
                    ));
                }
                for (i, s) in data.iter().enumerate() {
                    scores[i].push((name.clone(), *s));
                }
            }
        }
        let row = self.tokens * EMBED_DIM;
        Ok(scores
            .into_iter()
            .enumerate()
            .map(|(i, scores)| Output {
                embedding: embedding[i * EMBED_DIM..(i + 1) * EMBED_DIM].to_vec(),
                scores,
                tokens: tokens.as_ref().map(|t| t[i * row..(i + 1) * row].to_vec()),
            })
            .collect())
    }
}

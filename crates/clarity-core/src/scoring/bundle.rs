//! A PAT model bundle on disk (written by `scripts/pat-export`): `bundle.json`, `encoder.onnx`,
//! optional `head.onnx`, `scaler.json`.
//!
//! Rules:
//! - Every file named in `bundle.json`'s `files` is hashed and must match; a file of the bundle
//!   that is not listed, or a listed one that is absent, refuses the bundle.
//! - The architecture fields must be one of PAT-S/M/L as the paper defines them, so a bundle
//!   cannot claim a token count the encoder does not produce (the session checks the rest).
//! - Every refusal is a [`BundleError`] naming the file and what is wrong; nothing panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Minutes in one PAT input: a week.
pub const INPUT_LENGTH: usize = 10080;
/// Width of the embedding and of every token row.
pub const EMBED_DIM: usize = 96;

#[derive(Debug, thiserror::Error)]
#[error("PAT bundle {dir}: {reason}")]
pub struct BundleError {
    pub dir: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// `PAT-S`, `PAT-M` or `PAT-L`.
    pub model: String,
    pub size: String,
    pub input_length: usize,
    pub patch_size: usize,
    pub tokens: usize,
    pub embed_dim: usize,
    pub head: Option<HeadInfo>,
    /// File name → lowercase hex SHA-256.
    pub files: BTreeMap<String, String>,
    pub licence: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeadInfo {
    pub file: String,
    pub scores: Vec<String>,
}

/// `{"mean": number or [10080], "std": number or [10080]}`.
#[derive(Debug, Clone, Deserialize)]
struct ScalerFile {
    mean: OneOrMany,
    std: OneOrMany,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(f64),
    Many(Vec<f64>),
}

/// Per-minute standardisation: `(x - mean[i]) / std[i]`.
#[derive(Debug, Clone)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    pub fn identity() -> Scaler {
        Scaler {
            mean: vec![0.0; INPUT_LENGTH],
            std: vec![1.0; INPUT_LENGTH],
        }
    }

    /// Standardises a week into `out`; a missing minute becomes 0, i.e. the scaler's mean for
    /// that minute of the week (the training cohort's typical value, which moves the embedding
    /// least). Returns the fraction of minutes that were missing.
    pub fn apply(&self, week: &[Option<f64>], out: &mut Vec<f32>) -> f64 {
        let mut missing = 0usize;
        out.extend(week.iter().enumerate().map(|(i, v)| match v {
            Some(x) => ((*x as f32) - self.mean[i]) / self.std[i],
            None => {
                missing += 1;
                0.0
            }
        }));
        missing as f64 / week.len().max(1) as f64
    }
}

/// A verified bundle: what the runtime needs to open sessions.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub scaler: Scaler,
}

impl Bundle {
    pub fn encoder_path(&self) -> PathBuf {
        self.dir.join("encoder.onnx")
    }

    pub fn head_path(&self) -> Option<PathBuf> {
        self.manifest.head.as_ref().map(|h| self.dir.join(&h.file))
    }

    /// Reads and verifies the bundle in `dir` (hashes every file: a few ms for PAT-S).
    pub fn open(dir: &Path) -> Result<Bundle, BundleError> {
        let fail = |reason: String| BundleError {
            dir: dir.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(dir.join("bundle.json"))
            .map_err(|e| fail(format!("cannot read bundle.json: {e}")))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| fail(format!("bundle.json: {e}")))?;
        if manifest.format != "clarity-pat-bundle/1" {
            return Err(fail(format!("unknown format `{}`", manifest.format)));
        }
        let (patch, tokens) = match manifest.size.as_str() {
            "S" | "M" => (18, 560),
            "L" => (9, 1120),
            other => return Err(fail(format!("unknown size `{other}`"))),
        };
        if manifest.model != format!("PAT-{}", manifest.size)
            || manifest.input_length != INPUT_LENGTH
            || manifest.patch_size != patch
            || manifest.tokens != tokens
            || manifest.embed_dim != EMBED_DIM
        {
            return Err(fail(format!(
                "bundle.json describes no PAT architecture (model {}, input {}, patch {}, tokens {}, dim {})",
                manifest.model,
                manifest.input_length,
                manifest.patch_size,
                manifest.tokens,
                manifest.embed_dim
            )));
        }
        let mut needed = vec!["encoder.onnx".to_string(), "scaler.json".to_string()];
        if let Some(h) = &manifest.head {
            needed.push(h.file.clone());
        }
        for name in &needed {
            if !manifest.files.contains_key(name) {
                return Err(fail(format!("{name} has no checksum in bundle.json")));
            }
        }
        for (name, want) in &manifest.files {
            if name.contains('/') || name.starts_with('.') {
                return Err(fail(format!("bad file name `{name}` in bundle.json")));
            }
            let bytes = std::fs::read(dir.join(name))
                .map_err(|e| fail(format!("cannot read {name}: {e}")))?;
            let got = hex(&Sha256::digest(&bytes));
            if !got.eq_ignore_ascii_case(want) {
                return Err(fail(format!(
                    "{name} does not match its checksum (sha256 {got}, bundle.json says {want}); re-run scripts/pat-export"
                )));
            }
        }
        let text = std::fs::read_to_string(dir.join("scaler.json"))
            .map_err(|e| fail(format!("cannot read scaler.json: {e}")))?;
        let scaler = parse_scaler(&text).map_err(|e| fail(format!("scaler.json: {e}")))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
            scaler,
        })
    }
}

fn parse_scaler(text: &str) -> Result<Scaler, String> {
    let s: ScalerFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let expand = |v: OneOrMany, what: &str| -> Result<Vec<f32>, String> {
        let v = match v {
            OneOrMany::One(x) => vec![x; INPUT_LENGTH],
            OneOrMany::Many(v) if v.len() == INPUT_LENGTH => v,
            OneOrMany::Many(v) => {
                return Err(format!(
                    "`{what}` has {} values, needs 1 or {INPUT_LENGTH}",
                    v.len()
                ));
            }
        };
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("`{what}` has a non-finite value"));
        }
        Ok(v.into_iter().map(|x| x as f32).collect())
    };
    let mean = expand(s.mean, "mean")?;
    let std = expand(s.std, "std")?;
    if std.iter().any(|x| *x <= 0.0 || !x.is_finite()) {
        return Err("`std` must be > 0 everywhere".into());
    }
    Ok(Scaler { mean, std })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaler_accepts_numbers_and_lists_and_refuses_bad_std() {
        let s = parse_scaler(r#"{"mean": 1, "std": 2}"#).unwrap();
        assert_eq!((s.mean[5], s.std[10079]), (1.0, 2.0));
        assert!(parse_scaler(r#"{"mean": [1, 2], "std": 1}"#).is_err());
        assert!(parse_scaler(r#"{"mean": 0, "std": 0}"#).is_err());
        assert!(parse_scaler(r#"{"mean": 0}"#).is_err());
    }

    #[test]
    fn missing_minutes_become_the_mean() {
        let s = Scaler {
            mean: vec![10.0; INPUT_LENGTH],
            std: vec![2.0; INPUT_LENGTH],
        };
        let mut week = vec![Some(14.0); INPUT_LENGTH];
        week[3] = None;
        let mut out = Vec::new();
        let missing = s.apply(&week, &mut out);
        assert_eq!((out[0], out[3]), (2.0, 0.0));
        assert!((missing - 1.0 / INPUT_LENGTH as f64).abs() < 1e-12);
    }

    #[test]
    fn a_missing_bundle_is_a_clear_error() {
        let e = Bundle::open(Path::new("/nonexistent/pat")).unwrap_err();
        assert!(e.to_string().contains("bundle.json"), "{e}");
    }
}

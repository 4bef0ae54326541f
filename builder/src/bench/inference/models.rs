//! The real models the inference benchmark runs, PaddleOCR's from the `rapidocr_onnxruntime`
//! wheel, with their dims frozen by the builder's own model stage (as an image would carry
//! them), and one seeded input each, sent as the binary tensor extension of the protocol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::freeze_model;
use crate::pypi::pinned::RAPIDOCR;

/// One model of the benchmark and how long to run it.
#[derive(Debug)]
pub struct BenchModel {
    pub name: &'static str,
    /// Its path in the wheel.
    member: &'static str,
    pub input: &'static str,
    pub shape: &'static [i64],
    /// Timed runs on the host (a PP-OCRv4 det run takes ~0.1-0.4 s there).
    pub host_runs: usize,
    /// Timed runs in an emulated guest, where runs are ten to a hundred times slower; 0 skips
    /// the model there.
    pub guest_runs: usize,
}

pub const MODELS: [BenchModel; 3] = [
    BenchModel {
        name: "ppocr-cls",
        member: "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        input: "x",
        shape: &[1, 3, 48, 192],
        host_runs: 300,
        guest_runs: 40,
    },
    BenchModel {
        name: "ppocrv4-rec",
        member: "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        input: "x",
        shape: &[1, 3, 48, 320],
        host_runs: 100,
        guest_runs: 0,
    },
    BenchModel {
        name: "ppocrv4-det",
        member: "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        input: "x",
        shape: &[1, 3, 640, 640],
        host_runs: 30,
        guest_runs: 0,
    },
];

/// A model ready to serve and to send requests to.
pub struct PreparedModel {
    pub spec: &'static BenchModel,
    /// The model as the wheel has it (what a recipe names).
    pub source: PathBuf,
    /// Dims frozen, as an image carries it.
    pub frozen: PathBuf,
    /// The input tensor, little-endian f32 (Python reads the same bytes).
    pub input_file: PathBuf,
    /// A whole binary-extension inference request and its JSON header's length.
    pub request: Vec<u8>,
    pub json_len: usize,
}

impl BenchModel {
    /// The recipe-style `inputs` table that freezes the model.
    pub fn frozen_inputs(&self) -> BTreeMap<String, Vec<i64>> {
        [(self.input.to_string(), self.shape.to_vec())].into()
    }
}

/// Unpack, freeze and make an input for every model in `dir`.
pub fn prepare(cache_dir: &Path, dir: &Path) -> Result<Vec<PreparedModel>> {
    MODELS
        .iter()
        .map(|m| prepare_one(m, cache_dir, dir))
        .collect()
}

fn prepare_one(spec: &'static BenchModel, cache_dir: &Path, dir: &Path) -> Result<PreparedModel> {
    let source = cache_dir
        .join("models")
        .join(format!("{}-{}", RAPIDOCR.name, RAPIDOCR.version))
        .join(format!("{}.onnx", spec.name));
    RAPIDOCR.unpack(cache_dir, spec.member, &source)?;
    let bytes =
        std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
    let (frozen_bytes, _) = freeze_model(&bytes, &spec.frozen_inputs())
        .with_context(|| format!("freezing {}", spec.name))?;
    let frozen = dir.join(format!("{}.onnx", spec.name));
    std::fs::write(&frozen, frozen_bytes)?;

    let count: i64 = spec.shape.iter().product();
    // A fixed seed: every engine, and Python, gets the same input.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let data: Vec<u8> = (0..count).flat_map(|_| rng.f32().to_le_bytes()).collect();
    let input_file = dir.join(format!("{}.input.f32", spec.name));
    std::fs::write(&input_file, &data)?;
    let header = serde_json::json!({
        "inputs": [{
            "name": spec.input,
            "shape": spec.shape,
            "datatype": "FP32",
            "parameters": {"binary_data_size": data.len()},
        }],
        "parameters": {"binary_data_output": true},
    });
    let mut request = serde_json::to_vec(&header)?;
    let json_len = request.len();
    request.extend_from_slice(&data);
    Ok(PreparedModel {
        spec,
        source,
        frozen,
        input_file,
        request,
        json_len,
    })
}

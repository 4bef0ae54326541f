//! Model preparation checked against the real ONNX Runtime: a frozen model must load, have
//! concrete shapes, and give the same outputs as the original on the same input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeimg::model::{freeze_model, inspect_model, Dim, ElemType};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("model-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shapes(entries: &[(&str, &[i64])]) -> BTreeMap<String, Vec<i64>> {
    entries
        .iter()
        .map(|(name, dims)| (name.to_string(), dims.to_vec()))
        .collect()
}

/// PP-OCR's mobile text-direction classifier, from the rapidocr_onnxruntime wheel.
fn ppocr_cls_model() -> Vec<u8> {
    let model = edgeimg_test_support::wheels::unpacked(
        &edgeimg::pypi::pinned::RAPIDOCR,
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    );
    std::fs::read(model).unwrap()
}

/// `python ARGS` in the test venv (the real onnx and onnxruntime); what it printed.
fn python(args: &[&std::ffi::OsStr]) -> String {
    edgeimg_test_support::tool(
        std::process::Command::new(edgeimg_test_support::wheels::python()).args(args),
    )
}

/// Runs both models in ONNX Runtime (full graph optimisation) on the same seeded random
/// input shaped like the frozen model's inputs; prints the frozen model's input and output
/// shapes as ORT sees them, the largest difference between the two models' outputs, and
/// whether anything but declared shapes differs (per the `onnx` package, after its checker).
const COMPARE_IN_ORT: &str = r#"
import sys, numpy as np, onnx, onnxruntime as ort
def without_shapes(path):
    model = onnx.load(path)
    onnx.checker.check_model(model)
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.type.tensor_type.ClearField("shape")
    return model.SerializeToString(deterministic=True)
print("only_shapes_changed", without_shapes(sys.argv[1]) == without_shapes(sys.argv[2]))
def session(path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
original, frozen = session(sys.argv[1]), session(sys.argv[2])
rng = np.random.default_rng(7)
feed = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in frozen.get_inputs()}
want, got = original.run(None, feed), frozen.run(None, feed)
print("inputs", *[i.shape for i in frozen.get_inputs()])
print("outputs", *[list(o.shape) for o in got])
print("declared", *[o.shape for o in frozen.get_outputs()])
print("maxdiff", max(float(np.max(np.abs(w - g))) for w, g in zip(want, got)))
"#;

struct OrtComparison {
    lines: BTreeMap<String, String>,
}

impl OrtComparison {
    fn run(dir: &Path, original: &[u8], frozen: &[u8]) -> Self {
        let (original_path, frozen_path) = (dir.join("original.onnx"), dir.join("frozen.onnx"));
        std::fs::write(&original_path, original).unwrap();
        std::fs::write(&frozen_path, frozen).unwrap();
        let out = python(&[
            "-c".as_ref(),
            COMPARE_IN_ORT.as_ref(),
            original_path.as_os_str(),
            frozen_path.as_os_str(),
        ]);
        let lines = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(key, rest)| (key.to_string(), rest.to_string()))
            .collect();
        let ort = OrtComparison { lines };
        assert_eq!(
            ort.get("only_shapes_changed"),
            "True",
            "freezing changed more than shapes"
        );
        ort
    }

    fn get(&self, key: &str) -> &str {
        &self.lines[key]
    }

    fn max_diff(&self) -> f64 {
        self.get("maxdiff").parse().unwrap()
    }
}

#[test]
fn frozen_tiny_mlp_runs_in_onnxruntime_like_the_original() {
    let original =
        std::fs::read(edgeimg_test_support::project_root().join("tests/models/tiny-mlp.onnx"))
            .unwrap();
    for batch in [1, 5] {
        let (frozen, info) = freeze_model(&original, &shapes(&[("x", &[batch, 16])])).unwrap();
        assert_eq!(info.outputs[0].fixed_shape(), Some(vec![batch, 4]));
        let ort = OrtComparison::run(&scratch(&format!("mlp-{batch}")), &original, &frozen);
        assert_eq!(ort.get("inputs"), format!("[{batch}, 16]"));
        assert_eq!(ort.get("outputs"), format!("[{batch}, 4]"));
        assert_eq!(ort.get("declared"), format!("[{batch}, 4]"));
        assert!(
            ort.max_diff() < 1e-6,
            "outputs differ by {}",
            ort.max_diff()
        );
    }
}

#[test]
fn frozen_two_input_model_runs_in_onnxruntime_like_the_original() {
    let original = std::fs::read(
        edgeimg_test_support::project_root().join("tests/models/fixtures/two-inputs.onnx"),
    )
    .unwrap();
    let given = shapes(&[("a", &[3, 8]), ("b", &[3, 8])]);
    let (frozen, _) = freeze_model(&original, &given).unwrap();
    let ort = OrtComparison::run(&scratch("two-inputs"), &original, &frozen);
    assert_eq!(ort.get("inputs"), "[3, 8] [3, 8]");
    assert_eq!(ort.get("outputs"), "[3, 8]");
    assert_eq!(ort.max_diff(), 0.0);
}

#[test]
fn ppocr_cls_inspects_and_freezes() {
    let dir = scratch("ppocr-cls");
    let original = ppocr_cls_model();
    let info = inspect_model(&original).unwrap();
    assert_eq!(info.onnx_opset(), Some(11));
    assert_eq!(info.producer, "PaddlePaddle");
    assert_eq!(info.inputs.len(), 1);
    let x = &info.inputs[0];
    assert_eq!((x.name.as_str(), x.elem_type), ("x", ElemType::Fp32));
    // Paddle writes -1 for the batch and `?` for height and width.
    let free = Dim::Unknown;
    assert_eq!(
        x.dims,
        Some(vec![free.clone(), Dim::Fixed(3), free.clone(), free])
    );
    assert_eq!(
        info.outputs[0].to_string(),
        "save_infer_model/scale_0.tmp_1: FP32 [?, 2]"
    );

    let (frozen, frozen_info) =
        freeze_model(&original, &shapes(&[("x", &[1, 3, 48, 192])])).unwrap();
    assert_eq!(
        frozen_info.inputs[0].fixed_shape(),
        Some(vec![1, 3, 48, 192])
    );
    let ort = OrtComparison::run(&dir, &original, &frozen);
    assert_eq!(ort.get("inputs"), "[1, 3, 48, 192]");
    assert_eq!(ort.get("outputs"), "[1, 2]");
    assert!(
        ort.max_diff() < 1e-6,
        "outputs differ by {}",
        ort.max_diff()
    );
}

#[test]
fn committed_models_are_what_make_models_py_makes() {
    let dir = scratch("make-models");
    let models = edgeimg_test_support::project_root().join("tests/models");
    python(&[models.join("make_models.py").as_os_str(), dir.as_os_str()]);
    for name in [
        "tiny-mlp.onnx",
        "tiny-mlp-v2.onnx",
        "fixtures/string-input.onnx",
        "fixtures/two-inputs.onnx",
    ] {
        let made = std::fs::read(dir.join(name)).unwrap();
        let committed = std::fs::read(models.join(name)).unwrap();
        assert!(
            made == committed,
            "{name} differs from make_models.py's output: rerun it"
        );
    }
}

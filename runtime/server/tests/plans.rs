//! tract's quick plan, which a server answers from between READY and the optimised plan's
//! swap, answers as the optimised plan does on the real OCR models.

mod common;

use common::*;
use edge_config::{Engine, ModelConfig};
use edge_runtime::engine::{init_backend, Model, Plan};
use edge_runtime::tensor::{Tensor, TensorData};

const TOLERANCE: f32 = 1e-4;

#[test]
fn the_quick_plan_answers_as_the_optimised_plan_on_the_ocr_models() {
    let backend = init_backend(Engine::Tract, None).expect("the tract engine");
    let models = [
        ("cls", cls_model(), &CLS_SHAPE),
        ("rec", rec_model(), &REC_SHAPE),
        ("det", det_model(), &DET_SHAPE),
    ];
    for (name, path, shape) in models {
        let config = ModelConfig {
            name: name.into(),
            path: path.to_string_lossy().into_owned(),
            version: "1".into(),
        };
        let quick = Model::load_plan(&backend, &config, 1, Plan::Quick).expect("the quick plan");
        let optimised = quick.optimised(&backend, 1).expect("the optimised plan");
        assert_eq!((quick.plan, optimised.plan), (Plan::Quick, Plan::Optimised));
        assert_eq!(quick.outputs, optimised.outputs, "{name}");
        let input = vec![Tensor {
            name: quick.inputs[0].name.clone(),
            shape: shape.to_vec(),
            data: TensorData::Fp32(pseudo_random(shape.iter().product(), 5)),
        }];
        let a = quick
            .run(input.clone())
            .expect("running the quick plan")
            .outputs;
        let b = optimised
            .run(input)
            .expect("running the optimised plan")
            .outputs;
        assert_eq!(a.len(), b.len(), "{name}");
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape), "{name}");
            let (TensorData::Fp32(x), TensorData::Fp32(y)) = (&a.data, &b.data) else {
                panic!("{name} output {} is not FP32", a.name);
            };
            let worst = x
                .iter()
                .zip(y)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= TOLERANCE,
                "{name} output {}: off by {worst}",
                a.name
            );
        }
    }
}

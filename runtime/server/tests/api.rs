//! The Open Inference Protocol API as a client uses it, including every kind of bad request.

mod common;

use common::*;
use edge_config::Engine;
use serde_json::{json, Value};

fn small_server(adjust: impl FnOnce(&mut edge_config::RuntimeConfig)) -> Server {
    let model = small_model();
    let mut config = runtime_config(Engine::Tract, &[("small", &model)]);
    adjust(&mut config);
    Server::start(config)
}

fn good_request() -> Value {
    json!({"id": "req-1", "inputs": [
        {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": [[1, -2, 3], [-4, 5, -6]]},
        {"name": "b", "shape": [2, 3], "datatype": "INT64", "data": [1, 1, 1, 1, 1, 1]},
    ]})
}

fn assert_good_answer(response: &Value) {
    assert_eq!(response["id"], "req-1");
    assert_eq!(response["model_name"], "small");
    let outputs = response["outputs"].as_array().expect("outputs");
    let sum = outputs.iter().find(|o| o["name"] == "sum").expect("sum");
    assert_eq!(sum["datatype"], "FP32");
    assert_eq!(sum["shape"], json!([2, 3]));
    assert_eq!(sum["data"], json!([1.0, 0.0, 8.0, 0.0, 6.0, 0.0]));
    let positive = outputs
        .iter()
        .find(|o| o["name"] == "positive")
        .expect("positive");
    assert_eq!(positive["datatype"], "BOOL");
    assert_eq!(
        positive["data"],
        json!([true, false, true, false, true, false])
    );
}

#[test]
fn health_and_metadata() {
    let server = small_server(|_| {});
    let agent = client();
    assert_eq!(get(&agent, &server.url("/v2/health/live")).0, 200);
    assert_eq!(get(&agent, &server.url("/v2/health/ready")).0, 200);
    let (status, meta) = get(&agent, &server.url("/v2"));
    assert_eq!(status, 200);
    assert_eq!(meta["name"], "edge-runtime");
    for path in ["/v2/models/small", "/v2/models/small/versions/1"] {
        let (status, model) = get(&agent, &server.url(path));
        assert_eq!(status, 200, "{path}");
        assert_eq!(model["versions"], json!(["1"]));
        assert_eq!(
            model["inputs"],
            json!([{"name": "a", "datatype": "FP32", "shape": [2, 3]},
                   {"name": "b", "datatype": "INT64", "shape": [2, 3]}])
        );
        assert_eq!(
            model["outputs"][1],
            json!({"name": "positive", "datatype": "BOOL", "shape": [2, 3]})
        );
    }
    assert_eq!(
        get(&agent, &server.url("/v2/models/small/ready")).1["ready"],
        true
    );
    assert_eq!(
        get(&agent, &server.url("/v2/models/small/versions/1/ready")).0,
        200
    );
    assert_eq!(
        get(&agent, &server.url("/v2/models/small/versions/2")).0,
        404
    );
    assert_eq!(get(&agent, &server.url("/v2/models/nope/ready")).0, 404);
}

/// Each answer says how long the engine took (Server-Timing), which a client uses to split
/// its latency into the model's time and the HTTP path's.
#[test]
fn inference_responses_carry_the_engine_time() {
    let server = small_server(|_| {});
    let started = std::time::Instant::now();
    let response = client()
        .post(server.url("/v2/models/small/infer"))
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(&good_request()).unwrap())
        .unwrap();
    let total_ms = started.elapsed().as_secs_f64() * 1e3;
    let timing = response
        .headers()
        .get("server-timing")
        .expect("a server-timing header")
        .to_str()
        .unwrap()
        .to_string();
    let engine_ms: f64 = timing
        .strip_prefix("infer;dur=")
        .unwrap_or_else(|| panic!("{timing:?}"))
        .parse()
        .unwrap();
    assert!(
        engine_ms > 0.0 && engine_ms <= total_ms,
        "engine {engine_ms} ms of {total_ms} ms"
    );
    assert_good_answer(&json_of(response).1);
}

/// A body refused unread must not leave the connection open for the client's next request:
/// the unread bytes would reset it under that request.
#[test]
fn error_answers_close_the_connection_and_good_ones_keep_it() {
    let server = small_server(|r| r.max_body_bytes = Some(1024));
    let connection = |body: Vec<u8>| {
        let response = client()
            .post(server.url("/v2/models/small/infer"))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let header = response
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), header)
    };
    let good = connection(serde_json::to_vec(&good_request()).unwrap());
    assert_eq!(good, (200, None));
    let oversized = connection(vec![b' '; 4096]);
    assert_eq!(oversized, (413, Some("close".into())));
    let garbage = connection(b"{not json".to_vec());
    assert_eq!(garbage, (400, Some("close".into())));
}

#[test]
fn infers_with_json_and_versioned_paths() {
    let server = small_server(|_| {});
    let agent = client();
    for path in [
        "/v2/models/small/infer",
        "/v2/models/small/versions/1/infer",
    ] {
        let (status, response) = post_json(&agent, &server.url(path), &good_request());
        assert_eq!(status, 200, "{response}");
        assert_good_answer(&response);
    }
    // Only the outputs asked for, in the order asked.
    let mut request = good_request();
    request["outputs"] = json!([{"name": "positive"}]);
    let (_, response) = post_json(&agent, &server.url("/v2/models/small/infer"), &request);
    assert_eq!(response["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(response["outputs"][0]["name"], "positive");
}

#[test]
fn binary_tensor_data_extension() {
    let server = small_server(|_| {});
    let header = json!({"inputs": [
        {"name": "a", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": 24}},
        {"name": "b", "shape": [2, 3], "datatype": "INT64", "parameters": {"binary_data_size": 48}},
    ], "outputs": [{"name": "sum", "parameters": {"binary_data": true}}, {"name": "positive"}]});
    let mut payload = Vec::new();
    for a in [1f32, -2.0, 3.0, -4.0, 5.0, -6.0] {
        payload.extend_from_slice(&a.to_le_bytes());
    }
    for _ in 0..6 {
        payload.extend_from_slice(&1i64.to_le_bytes());
    }
    let (status, json, binary) =
        post_binary(&server.url("/v2/models/small/infer"), &header, &payload);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 24);
    assert_eq!(
        json["outputs"][1]["data"],
        json!([true, false, true, false, true, false])
    );
    let sum: Vec<f32> = binary
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(sum, [1.0, 0.0, 8.0, 0.0, 6.0, 0.0]);
}

/// Replaces input `index` of the good request with `input`.
fn with_input(index: usize, input: Value) -> Value {
    let mut request = good_request();
    request["inputs"][index] = input;
    request
}

#[test]
fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let server = small_server(|c| c.max_body_bytes = Some(64 << 10));
    let agent = client();
    let infer = server.url("/v2/models/small/infer");
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "unknown model",
            server.url("/v2/models/nope/infer"),
            good_request(),
            404,
            "unknown model 'nope'",
        ),
        (
            "wrong version",
            server.url("/v2/models/small/versions/9/infer"),
            good_request(),
            404,
            "version",
        ),
        (
            "wrong input name",
            infer.clone(),
            with_input(
                0,
                json!({"name": "z", "shape": [2, 3], "datatype": "FP32", "data": [0, 0, 0, 0, 0, 0]}),
            ),
            400,
            "unknown input 'z'",
        ),
        (
            "wrong dtype",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [2, 3], "datatype": "INT32", "data": [0, 0, 0, 0, 0, 0]}),
            ),
            400,
            "model expects FP32",
        ),
        (
            "unsupported dtype",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [2, 3], "datatype": "FP8", "data": [1]}),
            ),
            400,
            "does not support",
        ),
        (
            "strings for numbers",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [2, 3], "datatype": "BYTES", "data": ["x"]}),
            ),
            400,
            "has datatype BYTES, the model expects FP32",
        ),
        (
            "wrong shape",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [3, 2], "datatype": "FP32", "data": [0, 0, 0, 0, 0, 0]}),
            ),
            400,
            "the model expects [2, 3]",
        ),
        (
            "wrong element count",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [2, 3], "datatype": "FP32", "data": [0, 0, 0]}),
            ),
            400,
            "needs 6",
        ),
        (
            "value of the wrong type",
            infer.clone(),
            with_input(
                1,
                json!({"name": "b", "shape": [2, 3], "datatype": "INT64", "data": [0, 0, 0.5, 0, 0, 0]}),
            ),
            400,
            "not a INT64 value",
        ),
        (
            "missing input",
            infer.clone(),
            json!({"inputs": [good_request()["inputs"][0]]}),
            400,
            "missing input",
        ),
        (
            "unknown output",
            infer.clone(),
            {
                let mut r = good_request();
                r["outputs"] = json!([{"name": "nope"}]);
                r
            },
            400,
            "unknown output 'nope'",
        ),
        (
            "not an inference request",
            infer.clone(),
            json!({"hello": 1}),
            400,
            "not a valid inference request",
        ),
        (
            "body over max_body_bytes",
            infer.clone(),
            with_input(
                0,
                json!({"name": "a", "shape": [2, 3], "datatype": "FP32", "data": vec![0.25f32; 20_000]}),
            ),
            413,
            "max_body_bytes",
        ),
    ];
    for (what, url, body, status, message) in cases {
        let (got, error) = post_json(&agent, &url, &body);
        assert_eq!(got, status, "{what}: {error}");
        let text = error["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error field in {error}"));
        assert!(text.contains(message), "{what}: {text:?} lacks {message:?}");
        let (ok, response) = post_json(&agent, &infer, &good_request());
        assert_eq!(ok, 200, "after {what}: {response}");
        assert_good_answer(&response);
    }
    let text = client()
        .post(&infer)
        .send("{not json")
        .expect("POST")
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(text.contains("not a valid inference request"), "{text}");

    let metrics = client()
        .get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("edge_infer_errors_total{model=\"small\",status=\"400\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_infer_errors_total{model=\"\",status=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_infer_errors_total{model=\"small\",status=\"413\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_inference_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_request_duration_seconds_count{model=\"small\"}"),
        "{metrics}"
    );
}

#[test]
fn bearer_token_guards_all_but_health() {
    let server = small_server(|c| c.bearer_token = Some("s3cret".into()));
    let agent = client();
    assert_eq!(get(&agent, &server.url("/v2/health/live")).0, 200);
    assert_eq!(get(&agent, &server.url("/v2/health/ready")).0, 200);
    for path in ["/v2", "/v2/models/small", "/metrics"] {
        let (status, error) = get(&agent, &server.url(path));
        assert_eq!(status, 401, "{path}");
        assert!(error["error"].as_str().unwrap().contains("bearer token"));
    }
    let infer = server.url("/v2/models/small/infer");
    assert_eq!(post_json(&agent, &infer, &good_request()).0, 401);
    let wrong = agent
        .post(&infer)
        .header("Authorization", "Bearer s3creT")
        .send(serde_json::to_vec(&good_request()).unwrap())
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let (status, response) = json_of(
        agent
            .post(&infer)
            .header("Authorization", "Bearer s3cret")
            .send(serde_json::to_vec(&good_request()).unwrap())
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_good_answer(&response);
}

#[test]
fn concurrent_clients_are_all_served() {
    let server = small_server(|c| c.max_concurrency = 2);
    let infer = server.url("/v2/models/small/infer");
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                let agent = client();
                for _ in 0..20 {
                    let (status, response) = post_json(&agent, &infer, &good_request());
                    assert_eq!(status, 200, "{response}");
                    assert_good_answer(&response);
                }
            });
        }
    });
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let server = small_server(|_| {});
    assert_eq!(
        post_json(
            &client(),
            &server.url("/v2/models/small/infer"),
            &good_request()
        )
        .0,
        200
    );
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn bad_config_is_refused_with_the_field_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("device.toml");
    let mut runtime = runtime_config(
        Engine::Tract,
        &[("m", std::path::Path::new("/nonexistent.onnx"))],
    );
    std::fs::write(&config, device_config(runtime.clone()).to_toml()).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_edge-runtime"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let output = run();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("loading model 'm' from /nonexistent.onnx"),
        "{stderr}"
    );

    runtime.listen = "nowhere".into();
    std::fs::write(&config, device_config(runtime).to_toml()).unwrap();
    let stderr = String::from_utf8_lossy(&run().stderr).into_owned();
    assert!(stderr.contains("listen = \"nowhere\""), "{stderr}");
}

#[test]
fn tritonclient_speaks_to_it() {
    let server = small_server(|_| {});
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/triton_client.py");
    pinned_python(&script, &[server.base.trim_start_matches("http://")]);
}

/// `examples/triton_client.py`, the README's client, against a real edge-runtime: numbers in
/// JSON on tract, strings in binary on the real ONNX Runtime behind a bearer token.
#[test]
fn the_example_client_prints_each_output() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/triton_client.py");
    let example = example.to_str().unwrap();
    let small = small_server(|_| {});
    let printed = pinned_python(
        example.as_ref(),
        &[
            &small.base,
            "small",
            "a=[[1,-2,3],[-4,5,-6]]",
            "b=[1,1,1,1,1,1]",
        ],
    );
    assert_eq!(
        printed,
        "sum FP32 [2, 3] [1.0, 0.0, 8.0, 0.0, 6.0, 0.0]\n\
         positive BOOL [2, 3] [true, false, true, false, true, false]\n"
    );

    let model = strings_model();
    let mut config = runtime_config(Engine::Onnxruntime, &[("words", &model)]);
    config.bearer_token = Some("s3cret".into());
    let words = Server::start(config);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let args = |token: &str| {
        [
            words.base.clone(),
            "words".into(),
            r#"words=["One","two","五","","nope"]"#.into(),
            "codes=[0,5,9]".into(),
            "--binary".into(),
            "--token-file".into(),
            token.into(),
        ]
    };
    let args = args(token.to_str().unwrap());
    let printed = pinned_python(example.as_ref(), &args.each_ref().map(String::as_str));
    assert_eq!(
        printed,
        "ids INT64 [5] [-1, 2, 5, -1, -1]\n\
         names BYTES [3] [\"zero\", \"五\", \"<unk>\"]\n\
         echo BYTES [5] [\"One\", \"two\", \"五\", \"\", \"nope\"]\n"
    );
}

#[test]
fn engine_failure_is_a_500_and_the_server_keeps_serving() {
    let model = add_model();
    let server = Server::start(runtime_config(Engine::Onnxruntime, &[("add", &model)]));
    let agent = client();
    let url = server.url("/v2/models/add/infer");
    let (_, meta) = get(&agent, &server.url("/v2/models/add"));
    assert_eq!(meta["inputs"][0]["shape"], json!([-1]));
    let request = |m: usize| {
        json!({"inputs": [
            {"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]},
            {"name": "y", "shape": [m], "datatype": "FP32", "data": vec![10; m]},
        ]})
    };
    let (status, error) = post_json(&agent, &url, &request(3));
    assert_eq!(status, 500, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("running model 'add'"),
        "{error}"
    );
    let (status, response) = post_json(&agent, &url, &request(2));
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["outputs"][0]["data"], json!([11.0, 12.0]));
}

//! A small Open Inference Protocol v2 REST client (JSON tensors), enough for checks and
//! benchmarks: model metadata and inference.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::tensor::Tensor;

pub struct InferClient {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelMetadata {
    pub name: String,
    /// The serving version first (edge-runtime serves one).
    #[serde(default)]
    pub versions: Vec<String>,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Deserialize)]
struct InferResponse {
    outputs: Vec<OutputTensor>,
}

#[derive(Deserialize)]
struct OutputTensor {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    data: serde_json::Value,
}

impl InferClient {
    /// `base` like `http://127.0.0.1:40123`.
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build();
        InferClient {
            base: base.into().trim_end_matches('/').to_string(),
            agent: config.into(),
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn get(&self, path: &str) -> Result<serde_json::Value> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .call()
            .with_context(|| format!("GET {}{path}", self.base))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    pub fn ready(&self) -> bool {
        self.get("/v2/health/ready").is_ok()
    }

    /// The largest request body the server takes (edge-runtime reports its limits in `/v2`).
    pub fn max_body_bytes(&self) -> Result<usize> {
        let body = self.get("/v2")?;
        body["limits"]["max_body_bytes"]
            .as_u64()
            .map(|n| n as usize)
            .with_context(|| format!("{}/v2 reports no limits.max_body_bytes: {body}", self.base))
    }

    pub fn metadata(&self, model: &str) -> Result<ModelMetadata> {
        let body = self.get(&format!("/v2/models/{model}"))?;
        serde_json::from_value(body).context("model metadata is not Open Inference Protocol JSON")
    }

    /// The version of `model` the device serves now.
    pub fn serving_version(&self, model: &str) -> Result<String> {
        self.metadata(model)?
            .versions
            .into_iter()
            .next()
            .with_context(|| format!("the metadata of {model} names no version"))
    }

    /// Run inference; outputs by name, data flattened to f64.
    pub fn infer(&self, model: &str, inputs: &[Tensor]) -> Result<BTreeMap<String, Tensor>> {
        let body = serde_json::json!({
            "inputs": inputs.iter().map(Tensor::to_json).collect::<Vec<_>>(),
        });
        let path = format!("/v2/models/{model}/infer");
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(&body)?)
            .with_context(|| format!("POST {}{path}", self.base))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string()?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {text}");
        }
        let parsed: InferResponse = serde_json::from_str(&text)
            .context("inference response is not Open Inference Protocol JSON")?;
        parsed
            .outputs
            .into_iter()
            .map(|o| {
                let data = edgeimg_load::flatten_json(&o.data)
                    .with_context(|| format!("output {} data", o.name))?;
                Ok((
                    o.name.clone(),
                    Tensor {
                        name: o.name,
                        datatype: o.datatype,
                        shape: o.shape,
                        data,
                    },
                ))
            })
            .collect()
    }
}

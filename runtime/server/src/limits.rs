//! What one client may cost the server, in bytes and in time: the configured limits with their
//! defaults filled in, and the default body limit derived from the models.

use std::time::Duration;

use edge_config::{RuntimeConfig, DEFAULT_MAX_BODY_BYTES};

use crate::tensor::{DataType, TensorSpec};

/// The limits the server enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Where `max_body_bytes` came from, for the start-up line and errors.
    pub max_body_origin: BodyLimitOrigin,
    pub max_concurrency: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Bytes per second.
    pub body_min_rate: u64,
    pub keep_alive_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimitOrigin {
    /// `max_body_bytes` in the config.
    Configured,
    /// The models' largest valid request, with headroom.
    Derived,
    /// A model has dimensions of any size, or BYTES inputs (strings of any length):
    /// [`DEFAULT_MAX_BODY_BYTES`].
    DynamicShapes,
}

impl Limits {
    /// The config's limits, `max_body_bytes` derived from `models` (each model's inputs) when
    /// the config does not give it.
    pub fn new(config: &RuntimeConfig, models: &[&[TensorSpec]]) -> Limits {
        let derived = models
            .iter()
            .map(|inputs| largest_request(inputs))
            .collect::<Option<Vec<usize>>>()
            .map(|sizes| body_limit_for(sizes.into_iter().max().unwrap_or(0)));
        let (max_body_bytes, max_body_origin) = match (config.max_body_bytes, derived) {
            (Some(n), _) => (n, BodyLimitOrigin::Configured),
            (None, Some(n)) => (n, BodyLimitOrigin::Derived),
            (None, None) => (DEFAULT_MAX_BODY_BYTES, BodyLimitOrigin::DynamicShapes),
        };
        let l = &config.limits;
        Limits {
            max_body_bytes,
            max_body_origin,
            max_concurrency: config.max_concurrency,
            max_connections: l.max_connections,
            header_timeout: Duration::from_millis(l.header_timeout_ms),
            body_timeout: Duration::from_millis(l.body_timeout_ms),
            body_min_rate: l.body_min_rate,
            keep_alive_timeout: Duration::from_millis(l.keep_alive_timeout_ms),
        }
    }

    /// How long a body of `bytes` may take in all: the grace plus its size at the minimum rate.
    pub fn body_allowance(&self, bytes: u64) -> Duration {
        self.body_timeout + Duration::from_secs_f64(bytes as f64 / self.body_min_rate.max(1) as f64)
    }
}

/// Room for everything in a request but the tensors (`id`, names, parameters, outputs) and for
/// clients that indent their JSON.
const HEADROOM_BYTES: usize = 64 << 10;

/// The body limit for a model whose largest valid request is `largest` bytes: half as much
/// again (other number spellings, whitespace) plus [`HEADROOM_BYTES`].
fn body_limit_for(largest: usize) -> usize {
    largest
        .saturating_add(largest / 2)
        .saturating_add(HEADROOM_BYTES)
}

/// The largest valid request for a model with these inputs, in bytes: every input in JSON
/// with each element spelt as long as its type allows, or in binary, whichever is larger.
/// `None` when an input has a dimension of any size or is BYTES.
pub fn largest_request(inputs: &[TensorSpec]) -> Option<usize> {
    let mut json = 0usize;
    let mut binary = 0usize;
    for input in inputs {
        let count = input.shape.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })?;
        json = json.checked_add(count.checked_mul(longest_json_element(input.datatype)?)?)?;
        binary = binary.checked_add(count.checked_mul(input.datatype.byte_size()?)?)?;
    }
    Some(json.max(binary))
}

/// The longest JSON text of one element of `datatype` with the `", "` that follows it:
/// `-9223372036854775808`, `-2.2250738585072014e-308` (a double's shortest round-trip form;
/// FP32, FP16 and BF16 values reach clients as doubles). A string has no longest: `None`.
fn longest_json_element(datatype: DataType) -> Option<usize> {
    let digits = match datatype {
        DataType::Bool => "false".len(),
        DataType::Uint8 => "255".len(),
        DataType::Int8 => "-128".len(),
        DataType::Uint16 => "65535".len(),
        DataType::Int16 => "-32768".len(),
        DataType::Uint32 => "4294967295".len(),
        DataType::Int32 => "-2147483648".len(),
        DataType::Uint64 => "18446744073709551615".len(),
        DataType::Int64 => "-9223372036854775808".len(),
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => {
            "-2.2250738585072014e-308".len()
        }
        DataType::Bytes => return None,
    };
    Some(digits + ", ".len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A config with every limit at its default and no models.
    pub(crate) fn config() -> RuntimeConfig {
        RuntimeConfig {
            engine: edge_config::Engine::Tract,
            onnxruntime_library: None,
            listen: "127.0.0.1:0".into(),
            threads: 0,
            max_body_bytes: None,
            max_concurrency: 4,
            bearer_token: None,
            bearer_token_file: None,
            start_plan: edge_config::Plan::Quick,
            limits: edge_config::Limits::default(),
            tls: None,
            model_updates: None,
            models: vec![],
        }
    }

    pub(crate) fn limits() -> Limits {
        Limits::new(&config(), &[])
    }

    fn spec(datatype: DataType, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: "x".into(),
            datatype,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn the_largest_request_is_the_longest_json_spelling() {
        // tiny-mlp: 16 FP32 elements, 26 bytes each at most in JSON, 4 in binary.
        assert_eq!(
            largest_request(&[spec(DataType::Fp32, &[1, 16])]),
            Some(16 * 26)
        );
        assert_eq!(
            largest_request(&[spec(DataType::Uint8, &[2, 3]), spec(DataType::Bool, &[4])]),
            Some(6 * 5 + 4 * 7)
        );
        assert_eq!(largest_request(&[spec(DataType::Fp32, &[-1, 16])]), None);
        assert_eq!(largest_request(&[spec(DataType::Bytes, &[4])]), None);
        assert_eq!(
            largest_request(&[spec(DataType::Int64, &[i64::MAX, 2])]),
            None
        );
    }

    #[test]
    fn the_default_body_limit_follows_the_models() {
        let mut config = config();
        let small = [spec(DataType::Fp32, &[1, 16])];
        let image = [spec(DataType::Fp32, &[1, 3, 48, 192])];
        let limits = Limits::new(&config, &[&small, &image]);
        assert_eq!(limits.max_body_origin, BodyLimitOrigin::Derived);
        let largest = 3 * 48 * 192 * 26;
        assert_eq!(
            limits.max_body_bytes,
            largest + largest / 2 + HEADROOM_BYTES
        );
        let open = [spec(DataType::Fp32, &[-1, 16])];
        let limits = Limits::new(&config, &[&small, &open]);
        assert_eq!(
            (limits.max_body_bytes, limits.max_body_origin),
            (DEFAULT_MAX_BODY_BYTES, BodyLimitOrigin::DynamicShapes)
        );
        config.max_body_bytes = Some(1000);
        let limits = Limits::new(&config, &[&small]);
        assert_eq!(
            (limits.max_body_bytes, limits.max_body_origin),
            (1000, BodyLimitOrigin::Configured)
        );
    }

    #[test]
    fn a_body_may_take_its_grace_plus_its_size_at_the_minimum_rate() {
        let limits = Limits {
            body_timeout: Duration::from_secs(10),
            body_min_rate: 8 << 10,
            ..limits()
        };
        assert_eq!(limits.body_allowance(0), Duration::from_secs(10));
        assert_eq!(limits.body_allowance(16 << 10), Duration::from_secs(12));
    }
}

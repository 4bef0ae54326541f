//! The hostile requests interleaved with the good ones, and what each must get back.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{raw, Good, LoadSpec, Target, REQUEST_TIMEOUT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Truncated JSON with bytes that are not UTF-8: 400.
    GarbageJson,
    /// A good request with its first input's last dimension one larger: 400.
    WrongShape,
    /// A good request for a model the server does not have: 404.
    UnknownModel,
    /// One byte over the body limit: 413.
    Oversized,
    /// Bytes that are not HTTP (a TLS greeting): the server answers 400 or hangs up.
    NotHttp,
    /// Half a body, then the client hangs up: nothing to answer, nothing may break.
    Aborted,
    /// A good request's headers trickled a byte a second: 408 once the header timeout runs out.
    SlowHeaders,
    /// A good request's body trickled a byte a second: 408 once the body falls below the
    /// minimum rate.
    SlowBody,
    /// A good request with the wrong bearer token: 401 (only when the server has a token).
    WrongToken,
}

/// The kinds in the order they take turns.
pub fn kinds(has_token: bool) -> Vec<Kind> {
    let mut kinds = vec![
        Kind::GarbageJson,
        Kind::WrongShape,
        Kind::Oversized,
        Kind::Aborted,
        Kind::UnknownModel,
        Kind::SlowHeaders,
        Kind::NotHttp,
        Kind::SlowBody,
    ];
    if has_token {
        kinds.push(Kind::WrongToken);
    }
    kinds
}

/// How long a slow client waits between two bytes: far slower than any client on a LAN, so a
/// server without timeouts would keep it as long as it kept trickling.
const TRICKLE: Duration = Duration::from_secs(1);

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::GarbageJson => "garbage-json",
            Kind::WrongShape => "wrong-shape",
            Kind::UnknownModel => "unknown-model",
            Kind::Oversized => "oversized",
            Kind::NotHttp => "not-http",
            Kind::Aborted => "aborted",
            Kind::SlowHeaders => "slow-headers",
            Kind::SlowBody => "slow-body",
            Kind::WrongToken => "wrong-token",
        }
    }
}

/// Sends one hostile request of `kind` (built from `good`) and checks the answer.
pub fn send(
    kind: Kind,
    agent: &ureq::Agent,
    target: &Target,
    good: &Good,
    spec: &LoadSpec,
) -> Result<()> {
    let authority = target.authority()?;
    let path = format!("/v2/models/{}/infer", target.model);
    let token = target.token.as_deref();
    match kind {
        Kind::GarbageJson => {
            let body = b"{\"inputs\": [{\"name\": \"\xff\xfe\x01, \"shape\": [1,";
            expect_error(target.post(agent, &target.infer_url(), body)?, 400)
        }
        Kind::WrongShape => {
            let body = wrong_shape(&good.body)?;
            expect_error(target.post(agent, &target.infer_url(), &body)?, 400)
        }
        Kind::UnknownModel => {
            let url = format!("{}/v2/models/{}-missing/infer", target.base, target.model);
            expect_error(target.post(agent, &url, &good.body)?, 404)
        }
        Kind::WrongToken => {
            let wrong = Target {
                token: Some(format!("{}-wrong", token.unwrap_or_default())),
                ..target.clone()
            };
            expect_error(wrong.post(agent, &wrong.infer_url(), &good.body)?, 401)
        }
        Kind::Oversized => {
            let len = spec.max_body_bytes + 1;
            let head = raw::post_head(authority, &path, len, token);
            let mut body = b"{\"inputs\": [".to_vec();
            body.resize(len, b' ');
            let answer = raw::exchange(authority, &[&head[..], &body[..]], Duration::ZERO)?;
            expect_error((answer.status, answer.body), 413)
        }
        Kind::NotHttp => {
            let greeting = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP\r\n\r\n";
            let stream = raw::connect(authority)?;
            match raw::exchange_on(stream, &[&greeting[..]], Duration::ZERO)? {
                // Hanging up on it is as good as a 400.
                None => Ok(()),
                Some(answer) if answer.status == 400 => Ok(()),
                Some(answer) => bail!("answered {} to bytes that are not HTTP", answer.status),
            }
        }
        Kind::Aborted => {
            let head = raw::post_head(authority, &path, good.body.len(), token);
            let mut stream = raw::connect(authority)?;
            std::io::Write::write_all(&mut stream, &head)?;
            std::io::Write::write_all(&mut stream, &good.body[..good.body.len() / 2])?;
            Ok(())
        }
        Kind::SlowHeaders | Kind::SlowBody => {
            let head = raw::post_head(authority, &path, good.body.len(), token);
            let (at_once, trickled) = match kind {
                Kind::SlowHeaders => (Vec::new(), [&head[..], &good.body[..]].concat()),
                _ => (head, good.body.clone()),
            };
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            let stream = raw::connect(authority)?;
            match raw::trickle(stream, &at_once, &trickled, TRICKLE, deadline) {
                raw::Trickled::Answered(a) => expect_error((a.status, a.body), 408),
                other => bail!(
                    "a request trickled a byte a second ended {}, not with a 408 (no timeout?)",
                    other.label()
                ),
            }
        }
    }
}

/// A 4xx with the server's JSON `{"error": "..."}` explaining it.
fn expect_error((status, body): (u16, Vec<u8>), want: u16) -> Result<()> {
    let text = String::from_utf8_lossy(&body);
    if status != want {
        bail!("answered {status}, expected {want}: {text}");
    }
    let json: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("the {status} answer is not JSON: {text}"))?;
    match json["error"].as_str() {
        Some(message) if !message.is_empty() => Ok(()),
        _ => bail!("the {status} answer has no error message: {text}"),
    }
}

/// `body` with the first input's last dimension one larger than its data fills.
fn wrong_shape(body: &[u8]) -> Result<Vec<u8>> {
    let mut request: serde_json::Value =
        serde_json::from_slice(body).context("a good request is not JSON")?;
    let last = request["inputs"][0]["shape"]
        .as_array_mut()
        .and_then(|shape| shape.last_mut())
        .context("a good request's first input has no shape")?;
    *last = serde_json::json!(last.as_i64().unwrap_or(0) + 1);
    Ok(serde_json::to_vec(&request)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_shape_grows_the_last_dimension() {
        let body = br#"{"inputs":[{"name":"x","shape":[1,16],"datatype":"FP32","data":[0]}]}"#;
        let bad: serde_json::Value = serde_json::from_slice(&wrong_shape(body).unwrap()).unwrap();
        assert_eq!(bad["inputs"][0]["shape"], serde_json::json!([1, 17]));
    }

    #[test]
    fn errors_need_the_status_and_a_message() {
        let ok = (400, br#"{"error":"bad shape"}"#.to_vec());
        assert!(expect_error(ok, 400).is_ok());
        assert!(expect_error((200, b"{}".to_vec()), 400).is_err());
        assert!(expect_error((400, b"Bad Request".to_vec()), 400).is_err());
        assert!(expect_error((400, br#"{"error":""}"#.to_vec()), 400).is_err());
    }

    #[test]
    fn the_token_kind_only_with_a_token() {
        assert!(!kinds(false).contains(&Kind::WrongToken));
        assert!(kinds(true).contains(&Kind::WrongToken));
    }
}

//! `reboot = "clean" | "kill-mid-upload"` checks: the device restarted (powered off, or QEMU
//! killed while half a model upload has reached it: a power cut mid-write) and booted again on
//! the same data disk; it must serve the version it served before, answering as before.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use edgeimg_qemu::{BootSpec, Qemu, RunningVm, SpawnOptions};

use crate::imagetest::checks::{build_inputs, CheckOutcome, InferClient};
use crate::recipe::{RebootCheck, TestCase};

/// How long half an upload is given to pass the relay and QEMU's network into the server's file
/// before QEMU is killed.
const UPLOAD_SETTLE: Duration = Duration::from_secs(2);

/// Runs one reboot case: restarts `vm` (replaced by the new boot) and compares.
#[allow(clippy::too_many_arguments)]
pub fn run_reboot(
    vm: &mut RunningVm,
    spec: &BootSpec,
    case: &TestCase,
    kind: RebootCheck,
    model: &str,
    upload_file: &Path,
    token: Option<&str>,
    console_log: &Path,
    ready_timeout: Duration,
) -> CheckOutcome {
    let result = (|| -> Result<String> {
        let device = client(vm, token)?;
        let meta = device.metadata(model)?;
        let inputs = build_inputs(&meta, &case.inputs)?;
        let version = device.serving_version(model)?;
        let before = device
            .infer(model, &inputs)
            .context("inference before the restart")?;
        let how = match kind {
            RebootCheck::Clean => {
                let took = vm.powerdown(Duration::from_secs(30))?;
                format!("powered off in {:.1} s", took.as_secs_f64())
            }
            RebootCheck::KillMidUpload => {
                let bytes = std::fs::read(upload_file)
                    .with_context(|| format!("reading {}", upload_file.display()))?;
                let _upload = half_an_upload(addr(vm)?, model, token, &bytes)?;
                std::thread::sleep(UPLOAD_SETTLE);
                vm.kill();
                format!(
                    "QEMU killed with {} of {} bytes uploaded",
                    bytes.len() / 2,
                    bytes.len()
                )
            }
        };
        *vm = Qemu::spawn(
            spec,
            &SpawnOptions {
                console_log: Some(console_log.to_path_buf()),
                ..Default::default()
            },
        )?;
        let ready = vm.wait_for_ready(ready_timeout)?;
        let device = client(vm, token)?;
        let after_version = device.serving_version(model)?;
        if after_version != version {
            bail!("served version {version} before ({how}), version {after_version} after");
        }
        let after = device
            .infer(model, &inputs)
            .context("inference after the restart")?;
        if after != before {
            bail!("version {version} answers differently after the restart ({how})");
        }
        Ok(format!(
            "{how}; ready again in {:.1} s, still version {version}, same answers",
            ready.host_boot_to_ready.as_secs_f64()
        ))
    })();
    CheckOutcome {
        name: case.name.get_ref().clone(),
        passed: result.is_ok(),
        detail: result
            .unwrap_or_else(|e| format!("{e:#}\n--- console tail ---\n{}", vm.console_tail(40))),
    }
}

pub(super) fn addr(vm: &RunningVm) -> Result<SocketAddr> {
    vm.api_addr().context("the API port was not forwarded")
}

pub(super) fn client(vm: &RunningVm, token: Option<&str>) -> Result<InferClient> {
    Ok(InferClient::new(
        format!("http://{}", addr(vm)?),
        token.map(str::to_string),
    ))
}

/// Sends an upload's head and the first half of its body, and leaves it open.
fn half_an_upload(
    addr: SocketAddr,
    model: &str,
    token: Option<&str>,
    bytes: &[u8],
) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST /v2/repository/models/{model}/load HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )?;
    stream.write_all(&bytes[..bytes.len() / 2])?;
    stream.flush()?;
    Ok(stream)
}

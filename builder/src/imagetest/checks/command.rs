//! `command = [...]` checks: a host program run against the booted device, e.g. the example
//! client. `{api}` becomes the device's API (`http://host:port`), `{NAME}` a file of `files`,
//! `{python}` the pinned Python edgeimg keeps in its cache (numpy, onnx, tritonclient, pillow).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::recipe::{TestCase, TestFile};

/// How long a command may run before it is ended and the check fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the case's command (placeholders filled, its `files` already local paths) in `dir`;
/// passes on exit 0 with `expect_stdout` in its output. Returns what it printed, on one line.
pub fn run_command(case: &TestCase, api: &str, dir: &Path, cache_dir: &Path) -> Result<String> {
    let python = if case.command.iter().any(|a| a.contains("{python}")) {
        edgeimg_pypi::venv::python(cache_dir)?.display().to_string()
    } else {
        String::new()
    };
    let fill = |arg: &String| {
        let mut out = arg.replace("{api}", api).replace("{python}", &python);
        for (name, file) in &case.files {
            if let TestFile::Path(path) = file {
                out = out.replace(&format!("{{{name}}}"), path);
            }
        }
        out
    };
    let argv: Vec<String> = case.command.iter().map(fill).collect();
    let output = tempfile::tempdir()?;
    let (out_path, err_path) = (output.path().join("stdout"), output.path().join("stderr"));
    // Output into files, not pipes: a chatty program never blocks on a full pipe.
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("cannot run {:?} (is it installed and on PATH?)", argv[0]))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{argv:?} ran longer than {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&std::fs::read(&out_path)?).into_owned();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path)?).into_owned();
    if !status.success() {
        bail!("{argv:?} failed ({status}):\n{stdout}{stderr}");
    }
    if let Some(want) = &case.expect_stdout {
        if !stdout.contains(want.as_str()) {
            bail!("{argv:?} did not print {want:?}; it printed:\n{stdout}");
        }
    }
    Ok(format!(
        "{} exited 0 in {:.1}s: {}",
        argv[0],
        started.elapsed().as_secs_f64(),
        stdout.trim().replace('\n', "; ")
    ))
}

//! `edgeimg keygen`, `edgeimg sign-model`, `edgeimg update`: new models for a running device.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use edgeimg::system_update::{self, UpdateResult};
use edgeimg::update::{keygen, sign_model, upload, Outcome, Upload};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where the keys go: BASE.key (the secret, mode 0600, keep it off the device and out of
    /// git) and BASE.pub (the recipe's runtime.model_public_key or system_updates.public_key).
    base: PathBuf,
}

pub fn run_keygen(args: KeygenArgs) -> Result<ExitCode> {
    let (secret, public) = keygen(&args.base)?;
    println!(
        "secret key {} (keep it private), public key {} (runtime.model_public_key or system_updates.public_key)",
        secret.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct SignModelArgs {
    /// The secret key from `edgeimg keygen` (BASE.key).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The ONNX file to sign, exactly as it will be uploaded.
    model: PathBuf,
    /// Where the signature goes (default: MODEL.sig).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run_sign_model(args: SignModelArgs) -> Result<ExitCode> {
    let signature = sign_model(&args.key, &args.model)?;
    let out = args.out.unwrap_or_else(|| {
        let mut name = args.model.as_os_str().to_owned();
        name.push(".sig");
        name.into()
    });
    std::fs::write(&out, format!("{signature}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The device's API, e.g. http://edge.local:8000.
    #[arg(long, value_name = "URL")]
    device: String,
    /// The new ONNX file.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    model: Option<PathBuf>,
    /// A built image's folder: its `.update` (A/B system update) is installed, and the device
    /// watched until it commits or rolls back.
    #[arg(long, value_name = "DIR")]
    image: Option<PathBuf>,
    /// Seconds to wait for a system update's outcome.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The model it replaces (default: the file's stem).
    #[arg(long)]
    name: Option<String>,
    /// A file holding the device's bearer token.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The signature from `edgeimg sign-model` (needed when the image names a model key).
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// Accept inputs or outputs that differ from the serving version's.
    #[arg(long)]
    allow_signature_change: bool,
}

fn read(path: &PathBuf, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .with_context(|| format!("reading the {what} {}", path.display()))
}

pub fn run_update(args: UpdateArgs) -> Result<ExitCode> {
    let token = args
        .token_file
        .as_ref()
        .map(|f| read(f, "token file"))
        .transpose()?;
    let Some(model) = &args.model else {
        let image = args.image.as_ref().expect("clap: --model or --image");
        return run_system_update(&args.device, image, token.as_deref(), args.timeout);
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => model
            .file_stem()
            .and_then(|s| s.to_str())
            .context("the model file has no name; give --name")?
            .to_string(),
    };
    let outcome = upload(&Upload {
        device: &args.device,
        model,
        name: &name,
        token,
        signature: args
            .signature
            .as_ref()
            .map(|f| read(f, "signature"))
            .transpose()?,
        allow_signature_change: args.allow_signature_change,
        progress: std::io::stderr().is_terminal(),
    })?;
    match outcome {
        Outcome::Serving {
            version, seconds, ..
        } => {
            println!(
                "serving version {version} of '{name}' ({seconds:.2} s from upload to serving)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Refused { status, reason } => {
            eprintln!("refused (HTTP {status}): {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run_system_update(
    device: &str,
    image: &std::path::Path,
    token: Option<&str>,
    timeout: u64,
) -> Result<ExitCode> {
    let artifact = system_update::artifact_in(image)?;
    let before = system_update::status(device, token)?;
    let started = std::time::Instant::now();
    let pushed = system_update::push(device, &artifact, token, std::io::stderr().is_terminal())?;
    let result = match pushed {
        Some(refused) => refused,
        None => {
            let version = artifact_version(&artifact)?;
            eprintln!("the device took version {version}; waiting for it to reboot and commit or roll back");
            system_update::wait_for_outcome(
                &version,
                before.state.as_ref().and_then(|s| s.last_attempt.as_ref()),
                std::time::Duration::from_secs(timeout),
                started,
                || system_update::status(device, token),
            )?
        }
    };
    match result {
        UpdateResult::Committed { version, seconds } => {
            println!("committed: running version {version} ({seconds:.1} s from upload)");
            Ok(ExitCode::SUCCESS)
        }
        UpdateResult::RolledBack {
            version,
            running,
            reason,
            ..
        } => {
            eprintln!("rolled back: version {version} did not commit ({reason}); running version {running}");
            Ok(ExitCode::FAILURE)
        }
        UpdateResult::Refused { status, reason } => {
            eprintln!("refused (HTTP {status}): {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The version an artifact carries, from its signed manifest (its first member).
fn artifact_version(artifact: &std::path::Path) -> Result<String> {
    let file =
        std::fs::File::open(artifact).with_context(|| format!("reading {}", artifact.display()))?;
    let not_one = || format!("{} is not an update artifact", artifact.display());
    let mut archive = tar::Archive::new(file);
    let entry = archive
        .entries()
        .with_context(not_one)?
        .next()
        .with_context(not_one)?;
    let manifest: edge_config::system::UpdateManifest =
        serde_json::from_reader(entry.with_context(not_one)?).with_context(not_one)?;
    Ok(manifest.version)
}

//! The image's bill of materials as SPDX 2.3 JSON (`<name>.spdx.json`): every Alpine package
//! (version, license, checksums, origin repository, purl), our own device binaries (version,
//! source commit, sha256), the ONNX Runtime engine's libraries, the kernel and the model.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::image::device::DeviceBinaries;
use crate::image::onnxruntime::ENGINE_DIR;
use crate::outputs::manifest::{Manifest, PackageRecord, LOCAL_MIRROR};
use crate::writers::atomic::AtomicFile;

/// What the SBOM needs besides the manifest.
pub struct SbomInputs<'a> {
    pub binaries: &'a DeviceBinaries,
    pub kernel_image: &'a [u8],
    pub kernel_version: &'a str,
}

pub fn write_sbom(manifest: &Manifest, inputs: &SbomInputs, out: &Path) -> Result<()> {
    let doc = spdx_document(manifest, inputs)?;
    let mut file = AtomicFile::create(out)?;
    let mut text = serde_json::to_vec_pretty(&doc)?;
    text.push(b'\n');
    std::io::Write::write_all(file.file(), &text)?;
    file.commit()
}

fn spdx_document(manifest: &Manifest, inputs: &SbomInputs) -> Result<Value> {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": manifest.name,
        "versionInfo": manifest.inputs_sha256.clone().unwrap_or_default(),
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("edgeimg image for board {} ({})", manifest.board, manifest.arch),
    })];
    packages.extend(manifest.packages.iter().map(apk_package));
    for binary in manifest
        .device_binaries
        .iter()
        .flat_map(|d| d.files.iter().map(move |f| (d, f)))
    {
        let (origin, file) = binary;
        packages.push(json!({
            "SPDXID": format!("SPDXRef-Binary-{}", file.name),
            "name": file.name,
            "versionInfo": env!("CARGO_PKG_VERSION"),
            "primaryPackagePurpose": "APPLICATION",
            "downloadLocation": "NOASSERTION",
            "sourceInfo": format!(
                "{} ({}); edgeimg source at commit {}",
                file.from, origin.found_as, origin.source_commit
            ),
            "filesAnalyzed": false,
            "checksums": [{"algorithm": "SHA256", "checksumValue": file.sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": format!("{} in the image", file.path_in_image),
        }));
    }
    for library in &inputs.binaries.runtime_libraries {
        packages.push(json!({
            "SPDXID": format!("SPDXRef-EngineLibrary-{}", spdx_id_part(&library.file_name)),
            "name": library.package,
            "versionInfo": library.version,
            "primaryPackagePurpose": "LIBRARY",
            "downloadLocation": "NOASSERTION",
            "sourceInfo": library.origin,
            "filesAnalyzed": false,
            "checksums": [sha256_checksum(&std::fs::read(&library.source)?)],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": library.license,
            "copyrightText": "NOASSERTION",
            "comment": format!("{ENGINE_DIR}/{}, for the ONNX Runtime engine", library.file_name),
        }));
    }
    packages.push(json!({
        "SPDXID": "SPDXRef-Kernel",
        "name": "kernel",
        "versionInfo": inputs.kernel_version,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": [sha256_checksum(inputs.kernel_image)],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "GPL-2.0-only",
        "copyrightText": "NOASSERTION",
        "comment": "the boot image as the board loads it (unwrapped from the kernel package)",
    }));
    if let Some(model) = &manifest.model {
        packages.push(json!({
            "SPDXID": "SPDXRef-Model",
            "name": model.name,
            "versionInfo": model.sha256,
            "primaryPackagePurpose": "DATA",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": [{"algorithm": "SHA256", "checksumValue": model.sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": format!(
                "{} (source sha256 {}), served from {}",
                model.source, model.source_sha256, model.path_in_image
            ),
        }));
    }
    let relationships: Vec<Value> = std::iter::once(json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    }))
    .chain(packages.iter().skip(1).map(|p| {
        json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": p["SPDXID"],
        })
    }))
    .collect();
    Ok(json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": manifest.name,
        "documentNamespace": format!(
            "https://edgeimg.invalid/spdx/{}/{}",
            manifest.name,
            manifest.inputs_sha256.as_deref().unwrap_or("unversioned")
        ),
        "creationInfo": {
            // The build's source date, so the document is reproducible too.
            "created": rfc3339(manifest.source_date_epoch),
            "creators": [format!("Tool: edgeimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
        "comment": left_out_comment(manifest),
    }))
}

/// The manifest's `left_out`, so a reader of the SBOM alone knows what is deliberately absent.
fn left_out_comment(manifest: &Manifest) -> String {
    if manifest.left_out.is_empty() {
        return "Nothing was left out of the packages' files.".into();
    }
    let items: Vec<String> = manifest
        .left_out
        .iter()
        .map(|l| match l.bytes {
            Some(bytes) => format!("{} ({bytes} bytes): {}", l.what, l.reason),
            None => format!("{}: {}", l.what, l.reason),
        })
        .collect();
    format!("Left out of the image on purpose: {}.", items.join("; "))
}

fn apk_package(p: &PackageRecord) -> Value {
    let mut checksums = vec![json!({"algorithm": "SHA256", "checksumValue": p.apk_sha256})];
    if let Some(sha1) = control_sha1(&p.checksum) {
        checksums.push(json!({"algorithm": "SHA1", "checksumValue": sha1}));
    }
    json!({
        "SPDXID": format!("SPDXRef-Package-apk-{}", spdx_id_part(&p.name)),
        "name": p.name,
        "versionInfo": p.version,
        "supplier": "Organization: Alpine Linux",
        // A URL, or NOASSERTION for a mirror on the build host (SPDX wants a URL here).
        "downloadLocation": if p.repository.starts_with(LOCAL_MIRROR) {
            "NOASSERTION"
        } else {
            p.repository.as_str()
        },
        "filesAnalyzed": false,
        "checksums": checksums,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": spdx_license(&p.license),
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("Alpine origin package {}", p.origin),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:apk/alpine/{}@{}?arch={}", p.name, p.version, p.arch),
        }],
    })
}

/// Alpine's `Q1<base64 sha1>` control checksum as hex, which SPDX wants.
fn control_sha1(checksum: &str) -> Option<String> {
    use base64::Engine;
    let raw = checksum.strip_prefix("Q1")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    (bytes.len() == 20).then(|| hex::encode(bytes))
}

/// Alpine's license field is mostly SPDX already; anything else is NOASSERTION rather than an
/// invalid expression.
fn spdx_license(license: &str) -> String {
    let valid = !license.is_empty()
        && license.split_whitespace().all(|token| {
            matches!(token, "AND" | "OR" | "WITH")
                || token
                    .trim_matches(['(', ')'])
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.+".contains(c))
        });
    if valid {
        license.to_string()
    } else {
        "NOASSERTION".into()
    }
}

/// SPDX ids allow letters, digits, `.` and `-`.
fn spdx_id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn sha256_checksum(data: &[u8]) -> Value {
    json!({"algorithm": "SHA256", "checksumValue": hex::encode(Sha256::digest(data))})
}

fn rfc3339(unix: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(unix).unwrap_or(i64::MAX), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses_are_kept_when_they_are_spdx_expressions() {
        assert_eq!(spdx_license("GPL-2.0-only"), "GPL-2.0-only");
        assert_eq!(
            spdx_license("MIT AND (BSD-3-Clause OR Apache-2.0)"),
            "MIT AND (BSD-3-Clause OR Apache-2.0)"
        );
        assert_eq!(spdx_license("custom:foo"), "NOASSERTION");
        assert_eq!(spdx_license(""), "NOASSERTION");
    }

    #[test]
    fn control_checksum_becomes_hex_sha1() {
        // Q1 + base64 of 20 bytes 0x00..0x13.
        let raw: Vec<u8> = (0u8..20).collect();
        use base64::Engine;
        let q1 = format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(&raw)
        );
        assert_eq!(control_sha1(&q1).unwrap(), hex::encode(&raw));
        assert_eq!(control_sha1("nope"), None);
    }

    #[test]
    fn source_date_is_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}

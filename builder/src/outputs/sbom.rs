//! The image's bill of materials as SPDX 2.3 JSON (`<name>.spdx.json`): every Alpine package
//! (version, license, checksums, origin repository, purl), our own device binaries (version,
//! source commit, sha256), the ONNX Runtime engine's libraries, the kernel and the model.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::image::device::DeviceBinaries;
use crate::image::onnxruntime::ENGINE_DIR;
use crate::outputs::manifest::{Manifest, ModelRecord, PackageRecord};
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
    let mut licenses = Licenses::default();
    let alpine: Vec<String> = manifest
        .alpine
        .repositories
        .iter()
        .map(|name| {
            let m = manifest.alpine.mirror.trim_end_matches('/');
            format!("{m}/{}/{name}", manifest.alpine.branch)
        })
        .collect();
    packages.extend(
        manifest
            .packages
            .iter()
            .map(|p| apk_package(p, &mut licenses, &alpine)),
    );
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
            "licenseDeclared": licenses.expression(&library.license),
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
    for model in &manifest.models {
        packages.push(model_package(model));
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
        "hasExtractedLicensingInfos": licenses.extracted(),
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

/// An ONNX model the image serves: SPDX 2.3 has no purpose for data, so OTHER, said in the
/// comment; its download location is the url it was fetched from, when that is public.
fn model_package(model: &ModelRecord) -> Value {
    let from = match &model.member {
        Some(member) => format!(
            "{member} in {} (sha256 {})",
            model.source,
            model.download_sha256.as_deref().unwrap_or("")
        ),
        None => model.source.clone(),
    };
    json!({
        "SPDXID": format!("SPDXRef-Model-{}", spdx_id_part(&model.name)),
        "name": model.name,
        "versionInfo": model.sha256,
        "primaryPackagePurpose": "OTHER",
        "downloadLocation": public_url(&model.source),
        "filesAnalyzed": false,
        "checksums": [{"algorithm": "SHA256", "checksumValue": model.sha256}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!(
            "ONNX model, dims frozen; made from {from} (model sha256 {}), served from {}",
            model.source_sha256, model.path_in_image
        ),
    })
}

/// A location as SPDX's downloadLocation: a URL, else NOASSERTION (a build host's folder says
/// nothing to whoever reads the SBOM).
fn public_url(location: &str) -> String {
    if location.starts_with("https://") || location.starts_with("http://") {
        location.to_string()
    } else {
        "NOASSERTION".into()
    }
}

fn apk_package(p: &PackageRecord, licenses: &mut Licenses, alpine: &[String]) -> Value {
    let mut checksums = vec![json!({"algorithm": "SHA256", "checksumValue": p.apk_sha256})];
    if let Some(sha1) = control_sha1(&p.checksum) {
        checksums.push(json!({"algorithm": "SHA1", "checksumValue": sha1}));
    }
    let supplier = if alpine.contains(&p.repository) {
        "Organization: Alpine Linux"
    } else {
        "NOASSERTION"
    };
    json!({
        "SPDXID": format!("SPDXRef-Package-apk-{}", spdx_id_part(&p.name)),
        "name": p.name,
        "versionInfo": p.version,
        "supplier": supplier,
        "downloadLocation": public_url(&p.repository),
        "filesAnalyzed": false,
        "checksums": checksums,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": licenses.expression(&p.license),
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

/// License expressions for SPDX: Alpine's license fields are mostly SPDX already; a name that
/// is not an SPDX identifier (`custom`, `Public-Domain`) becomes `LicenseRef-<name>`, listed
/// with the text it came from in the document's `hasExtractedLicensingInfos`.
#[derive(Default)]
struct Licenses {
    /// LicenseRef id -> the package's original license name.
    refs: std::collections::BTreeMap<String, String>,
}

impl Licenses {
    fn expression(&mut self, license: &str) -> String {
        let spaced = license.replace('(', " ( ").replace(')', " ) ");
        let mut out: Vec<String> = Vec::new();
        let mut after_with = false;
        for token in spaced.split_whitespace() {
            let upper = token.to_ascii_uppercase();
            let known = token == "("
                || token == ")"
                || if after_with {
                    spdx::exception_id(token).is_some()
                } else {
                    spdx::license_id(token.trim_end_matches('+')).is_some()
                };
            let part = if matches!(upper.as_str(), "AND" | "OR" | "WITH") {
                upper
            } else if known {
                token.to_string()
            } else {
                self.reference(token)
            };
            after_with = part == "WITH";
            out.push(part);
        }
        let expression = out.join(" ").replace("( ", "(").replace(" )", ")");
        if out.is_empty() {
            "NOASSERTION".into()
        } else if spdx::Expression::parse(&expression).is_ok() {
            expression
        } else {
            // Not an expression at all (e.g. "GPL or"): the whole field, as one reference.
            self.reference(license)
        }
    }

    fn reference(&mut self, name: &str) -> String {
        let id = format!("LicenseRef-{}", spdx_id_part(name));
        self.refs
            .entry(id.clone())
            .or_insert_with(|| name.to_string());
        id
    }

    fn extracted(&self) -> Vec<Value> {
        self.refs
            .iter()
            .map(|(id, name)| {
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": format!(
                        "The package's license field says {name:?}, which is not an SPDX license identifier; the package's own files hold its terms."
                    ),
                })
            })
            .collect()
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
    fn licenses_keep_spdx_ids_and_refer_to_the_rest() {
        let mut l = Licenses::default();
        assert_eq!(l.expression("GPL-2.0-only"), "GPL-2.0-only");
        assert_eq!(
            l.expression("MIT AND (BSD-3-Clause OR Apache-2.0)"),
            "MIT AND (BSD-3-Clause OR Apache-2.0)"
        );
        assert_eq!(
            l.expression("GPL-2.0-or-later WITH Linux-syscall-note"),
            "GPL-2.0-or-later WITH Linux-syscall-note"
        );
        assert_eq!(l.expression("custom"), "LicenseRef-custom");
        assert_eq!(
            l.expression("MIT and Public-Domain"),
            "MIT AND LicenseRef-Public-Domain"
        );
        assert_eq!(l.expression("custom:foo"), "LicenseRef-custom-foo");
        assert_eq!(l.expression(""), "NOASSERTION");
        let ids: Vec<String> = l
            .extracted()
            .iter()
            .map(|v| v["licenseId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "LicenseRef-Public-Domain",
                "LicenseRef-custom",
                "LicenseRef-custom-foo"
            ]
        );
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

//! `edgeimg test` end to end: real images booted in QEMU (TCG) on both arches, answering
//! over the forwarded port like the host's ONNX Runtime, surviving a server kill, powering off.

mod common;

use std::path::Path;

use common::{project_root, recipe_text, shared_cache, stderr, tiny_mlp_recipe, with_mirror};

fn edgeimg_test(recipe: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    with_mirror("test", recipe, &args, &shared_cache())
}

/// `edgeimg test RECIPE` passes with the server on `engine`; returns the folder holding its
/// output (`image/`) and what it printed.
fn passes(recipe: &str, engine: &str) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().unwrap();
    let junit = out.path().join("junit.xml");
    let result = edgeimg_test(
        &project_root().join("recipes").join(recipe),
        &out.path().join("image"),
        &["--junit", junit.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        result.status.success(),
        "edgeimg test {recipe} failed:\n{stdout}\n{}",
        stderr(&result)
    );
    assert!(stdout.contains("ready in"), "{stdout}");
    // The harness's accelerator choice and its reason reach the user.
    assert!(
        stderr(&result).contains("QEMU accelerator for "),
        "{}",
        stderr(&result)
    );
    assert!(
        stdout.contains("ONNX Runtime (max |diff|"),
        "no comparison with ORT:\n{stdout}"
    );
    assert!(stdout.contains("powered off"), "{stdout}");
    for check in ["ok   device defaults", "ok   serial console"] {
        assert!(stdout.contains(check), "no {check:?}:\n{stdout}");
    }
    eprintln!("{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains("<testsuite") && !xml.contains("<failure"),
        "{xml}"
    );
    assert_engine(&out.path().join("image"), engine);
    (out, stdout)
}

/// The image's console log; the Pi's UART prints a stray non-UTF-8 byte when its clock is set.
fn console_log(image: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(image.join("console.log")).unwrap()).into_owned()
}

/// The device's server said which engine it runs on the console.
fn assert_engine(image: &Path, engine: &str) {
    let console = console_log(image);
    assert!(
        console.contains(&format!(
            "edge-runtime listening on 0.0.0.0:8000 (engine {engine},"
        )),
        "the server did not run on {engine}:\n{console}"
    );
}

/// The recipes' model-update checks, each with its figures: the update under load committed
/// with no failed request and ONNX Runtime's answers, both refusals with their reasons, the
/// version kept across a reboot and across QEMU killed mid-upload.
/// The line `edgeimg test` printed for the check named `name`.
fn check_line(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name:?} check:\n{stdout}"))
        .to_string()
}

fn assert_model_updates(stdout: &str) {
    let line = |name: &str| check_line(stdout, name);
    for (name, says) in [
        ("uploaded under load", "version 1 -> 2"),
        ("uploaded under load", ", 0 failed"),
        (
            "uploaded under load",
            "ONNX Runtime on the new model (max |diff|",
        ),
        (
            "a corrupt model is refused",
            "(HTTP 422): update refused: the model does not load",
        ),
        (
            "signed with another key",
            "(HTTP 403): update refused: the signature does not verify",
        ),
        ("after a reboot", "still version 2, same answers"),
        ("killed mid-upload", "still version 2, same answers"),
    ] {
        let l = line(name);
        assert!(
            l.contains("ok ") && l.contains(says),
            "{name}: no {says:?} in {l}"
        );
    }
}

/// recipes/ocr-aarch64.toml: PaddleOCR's det, cls and rec, fetched from their PyPI wheel, in
/// one arm64 image on the real ONNX Runtime. Each answers a photographed page (and its first
/// line cropped) like the host's ONNX Runtime, and examples/ocr_client.py, run with the pinned
/// Python, reads that line over the API.
#[test]
fn ocr_image_reads_a_photographed_page_like_the_hosts_onnxruntime() {
    let (out, stdout) = passes("ocr-aarch64.toml", "onnxruntime");
    for (name, output) in [
        (
            "det finds the text",
            "sigmoid_0.tmp_0 = host ONNX Runtime (max |diff|",
        ),
        (
            "cls finds the page's first line",
            "= host ONNX Runtime (max |diff|",
        ),
        (
            "rec reads the page's first line",
            "softmax_11.tmp_0 = host ONNX Runtime (max |diff|",
        ),
        (
            "the example client",
            "rec: line 1 reads 'Region-based segmentation'",
        ),
    ] {
        let line = check_line(&stdout, name);
        assert!(line.contains("ok ") && line.contains(output), "{line}");
    }
    // The example's whole reading, det's line count and cls's box and score included, equals
    // Python's onnxruntime on the image's own (frozen) models, through the same client code.
    let image = out.path().join("image");
    let page = std::fs::read_dir(shared_cache().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path().join("members/skimage/data/page.png"))
        .find(|p| p.is_file())
        .expect("the recipe's page, fetched by its test");
    let host = edgeimg_test_support::tool(
        std::process::Command::new(edgeimg_test_support::wheels::python())
            .args(["-c", OCR_ON_HOST])
            .arg(project_root().join("examples"))
            .arg(&image)
            .arg(&page),
    );
    let host = host.trim().replace('\n', "; ");
    assert!(host.contains("rec: line 1 reads"), "{host}");
    let line = check_line(&stdout, "the example client");
    assert!(
        line.ends_with(&host),
        "device: {line}\nhost ONNX Runtime: {host}"
    );
}

/// examples/ocr_client.py's reading (argv[1]: the examples folder) of the picture argv[3],
/// with Python's onnxruntime on the built image's frozen models (argv[2]/NAME.model.onnx)
/// standing in for the device.
const OCR_ON_HOST: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import onnxruntime as ort
from PIL import Image
import ocr_client
class Host:
    def __init__(self, folder):
        self.sessions = {m: ort.InferenceSession(f"{folder}/{m}.model.onnx") for m in ("det", "cls", "rec")}
    def input_hw(self, model):
        shape = self.sessions[model].get_inputs()[0].shape
        return int(shape[2]), int(shape[3])
    def infer(self, model, pixels):
        return self.sessions[model].run(None, {"x": pixels})[0]
chars = ocr_client.characters(f"{sys.argv[2]}/rec.model.onnx")
print("\n".join(ocr_client.read_first_line(Host(sys.argv[2]), Image.open(sys.argv[3]), chars)))
"#;

/// Converts the ONNX model argv[1] to half precision, its inputs and outputs too, into
/// argv[2] (onnxconverter-common, in the pinned venv); prints the input's type as ONNX Runtime
/// reads it.
const TO_FP16: &str = r#"
import sys, onnx, onnxruntime as ort
from onnxconverter_common import float16
onnx.save(float16.convert_float_to_float16(onnx.load(sys.argv[1]), keep_io_types=False), sys.argv[2])
print(ort.InferenceSession(sys.argv[2]).get_inputs()[0].type)
"#;

/// A real half-precision model in a booted image: PP-OCR's cls converted to FP16 (inputs and
/// outputs too), served on the device's ONNX Runtime, answers the OCR recipe's cropped line
/// like the host's ONNX Runtime does.
#[test]
fn fp16_cls_model_in_an_arm64_image_answers_a_page_line_like_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let cls = edgeimg_test_support::wheels::unpacked(
        &edgeimg::pypi::pinned::RAPIDOCR,
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    );
    let half = dir.path().join("cls-fp16.onnx");
    let read_as = edgeimg_test_support::tool(
        std::process::Command::new(edgeimg_test_support::wheels::python())
            .args(["-c", TO_FP16])
            .arg(&cls)
            .arg(&half),
    );
    assert_eq!(read_as.trim(), "tensor(float16)");
    // The OCR recipe's cls check: its pinned page and the crop of the first line.
    let ocr: toml::Table = toml::from_str(&recipe_text("ocr-aarch64.toml")).unwrap();
    let check = ocr["test"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t.get("model").and_then(|m| m.as_str()) == Some("cls"))
        .unwrap();
    let recipe = dir.path().join("cls-fp16.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"cls-fp16\"\nboard = \"qemu-aarch64\"\n\
             [[model]]\nname = \"cls\"\npath = {:?}\ninputs = {{ x = [1, 3, 48, 192] }}\n\
             [runtime]\nengine = \"onnxruntime\"\n[network]\ndhcp = true\n\
             [[test]]\nname = \"fp16 cls finds the line upright\"\nfiles = {}\ninputs = {}\n\
             compare_onnxruntime = true\ntolerance = 1e-3\n",
            half.display().to_string(),
            check["files"],
            check["inputs"],
        ),
    )
    .unwrap();
    let result = edgeimg_test(&recipe, &dir.path().join("image"), &[]);
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(result.status.success(), "{stdout}\n{}", stderr(&result));
    let line = check_line(&stdout, "fp16 cls finds the line upright");
    assert!(
        line.contains("ok ") && line.contains("= host ONNX Runtime (max |diff|"),
        "{line}"
    );
    assert_engine(&dir.path().join("image"), "onnxruntime");
}

/// engine = "onnxruntime": the real ONNX Runtime on its private glibc inside the musl image.
#[test]
fn qemu_x86_64_image_serves_with_onnxruntime_like_the_host_and_restarts_its_server() {
    let (out, stdout) = passes("qemu-x86_64.toml", "onnxruntime");
    assert_model_updates(&stdout);
    // Nothing changed: the second run boots the same build instead of building again.
    let again = edgeimg_test(
        &project_root().join("recipes/qemu-x86_64.toml"),
        &out.path().join("image"),
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("is up to date"),
        "{}",
        stderr(&again)
    );
}

// recipes/qemu-aarch64.toml's boot (its checks, the load check among them) runs in
// `installed.rs`, from a recipe `edgeimg new` scaffolds from it, with the installed edgeimg.

/// The Pi's SD-card image itself, as a Pi 4 on QEMU's raspi4b (no network there: ready,
/// audited, powered off) and as a Pi 3 on raspi3b (API over USB networking): kernel,
/// initramfs and the machine's own device tree from its boot partition (raspi4b's with the
/// emulation-only edits on a copy), root from the card through the mmc driver, the drivers
/// on the way loaded by their devices' modaliases.
#[test]
fn pi_sd_card_image_boots_as_a_pi_4_and_as_a_pi_3_and_answers_like_onnxruntime() {
    let (out, stdout) = passes("pi.toml", "tract");
    for line in [
        "edge-pi on raspi4b: ready in",
        "no network on raspi4b",
        "edge-pi on raspi3b: ready in",
    ] {
        assert!(stdout.contains(line), "no {line:?}:\n{stdout}");
    }
    let pi4 = console_log(&out.path().join("image"));
    for line in [
        "root /dev/mmcblk0p2 mounted",
        // The SD host's regulators: modules, loaded for their device-tree nodes.
        "gpio_regulator",
        "EDGEIMG-POWEROFF",
    ] {
        assert!(pi4.contains(line), "raspi4b console lacks {line:?}:\n{pi4}");
    }
    assert!(
        !pi4.contains("EDGEIMG-ERROR"),
        "raspi4b reported an error:\n{pi4}"
    );
    let pi3 = std::fs::read(out.path().join("image/console.raspi3b.log")).unwrap();
    assert!(String::from_utf8_lossy(&pi3).contains("EDGEIMG-NET interface=usb0"));
}

/// `outputs = ["disk", "qcow2"]` on a QEMU board: a GPT disk with the squashfs root and ext4
/// data partitions, booted through the small boot initramfs that switches to the root. It
/// serves with tract, the static engine, so both engines boot on x86_64.
#[test]
fn qemu_x86_64_disk_image_boots_from_its_squashfs_root() {
    let dir = tempfile::tempdir().unwrap();
    let text = recipe_text("qemu-x86_64.toml")
        .replace("[image]\n", "[image]\noutputs = [\"disk\", \"qcow2\"]\n")
        .replace("engine = \"onnxruntime\"", "engine = \"tract\"");
    let recipe = dir.path().join("disk.toml");
    std::fs::write(&recipe, text).unwrap();
    let out = dir.path().join("image");
    let result = edgeimg_test(&recipe, &out, &[]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", stderr(&result));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert_engine(&out, "tract");
    let console = console_log(&out);
    assert!(
        console.contains("EDGEIMG-DATA"),
        "data partition not mounted:\n{console}"
    );
    assert!(
        console.contains("root /dev/vda"),
        "root not from the disk:\n{console}"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let qcow = names
        .iter()
        .find(|n| n.ends_with(".qcow2"))
        .expect("a qcow2 output");
    let check = std::process::Command::new("qemu-img")
        .args(["check", out.join(qcow).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

fn recipe(dir: &Path, model_inputs: &str, runtime: &str) -> std::path::PathBuf {
    tiny_mlp_recipe(
        dir,
        "broken",
        model_inputs,
        &format!("[runtime]\n{runtime}\n[[test]]\nname = \"answers\"\ninputs = {{ x = {{ random = 1 }} }}\ncompare_onnxruntime = true"),
    )
}

#[test]
fn wrong_model_input_shape_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = edgeimg_test(
        &recipe(dir.path(), "x = [1, 15]", ""),
        &dir.path().join("image"),
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("x") && err.contains("16") && err.contains("15"),
        "{err}"
    );
}

#[test]
fn server_unreachable_from_outside_fails_with_the_console_tail() {
    let dir = tempfile::tempdir().unwrap();
    let out = edgeimg_test(
        &recipe(dir.path(), "x = [1, 16]", "listen = \"127.0.0.1:8000\""),
        &dir.path().join("image"),
        &["--timeout", "240"],
    );
    assert!(
        !out.status.success(),
        "an API bound to the guest's loopback must fail the test"
    );
    let err = stderr(&out);
    assert!(err.contains("1 failed"), "{err}");
    assert!(
        err.contains("console tail") && err.contains("EDGEIMG-READY"),
        "{err}"
    );
}

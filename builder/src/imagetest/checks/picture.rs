//! Test inputs from real pictures: `{ image = FILE, crop = [x, y, w, h], mean = [..], std = [..] }`
//! becomes an NCHW float tensor of the model's frozen shape: the PNG decoded, cropped, resized
//! bilinearly to H x W, then `(pixel / 255 - mean) / std` per channel (RGB order; one channel
//! is the grey level).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Pixels as 8-bit RGB, row-major.
struct Rgb {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

/// The most pixels a test picture may have (a 8K x 8K photo): decoding is bounded.
const MAX_PIXELS: usize = 64 << 20;

/// The tensor data for a model input of `shape` ([1, C, H, W]) from the picture the recipe
/// names in `spec` (its `image` already a local path).
pub fn tensor_data(spec: &toml::map::Map<String, toml::Value>, shape: &[i64]) -> Result<Vec<f64>> {
    let &[1, channels @ (1 | 3), height, width] = shape else {
        bail!(
            "an image input needs a model input of shape [1, 3 or 1, H, W]; this one is {shape:?}"
        );
    };
    if let Some(key) = spec
        .keys()
        .find(|k| !["image", "crop", "mean", "std"].contains(&k.as_str()))
    {
        bail!("an image input takes image, crop, mean and std; {key:?} is none of them");
    }
    let path = spec["image"].as_str().context("`image` is a file")?;
    let mut picture = decode(Path::new(path))?;
    if let Some(crop) = spec.get("crop") {
        picture = cropped(&picture, &numbers(crop, "crop", 4)?)?;
    }
    let per_channel = |key: &str, default: f64| -> Result<Vec<f64>> {
        match spec.get(key) {
            None => Ok(vec![default; 3]),
            Some(v) => match (v.as_float(), v.as_integer()) {
                (Some(f), _) => Ok(vec![f; 3]),
                (_, Some(i)) => Ok(vec![i as f64; 3]),
                _ => numbers(v, key, 3),
            },
        }
    };
    let (mean, std) = (per_channel("mean", 0.0)?, per_channel("std", 1.0)?);
    if std.contains(&0.0) {
        bail!("`std` must not be 0");
    }
    let (h, w) = (height as usize, width as usize);
    let resized = resized(&picture, w, h);
    let mut out = Vec::with_capacity(channels as usize * h * w);
    for c in 0..channels as usize {
        for px in resized.data.chunks_exact(3) {
            let value = if channels == 1 {
                (px[0] as f64 + px[1] as f64 + px[2] as f64) / 3.0
            } else {
                px[c] as f64
            };
            out.push((value / 255.0 - mean[c]) / std[c]);
        }
    }
    Ok(out)
}

fn numbers(value: &toml::Value, key: &str, count: usize) -> Result<Vec<f64>> {
    let items = value
        .as_array()
        .filter(|a| a.len() == count)
        .with_context(|| format!("`{key}` takes {count} numbers"))?;
    items
        .iter()
        .map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
        .collect::<Option<Vec<f64>>>()
        .with_context(|| format!("`{key}` takes {count} numbers"))
}

fn decode(path: &Path) -> Result<Rgb> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the test picture {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a PNG picture", path.display()))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if width * height > MAX_PIXELS {
        bail!(
            "{} has {width} x {height} pixels, more than a test picture may",
            path.display()
        );
    }
    let mut buf = vec![0; reader.output_buffer_size().context("picture too large")?];
    let frame = reader
        .next_frame(&mut buf)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    let samples = frame.color_type.samples();
    let data = buf[..frame.buffer_size()]
        .chunks_exact(samples)
        .flat_map(|px| match samples {
            1 | 2 => [px[0], px[0], px[0]],
            _ => [px[0], px[1], px[2]],
        })
        .collect();
    Ok(Rgb {
        width,
        height,
        data,
    })
}

fn cropped(p: &Rgb, crop: &[f64]) -> Result<Rgb> {
    let [x, y, w, h] = [crop[0], crop[1], crop[2], crop[3]].map(|v| v.max(0.0) as usize);
    if w == 0 || h == 0 || x + w > p.width || y + h > p.height {
        bail!(
            "crop [{x}, {y}, {w}, {h}] is not inside the {} x {} picture",
            p.width,
            p.height
        );
    }
    let mut data = Vec::with_capacity(w * h * 3);
    for row in y..y + h {
        data.extend_from_slice(&p.data[(row * p.width + x) * 3..(row * p.width + x + w) * 3]);
    }
    Ok(Rgb {
        width: w,
        height: h,
        data,
    })
}

/// Bilinear resize with pixel centres aligned (as PIL and OpenCV do). Hand-written: a few
/// lines, where an imaging crate would bring far more than the tests need.
fn resized(p: &Rgb, width: usize, height: usize) -> Rgb {
    let sample = |x: usize, y: usize, c: usize| p.data[(y * p.width + x) * 3 + c] as f64;
    let axis = |out: usize, size: usize, src: usize| {
        let pos = ((out as f64 + 0.5) * src as f64 / size as f64 - 0.5).max(0.0);
        let lo = (pos.floor() as usize).min(src - 1);
        (lo, (lo + 1).min(src - 1), pos - lo as f64)
    };
    let mut data = Vec::with_capacity(width * height * 3);
    for oy in 0..height {
        let (y0, y1, fy) = axis(oy, height, p.height);
        for ox in 0..width {
            let (x0, x1, fx) = axis(ox, width, p.width);
            for c in 0..3 {
                let top = sample(x0, y0, c) * (1.0 - fx) + sample(x1, y0, c) * fx;
                let bottom = sample(x0, y1, c) * (1.0 - fx) + sample(x1, y1, c) * fx;
                data.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Rgb {
        width,
        height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, grey: &[u8]) {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = png::Encoder::new(file, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header().unwrap().write_image_data(grey).unwrap();
    }

    #[test]
    fn a_grey_picture_is_cropped_resized_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        // 4 x 2: left half black, right half white.
        write_png(&path, 4, 2, &[0, 0, 255, 255, 0, 0, 255, 255]);
        let spec: toml::Table = toml::from_str(&format!(
            "image = {:?}\ncrop = [1, 0, 2, 2]\nmean = 0.5\nstd = [0.5, 0.5, 0.5]",
            path.display().to_string()
        ))
        .unwrap();
        let data = tensor_data(&spec, &[1, 3, 2, 2]).unwrap();
        // Each channel: black -> -1, white -> 1, per row.
        assert_eq!(data, [-1.0, 1.0, -1.0, 1.0].repeat(3));
        let err = tensor_data(&spec, &[1, 3, 2]).unwrap_err().to_string();
        assert!(err.contains("[1, 3 or 1, H, W]"), "{err}");
    }
}

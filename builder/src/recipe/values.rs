//! The numbers a `[[test]]` gives for a tensor: a (nested) array, or `{ random = SEED }`.
//! Read here once for `edgeimg test` and for the golden check the image carries.

use anyhow::{bail, Context, Result};

/// A test input's `count` values, row-major: the recipe's numbers, or seeded uniform [0, 1).
pub fn input_values(value: &toml::Value, count: usize) -> Result<Vec<f64>> {
    match value {
        toml::Value::Table(t) if t.contains_key("random") => {
            let seed = t["random"]
                .as_integer()
                .context("`random` takes an integer seed")?;
            let mut rng = fastrand::Rng::with_seed(seed as u64);
            Ok((0..count).map(|_| rng.f32() as f64).collect())
        }
        other => flatten_numbers(other),
    }
}

/// A number or a (nested) array of numbers, flattened row-major.
pub fn flatten_numbers(value: &toml::Value) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    push_numbers(value, &mut out)?;
    Ok(out)
}

fn push_numbers(value: &toml::Value, out: &mut Vec<f64>) -> Result<()> {
    match value {
        toml::Value::Integer(i) => out.push(*i as f64),
        toml::Value::Float(f) => out.push(*f),
        toml::Value::Boolean(b) => out.push(if *b { 1.0 } else { 0.0 }),
        toml::Value::Array(items) => {
            for item in items {
                push_numbers(item, out)?;
            }
        }
        other => bail!(
            "expected numbers or arrays of numbers, found {}",
            other.type_str()
        ),
    }
    Ok(())
}

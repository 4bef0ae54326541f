//! Elements read before their input's datatype is known: a client that sends `"data"` before
//! `"name"` and `"datatype"` (JSON writers that sort keys do) to a model whose inputs differ in
//! datatype. Each element is kept as 8 bytes (the integer, or the double, its text spells, or
//! where a string is among the strings) and a kind byte, and converted once the entry names
//! its input. When the inputs share one
//! datatype, or the name or datatype comes first, elements go straight into the typed buffer.

use crate::strings::{Refused, Strings};
use crate::tensor::{DataType, TensorData};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Signed,
    Unsigned,
    Float,
    Bool,
    /// The value is the string's index in `strings`.
    Str,
}

#[derive(Debug, Default)]
pub struct Pending {
    values: Vec<u64>,
    kinds: Vec<Kind>,
    strings: Strings,
    /// The first element that is no number, boolean or string (null, an object), reported
    /// once the datatype is known, after the checks of the datatype itself.
    unreadable: Option<(usize, String)>,
    skipped: usize,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.values.len() + self.skipped
    }

    /// An element no datatype takes: noted, and the rest of `data` only counted.
    pub fn push_unreadable(&mut self, what: String) {
        if self.unreadable.is_none() {
            self.unreadable = Some((self.len(), what));
        }
        self.skipped += 1;
    }

    pub fn push_number(&mut self, text: &str) {
        if self.unreadable.is_some() {
            self.skipped += 1;
            return;
        }
        let integer = !text.contains(['.', 'e', 'E']);
        let (value, kind) = match (integer, text.parse::<i64>(), text.parse::<u64>()) {
            (true, Ok(i), _) => (i as u64, Kind::Signed),
            (true, _, Ok(u)) => (u, Kind::Unsigned),
            // A fraction, an exponent, or an integer too large for 64 bits, as JSON readers
            // that tell integers from floats see it.
            _ => (
                text.parse::<f64>().unwrap_or(f64::NAN).to_bits(),
                Kind::Float,
            ),
        };
        self.values.push(value);
        self.kinds.push(kind);
    }

    /// A string; refused at once if no string tensor could hold it.
    pub fn push_string(&mut self, text: &str) -> Result<(), Refused> {
        if self.unreadable.is_some() {
            self.skipped += 1;
            return Ok(());
        }
        self.strings.push(text)?;
        self.values.push(self.strings.len() as u64 - 1);
        self.kinds.push(Kind::Str);
        Ok(())
    }

    pub fn push_bool(&mut self, value: bool) {
        if self.unreadable.is_some() {
            self.skipped += 1;
            return;
        }
        self.values.push(value as u64);
        self.kinds.push(Kind::Bool);
    }

    /// The elements as `datatype`, or the index and text of the first that is not a value of it.
    pub fn convert(&self, datatype: DataType) -> Result<TensorData, (usize, String)> {
        if let Some(unreadable) = &self.unreadable {
            return Err(unreadable.clone());
        }
        let mut data = TensorData::with_capacity(datatype, self.values.len());
        let mut text = String::new();
        let mut strings = self.strings.iter();
        for (index, (&value, &kind)) in self.values.iter().zip(&self.kinds).enumerate() {
            use std::fmt::Write;
            text.clear();
            let fits = match kind {
                // Checked when pushed; `Ok(false)` unless BYTES.
                Kind::Str => data
                    .push_json_string(strings.next().expect("one string per Str"))
                    .unwrap_or(false),
                Kind::Bool => data.push_json_bool(value != 0),
                Kind::Signed => {
                    let _ = write!(text, "{}", value as i64);
                    data.push_json_number(&text)
                }
                Kind::Unsigned => {
                    let _ = write!(text, "{value}");
                    data.push_json_number(&text)
                }
                Kind::Float => {
                    // Rust prints a double's shortest round-trip form: it parses back to itself.
                    let _ = write!(text, "{:e}", f64::from_bits(value));
                    data.push_json_number(&text)
                }
            };
            if !fits {
                return Err((index, self.describe(index)));
            }
        }
        Ok(data)
    }

    /// How element `index` reads in an error message.
    fn describe(&self, index: usize) -> String {
        match (self.kinds[index], self.values[index]) {
            (Kind::Str, v) => {
                let text = self.strings.iter().nth(v as usize).unwrap_or_default();
                super::events::describe(super::events::Event::Str, text)
            }
            (Kind::Bool, v) => (v != 0).to_string(),
            (Kind::Signed, v) => (v as i64).to_string(),
            (Kind::Unsigned, v) => v.to_string(),
            (Kind::Float, v) => f64::from_bits(v).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_elements_convert_as_if_read_typed() {
        let mut p = Pending::default();
        for text in ["1", "-2", "0.1", "18446744073709551615", "1e400"] {
            p.push_number(text);
        }
        let mut floats = Pending::default();
        for text in ["1", "-2", "0.1", "3e38"] {
            floats.push_number(text);
        }
        assert_eq!(
            floats.convert(DataType::Fp32),
            Ok(TensorData::Fp32(vec![1.0, -2.0, 0.1f64 as f32, 3e38]))
        );
        let mut ints = Pending::default();
        ints.push_number("-9223372036854775808");
        ints.push_number("7");
        assert_eq!(
            ints.convert(DataType::Int64),
            Ok(TensorData::Int64(vec![i64::MIN, 7]))
        );
        // 0.1 is no integer; 1e400 is out of range for a double.
        let mut i = Pending::default();
        i.push_number("1");
        i.push_number("0.1");
        assert_eq!(i.convert(DataType::Int32), Err((1, "0.1".into())));
        assert_eq!(p.convert(DataType::Fp64), Err((4, "inf".into())));
        let mut b = Pending::default();
        b.push_bool(true);
        b.push_number("1");
        assert_eq!(b.convert(DataType::Bool), Err((1, "1".into())));
        b.push_unreadable("null".into());
        b.push_number("2");
        assert_eq!(b.len(), 4);
        assert_eq!(b.convert(DataType::Fp32), Err((2, "null".into())));
        let mut s = Pending::default();
        s.push_string("a").unwrap();
        s.push_string("五").unwrap();
        assert_eq!(s.convert(DataType::Bytes).unwrap().len(), 2);
        assert_eq!(
            s.convert(DataType::Int64),
            Err((0, "the string \"a\"".into()))
        );
        s.push_number("1");
        assert_eq!(s.convert(DataType::Bytes), Err((2, "1".into())));
        assert_eq!(s.push_string("\0"), Err(Refused::Nul));
    }
}

//! BYTES tensors: variable-length elements in one flat buffer (no allocation per element), so a
//! tensor costs its bytes plus one offset per element however the request spells it.

use serde::{Serialize, Serializer};

/// Bytes of the little-endian length before each element in the binary tensor data extension
/// (Triton's layout).
pub const LENGTH_PREFIX: usize = 4;

/// The elements of a BYTES tensor, each UTF-8 text without NUL: what ONNX Runtime's string
/// tensors take (it copies each into a C string) and give back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strings {
    text: String,
    /// Where each element ends in `text`.
    ends: Vec<usize>,
}

/// Why an element cannot be a string tensor's element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotUtf8,
    Nul,
}

impl Refused {
    /// What is wrong and how to fix it, after "element N".
    pub fn reason(self) -> &'static str {
        match self {
            Refused::NotUtf8 => {
                "is not UTF-8 text; ONNX string tensors hold text: send raw bytes as UINT8"
            }
            Refused::Nul => {
                "holds a NUL byte, which ONNX Runtime's string tensors cannot carry; remove it or send the bytes as UINT8"
            }
        }
    }
}

impl Strings {
    /// Room for `count` elements; their bytes are reserved as they come.
    pub fn with_capacity(count: usize) -> Strings {
        Strings {
            text: String::new(),
            ends: Vec::with_capacity(count),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends one element given as bytes (the binary extension's).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        let text = std::str::from_utf8(bytes).map_err(|_| Refused::NotUtf8)?;
        self.push(text)
    }

    /// Appends one element given as text (a JSON string's).
    pub fn push(&mut self, text: &str) -> Result<(), Refused> {
        if text.contains('\0') {
            return Err(Refused::Nul);
        }
        self.text.push_str(text);
        self.ends.push(self.text.len());
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    /// How many bytes [`Strings::write_le`] writes.
    pub fn le_len(&self) -> usize {
        self.text.len() + LENGTH_PREFIX * self.len()
    }

    /// Each element as the binary tensor data extension lays it out: length, then bytes.
    pub fn write_le(&self, out: &mut Vec<u8>) {
        for s in self.iter() {
            // An element came from a body or from the engine's output; neither reaches 4 GiB.
            let len = u32::try_from(s.len()).expect("a string element under 4 GiB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    /// Elements that are already text (the engine's output); a NUL in one is kept as the
    /// engine gave it.
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Strings {
        let mut strings = Strings::default();
        for s in iter {
            strings.text.push_str(s.as_ref());
            strings.ends.push(strings.text.len());
        }
        strings
    }
}

impl Serialize for Strings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_bounds_and_refuse_what_onnx_strings_cannot_hold() {
        let mut s = Strings::with_capacity(3);
        s.push("").unwrap();
        s.push_bytes("五".as_bytes()).unwrap();
        s.push("ab").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["", "五", "ab"]);
        assert_eq!(s.push_bytes(&[0xff]), Err(Refused::NotUtf8));
        assert_eq!(s.push("a\0b"), Err(Refused::Nul));
        assert_eq!(s.len(), 3);
        let mut out = Vec::new();
        s.write_le(&mut out);
        assert_eq!(out, b"\0\0\0\0\x03\0\0\0\xe4\xba\x94\x02\0\0\0ab");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["","五","ab"]"#);
    }
}

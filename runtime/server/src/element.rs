//! One trait over the Rust element types, so decoding and encoding are written once, generically.

use serde::Serialize;

use crate::tensor::{DataType, TensorData};

/// A Rust type that stores one Open Inference Protocol datatype.
pub trait Element: Copy + Send + 'static {
    const DATATYPE: DataType;
    /// Bytes of one element in the binary tensor data extension.
    const SIZE: usize = std::mem::size_of::<Self>();
    /// The value as a JSON response writes it: JSON has no 16-bit floats, so FP16 and BF16 go
    /// out as the f32 of the same value (exact: every half value is an f32).
    type Json: Serialize;
    fn to_json(self) -> Self::Json;
    /// A JSON number, given as its text, as this type if it fits (no silent wrapping or
    /// truncation; integer types take only integers).
    fn from_json_number(text: &str) -> Option<Self>;
    /// A JSON `true`/`false` as this type (only BOOL takes them).
    fn from_json_bool(value: bool) -> Option<Self> {
        let _ = value;
        None
    }
    /// Reads one element from exactly `SIZE` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
    fn write_le(self, out: &mut Vec<u8>);
    fn into_data(values: Vec<Self>) -> TensorData;
}

/// Runs `$body` with the type alias `$t` naming the Rust element type of `$dtype`, or
/// `$bytes` for BYTES, which has no fixed-size element type.
#[macro_export]
macro_rules! with_element_type {
    ($dtype:expr, $t:ident => $body:expr, Bytes => $bytes:expr) => {
        match $dtype {
            $crate::tensor::DataType::Bytes => $bytes,
            $crate::tensor::DataType::Bool => {
                type $t = bool;
                $body
            }
            $crate::tensor::DataType::Uint8 => {
                type $t = u8;
                $body
            }
            $crate::tensor::DataType::Uint16 => {
                type $t = u16;
                $body
            }
            $crate::tensor::DataType::Uint32 => {
                type $t = u32;
                $body
            }
            $crate::tensor::DataType::Uint64 => {
                type $t = u64;
                $body
            }
            $crate::tensor::DataType::Int8 => {
                type $t = i8;
                $body
            }
            $crate::tensor::DataType::Int16 => {
                type $t = i16;
                $body
            }
            $crate::tensor::DataType::Int32 => {
                type $t = i32;
                $body
            }
            $crate::tensor::DataType::Int64 => {
                type $t = i64;
                $body
            }
            $crate::tensor::DataType::Fp16 => {
                type $t = $crate::tensor::f16;
                $body
            }
            $crate::tensor::DataType::Bf16 => {
                type $t = $crate::tensor::bf16;
                $body
            }
            $crate::tensor::DataType::Fp32 => {
                type $t = f32;
                $body
            }
            $crate::tensor::DataType::Fp64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// An integer literal (`-12`; not `1.0` or `1e3`, as JSON readers that tell integers from
/// floats see it) that fits `T`.
fn json_integer<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b == b'-')
        .then(|| text.parse().ok())
        .flatten()
}

/// A JSON number as a double; `1e400` is out of range, not infinity.
fn json_float(text: &str) -> Option<f64> {
    text.parse().ok().filter(|f: &f64| f.is_finite())
}

macro_rules! numeric_element {
    ($t:ty, $variant:ident, |$v:ident| $from_json:expr) => {
        numeric_element!($t, $variant, $t, |x| x, |$v| $from_json);
    };
    ($t:ty, $variant:ident, $json:ty, |$x:ident| $to_json:expr, |$v:ident| $from_json:expr) => {
        impl Element for $t {
            const DATATYPE: DataType = DataType::$variant;
            type Json = $json;
            fn to_json(self) -> $json {
                let $x = self;
                $to_json
            }
            fn from_json_number($v: &str) -> Option<Self> {
                $from_json
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("callers pass exactly one element"))
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn into_data(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
        }
    };
}

numeric_element!(u8, Uint8, |v| json_integer(v));
numeric_element!(u16, Uint16, |v| json_integer(v));
numeric_element!(u32, Uint32, |v| json_integer(v));
numeric_element!(u64, Uint64, |v| json_integer(v));
numeric_element!(i8, Int8, |v| json_integer(v));
numeric_element!(i16, Int16, |v| json_integer(v));
numeric_element!(i32, Int32, |v| json_integer(v));
numeric_element!(i64, Int64, |v| json_integer(v));
// Rounded from the double the text spells, as JSON clients' float32 values arrive.
numeric_element!(f32, Fp32, |v| json_float(v).map(|f| f as f32));
numeric_element!(f64, Fp64, |v| json_float(v));
// Rounded to the nearest half value; a number beyond the type's range is refused, not infinity.
numeric_element!(half::f16, Fp16, f32, |x| x.to_f32(), |v| json_float(v)
    .map(half::f16::from_f64)
    .filter(|h| h.is_finite()));
numeric_element!(half::bf16, Bf16, f32, |x| x.to_f32(), |v| json_float(v)
    .map(half::bf16::from_f64)
    .filter(|h| h.is_finite()));

impl Element for bool {
    const DATATYPE: DataType = DataType::Bool;
    type Json = bool;
    fn to_json(self) -> bool {
        self
    }
    fn from_json_number(_: &str) -> Option<Self> {
        None
    }
    fn from_json_bool(value: bool) -> Option<Self> {
        Some(value)
    }
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
    fn into_data(values: Vec<Self>) -> TensorData {
        TensorData::Bool(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_scalars_must_fit_the_type() {
        assert_eq!(i8::from_json_number("-128"), Some(-128));
        assert_eq!(i8::from_json_number("128"), None);
        assert_eq!(u8::from_json_number("-1"), None);
        assert_eq!(i64::from_json_number("1.5"), None);
        assert_eq!(i64::from_json_number("1e3"), None);
        assert_eq!(
            u64::from_json_number("18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(u64::from_json_number("18446744073709551616"), None);
        assert_eq!(f32::from_json_number("2"), Some(2.0));
        assert_eq!(f64::from_json_number("-2.5E-3"), Some(-0.0025));
        assert_eq!(f32::from_json_number("0.1"), Some(0.1f64 as f32));
        assert_eq!(bool::from_json_number("1"), None);
        assert_eq!(bool::from_json_bool(true), Some(true));
        assert_eq!(f32::from_json_bool(true), None);
        assert_eq!(
            half::f16::from_json_number("0.5"),
            Some(half::f16::from_f32(0.5))
        );
        assert_eq!(half::f16::from_json_number("65504"), Some(half::f16::MAX));
        assert_eq!(half::f16::from_json_number("70000"), None);
        assert_eq!(
            half::bf16::from_json_number("1e38").map(|b| b.is_finite()),
            Some(true)
        );
        assert_eq!(half::bf16::from_json_number("1e39"), None);
        assert_eq!(half::f16::from_f32(-1.5).to_json(), -1.5f32);
    }

    #[test]
    fn each_element_type_has_its_datatype_size() {
        for datatype in DataType::ALL {
            let size = with_element_type!(datatype, T => Some(T::SIZE), Bytes => None);
            assert_eq!(size, datatype.byte_size(), "{datatype}");
        }
    }

    #[test]
    fn little_endian_round_trip() {
        let mut out = Vec::new();
        (-2.5f32).write_le(&mut out);
        0x0102i16.write_le(&mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(f32::read_le(&out[..4]), -2.5);
        assert_eq!(i16::read_le(&out[4..]), 0x0102);
        let mut out = Vec::new();
        half::f16::from_f32(-2.5).write_le(&mut out);
        half::bf16::from_f32(3.0).write_le(&mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(half::f16::read_le(&out[..2]).to_f32(), -2.5);
        assert_eq!(half::bf16::read_le(&out[2..]).to_f32(), 3.0);
    }
}

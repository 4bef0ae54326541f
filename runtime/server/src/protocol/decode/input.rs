//! One entry of a request's `"inputs"`: its fields, its `data` decoded into the model input's
//! typed buffer as it is read, and the checks against the model.

use super::events::{describe, Event, Events};
use super::pending::Pending;
use super::{invalid, names, DecodeError};
use crate::protocol::Source;
use crate::strings::{Refused, LENGTH_PREFIX};
use crate::tensor::{DataType, Tensor, TensorData, TensorSpec};

/// Most dimensions an input's shape may have.
const MAX_RANK: usize = 32;
/// Elements reserved at once for an input with dimensions of any size: its buffer grows with
/// what arrives rather than with what the shape claims.
const OPEN_RESERVE: usize = 1 << 20;

/// An input whose data follows the JSON as raw bytes.
#[derive(Debug)]
pub struct Claim {
    /// The model input's index.
    pub index: usize,
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: DataType,
    pub bytes: usize,
    /// Elements the shape holds.
    pub count: usize,
}

/// The binary inputs, in the order the JSON lists them (the order of their bytes).
#[derive(Debug, Default)]
pub struct Claims(pub Vec<Claim>);

/// What one entry of `"inputs"` said.
#[derive(Debug, Default)]
pub struct InputFields {
    /// Where it is in `"inputs"`, to name it before its name is known.
    position: usize,
    name: Option<String>,
    shape: Option<Vec<usize>>,
    datatype: Option<String>,
    binary_size: Option<usize>,
    data: Option<Data>,
}

/// `data` as read: typed, or pending its datatype.
#[derive(Debug)]
enum Data {
    Typed(TensorData),
    Pending(Pending),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Typed(d) => d.len(),
            Data::Pending(p) => p.len(),
        }
    }

    /// Appends one element (a number, boolean or string); false if it is not a value of the
    /// buffer's type.
    fn push(&mut self, event: Event, text: &str) -> Result<bool, Refused> {
        Ok(match (self, event) {
            (Data::Typed(d), Event::Bool(b)) => d.push_json_bool(b),
            (Data::Typed(d), Event::Str) => d.push_json_string(text)?,
            (Data::Typed(d), _) => d.push_json_number(text),
            (Data::Pending(p), Event::Bool(b)) => {
                p.push_bool(b);
                true
            }
            (Data::Pending(p), Event::Str) => {
                p.push_string(text)?;
                true
            }
            (Data::Pending(p), _) => {
                p.push_number(text);
                true
            }
        })
    }
}

impl InputFields {
    /// Reads the entry after its `{`.
    pub async fn read<S: Source + Send>(
        events: &mut Events<S>,
        position: usize,
        specs: &[TensorSpec],
        json_bound: usize,
    ) -> Result<InputFields, DecodeError> {
        let mut fields = InputFields {
            position,
            ..InputFields::default()
        };
        while let Some(key) = super::next_key(events).await? {
            let twice = match key.as_str() {
                "name" => fields
                    .name
                    .replace(super::read_string(events, "an input's name").await?)
                    .is_some(),
                "datatype" => fields
                    .datatype
                    .replace(super::read_string(events, "an input's datatype").await?)
                    .is_some(),
                "shape" => {
                    let shape = fields.read_shape(events).await?;
                    fields.shape.replace(shape).is_some()
                }
                "parameters" => {
                    fields.read_parameters(events).await?;
                    false
                }
                "data" => {
                    if fields.data.is_some() {
                        true
                    } else {
                        fields.data = Some(fields.read_data(events, specs, json_bound).await?);
                        false
                    }
                }
                _ => {
                    events.skip_next().await?;
                    false
                }
            };
            if twice {
                return Err(invalid(format!(
                    "input {} has '{key}' twice",
                    fields.label()
                )));
            }
        }
        Ok(fields)
    }

    /// `'x'`, or `#2` before the name is known.
    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("'{name}'"),
            None => format!("#{} of \"inputs\"", self.position + 1),
        }
    }

    async fn read_shape<S: Source + Send>(
        &self,
        events: &mut Events<S>,
    ) -> Result<Vec<usize>, DecodeError> {
        let not_a_shape = |events: &Events<S>, event| {
            invalid(format!(
                "input {}: shape must be a list of non-negative integers, not {}",
                self.label(),
                describe(event, events.text())
            ))
        };
        match events.next().await? {
            Event::StartArray => {}
            other => return Err(not_a_shape(events, other)),
        }
        let mut shape = Vec::new();
        loop {
            match events.next().await? {
                Event::EndArray => return Ok(shape),
                Event::Number => {
                    let dim: u64 = events
                        .text()
                        .parse()
                        .map_err(|_| not_a_shape(events, Event::Number))?;
                    let dim = usize::try_from(dim).map_err(|_| {
                        invalid(format!("input {} has a dimension too large", self.label()))
                    })?;
                    if shape.len() == MAX_RANK {
                        return Err(invalid(format!(
                            "input {} has more than {MAX_RANK} dimensions",
                            self.label()
                        )));
                    }
                    shape.push(dim);
                }
                other => return Err(not_a_shape(events, other)),
            }
        }
    }

    /// The input's `parameters`: `binary_data_size` is read, the rest skipped.
    async fn read_parameters<S: Source + Send>(
        &mut self,
        events: &mut Events<S>,
    ) -> Result<(), DecodeError> {
        let what = format!("input {}: parameters", self.label());
        events.expect(Event::StartObject, &what).await?;
        while let Some(key) = super::next_key(events).await? {
            let value = events.next().await?;
            if key == "binary_data_size" {
                let size = (value == Event::Number)
                    .then(|| events.text().parse::<u64>().ok())
                    .flatten()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "input {}: binary_data_size must be a byte count",
                            self.label()
                        ))
                    })?;
                self.binary_size = Some(size);
            }
            events.skip_value(value).await?;
        }
        Ok(())
    }

    /// The model input this entry names, if its name has been read.
    fn spec<'s>(
        &self,
        specs: &'s [TensorSpec],
    ) -> Result<Option<(usize, &'s TensorSpec)>, DecodeError> {
        let Some(name) = &self.name else {
            return Ok(None);
        };
        specs
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == *name)
            .map(Some)
            .ok_or_else(|| {
                invalid(format!(
                    "unknown input '{name}'; the model's inputs are {}",
                    names(specs)
                ))
            })
    }

    fn datatype(&self) -> Result<Option<DataType>, DecodeError> {
        self.datatype
            .as_deref()
            .map(|name| {
                DataType::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
                    invalid(format!(
                        "input {} has datatype '{name}', which this server does not support (supported: {known:?})",
                        self.label()
                    ))
                })
            })
            .transpose()
    }

    /// The element count of `shape`, checked against the spec when there is one.
    fn count(&self, shape: &[usize], spec: Option<&TensorSpec>) -> Result<usize, DecodeError> {
        if let Some(why) = spec.and_then(|s| s.shape_mismatch(shape)) {
            return Err(invalid(why));
        }
        shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(format!("input {} has too many elements", self.label())))
    }

    /// `data`, read element by element into the buffer of the model input's type. Which input
    /// and how many elements it may have come from the fields read before `data` (clients
    /// send `name`, `shape` and `datatype` first); failing those, from the model.
    async fn read_data<S: Source + Send>(
        &self,
        events: &mut Events<S>,
        specs: &[TensorSpec],
        json_bound: usize,
    ) -> Result<Data, DecodeError> {
        let spec = self.spec(specs)?.map(|(_, s)| s);
        let datatype = match (self.datatype()?, spec) {
            (Some(d), _) => Some(d),
            (None, Some(s)) => Some(s.datatype),
            (None, None) => sole_datatype(specs),
        };
        // Each JSON element takes at least a digit and a separator (a string, two quotes).
        let most = json_bound / 2;
        let (limit, reserve, needs) = match (&self.shape, spec) {
            (Some(shape), _) => {
                let count = self.count(shape, spec)?;
                if count > most {
                    return Err(invalid(format!(
                        "input {} has shape {shape:?} ({count} elements), more than a {json_bound}-byte JSON body can hold",
                        self.label()
                    )));
                }
                let frozen = spec.is_some_and(|s| s.shape.iter().all(|&d| d >= 0));
                let reserve = if frozen {
                    count
                } else {
                    count.min(OPEN_RESERVE)
                };
                (count, reserve, format!("shape {shape:?} needs {count}"))
            }
            (None, _) => {
                let candidates: Vec<&TensorSpec> = match (spec, datatype) {
                    (Some(s), _) => vec![s],
                    (None, Some(d)) => specs.iter().filter(|s| s.datatype == d).collect(),
                    (None, None) => specs.iter().collect(),
                };
                match candidates
                    .iter()
                    .map(|s| frozen_count(s))
                    .collect::<Option<Vec<_>>>()
                {
                    Some(counts) => {
                        let largest = counts.into_iter().max().unwrap_or(0);
                        let reserve = if spec.is_some() { largest.min(most) } else { 0 };
                        (
                            largest,
                            reserve,
                            format!("the model's input holds {largest}"),
                        )
                    }
                    None => (
                        most,
                        0,
                        format!("a {json_bound}-byte JSON body holds {most}"),
                    ),
                }
            }
        };
        let mut data = match datatype {
            Some(d) => Data::Typed(TensorData::with_capacity(d, reserve)),
            None => Data::Pending(Pending::default()),
        };
        let mut depth = 0usize;
        let mut event = events.next().await?;
        loop {
            match event {
                Event::StartArray => depth += 1,
                Event::EndArray => depth -= 1,
                Event::Number | Event::Bool(_) | Event::Str => {
                    if data.len() == limit {
                        return Err(invalid(format!(
                            "input {} has too many elements in 'data': {} elements or more, {needs}",
                            self.label(),
                            limit + 1
                        )));
                    }
                    match data.push(event, events.text()) {
                        Ok(true) => {}
                        Ok(false) => {
                            let what = describe(event, events.text());
                            return Err(self.not_an_element(data.len(), &what, datatype));
                        }
                        Err(why) => {
                            return Err(invalid(format!(
                                "input {}: element {} {}",
                                self.label(),
                                data.len(),
                                why.reason()
                            )));
                        }
                    }
                }
                Event::StartObject | Event::Null => {
                    let what = describe(event, events.text());
                    match &mut data {
                        // Said once the datatype is known, after what is wrong with that.
                        Data::Pending(p) => {
                            p.push_unreadable(what);
                            if event == Event::StartObject {
                                events.skip_value(event).await?;
                            }
                        }
                        Data::Typed(_) => {
                            return Err(self.not_an_element(data.len(), &what, datatype));
                        }
                    }
                }
                other => {
                    let what = describe(other, events.text());
                    return Err(self.not_an_element(data.len(), &what, datatype));
                }
            }
            if depth == 0 {
                return Ok(data);
            }
            event = events.next().await?;
        }
    }

    fn not_an_element(&self, index: usize, what: &str, datatype: Option<DataType>) -> DecodeError {
        let wanted = datatype.map_or("number, boolean or string".to_string(), |d| {
            format!("{d} value")
        });
        invalid(format!(
            "input {}: element {index} is {what}, not a {wanted}",
            self.label()
        ))
    }

    /// Checks the whole entry against the model and puts it in its place: a decoded tensor in
    /// `decoded`, or a claim on the binary data that follows the JSON.
    pub fn place(
        self,
        specs: &[TensorSpec],
        decoded: &mut [Option<Tensor>],
        claims: &mut Claims,
    ) -> Result<(), DecodeError> {
        let Some((index, spec)) = self.spec(specs)? else {
            return Err(invalid(format!("input {} has no 'name'", self.label())));
        };
        let name = spec.name.clone();
        if decoded[index].is_some() || claims.0.iter().any(|c| c.index == index) {
            return Err(invalid(format!("input '{name}' is given twice")));
        }
        let datatype = self
            .datatype()?
            .ok_or_else(|| invalid(format!("input '{name}' has no 'datatype'")))?;
        if datatype != spec.datatype {
            return Err(invalid(format!(
                "input '{name}' has datatype {datatype}, the model expects {}",
                spec.datatype
            )));
        }
        let shape = self
            .shape
            .clone()
            .ok_or_else(|| invalid(format!("input '{name}' has no 'shape'")))?;
        let count = self.count(&shape, Some(spec))?;
        match (self.binary_size, self.data) {
            (Some(_), Some(_)) => Err(invalid(format!(
                "input '{name}' has both 'data' and parameters.binary_data_size; send one"
            ))),
            (Some(bytes), None) => {
                match datatype.byte_size() {
                    Some(size) => {
                        let want = count.saturating_mul(size);
                        if bytes != want {
                            return Err(invalid(format!(
                                "input '{name}' has {bytes} bytes of binary data, shape {shape:?} of {datatype} needs {want}"
                            )));
                        }
                    }
                    None => {
                        // Every element has its length before it, so the count is bounded by
                        // the bytes, and they by the body.
                        let least = count.saturating_mul(LENGTH_PREFIX);
                        if bytes < least {
                            return Err(invalid(format!(
                                "input '{name}' has {bytes} bytes of binary data, shape {shape:?} of BYTES needs at least {least} (a 4-byte length per element)"
                            )));
                        }
                    }
                }
                claims.0.push(Claim {
                    index,
                    name,
                    shape,
                    datatype,
                    bytes,
                    count,
                });
                Ok(())
            }
            (None, None) => Err(invalid(format!(
                "input '{name}' has neither 'data' nor parameters.binary_data_size"
            ))),
            (None, Some(data)) => {
                let data = match data {
                    Data::Typed(data) => data,
                    Data::Pending(pending) => {
                        pending.convert(datatype).map_err(|(index, what)| {
                            invalid(format!(
                                "input '{name}': element {index} is {what}, not a {datatype} value"
                            ))
                        })?
                    }
                };
                if data.datatype() != datatype {
                    // Read before 'datatype' as the model's type, which 'datatype' then contradicted.
                    return Err(invalid(format!(
                        "input '{name}' has datatype {datatype}, the model expects {}",
                        spec.datatype
                    )));
                }
                if data.len() != count {
                    return Err(invalid(format!(
                        "input '{name}' has {} elements in 'data', shape {shape:?} needs {count}",
                        data.len()
                    )));
                }
                decoded[index] = Some(Tensor { name, shape, data });
                Ok(())
            }
        }
    }
}

/// The element count of a spec whose every dimension is fixed.
fn frozen_count(spec: &TensorSpec) -> Option<usize> {
    spec.shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// The datatype every input of the model shares, if they share one.
fn sole_datatype(specs: &[TensorSpec]) -> Option<DataType> {
    let first = specs.first()?.datatype;
    specs.iter().all(|s| s.datatype == first).then_some(first)
}

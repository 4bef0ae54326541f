//! JSON events over a [`Source`], as its bytes arrive: json-event-parser's push parser fed from
//! one fixed buffer, so decoding holds no more than that buffer and the nesting stack, however
//! large the body.

use json_event_parser::{JsonEvent, LowLevelJsonParser};

use super::{invalid, DecodeError};
use crate::protocol::Source;

/// The longest JSON token (a string, a number) a request may hold; it must fit the buffer.
pub const MAX_TOKEN: usize = 32 << 10;
/// The deepest nesting of arrays and objects: a request's own levels plus a tensor's rank.
const MAX_DEPTH: usize = 64;

/// One JSON event; for [`Key`](Event::Key), [`Str`](Event::Str) and
/// [`Number`](Event::Number) the text is [`Events::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    StartObject,
    EndObject,
    StartArray,
    EndArray,
    Key,
    Str,
    Number,
    Bool(bool),
    Null,
    Eof,
}

pub struct Events<S> {
    source: S,
    parser: LowLevelJsonParser,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    ended: bool,
    text: String,
}

impl<S: Source + Send> Events<S> {
    pub fn new(source: S) -> Self {
        Events {
            source,
            parser: LowLevelJsonParser::new().with_max_stack_size(MAX_DEPTH),
            buf: vec![0; MAX_TOKEN].into_boxed_slice(),
            start: 0,
            end: 0,
            ended: false,
            text: String::new(),
        }
    }

    /// The text of the last key, string or number.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_source(self) -> S {
        self.source
    }

    pub async fn next(&mut self) -> Result<Event, DecodeError> {
        loop {
            let result = self
                .parser
                .parse_next(&self.buf[self.start..self.end], self.ended);
            self.start += result.consumed_bytes;
            if let Some(event) = result.event {
                let event = event.map_err(|e| {
                    invalid(format!(
                        "request is not a valid inference request: invalid JSON: {e}"
                    ))
                })?;
                self.text.clear();
                return Ok(match event {
                    JsonEvent::StartObject => Event::StartObject,
                    JsonEvent::EndObject => Event::EndObject,
                    JsonEvent::StartArray => Event::StartArray,
                    JsonEvent::EndArray => Event::EndArray,
                    JsonEvent::ObjectKey(key) => {
                        self.text.push_str(&key);
                        Event::Key
                    }
                    JsonEvent::String(s) => {
                        self.text.push_str(&s);
                        Event::Str
                    }
                    JsonEvent::Number(n) => {
                        self.text.push_str(&n);
                        Event::Number
                    }
                    JsonEvent::Boolean(b) => Event::Bool(b),
                    JsonEvent::Null => Event::Null,
                    JsonEvent::Eof => Event::Eof,
                });
            }
            self.refill().await?;
        }
    }

    /// Moves the unparsed rest to the front and reads more behind it.
    async fn refill(&mut self) -> Result<(), DecodeError> {
        if self.ended {
            // The parser always ends with an event once told the input ended.
            return Err(invalid(
                "request is not a valid inference request: invalid JSON: it ends too early",
            ));
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            return Err(invalid(format!(
                "request has a JSON string or number longer than {MAX_TOKEN} bytes"
            )));
        }
        let n = self
            .source
            .read(&mut self.buf[self.end..])
            .await
            .map_err(DecodeError::Body)?;
        self.end += n;
        self.ended = n == 0;
        Ok(())
    }

    /// Reads and skips the next value, however nested.
    pub async fn skip_next(&mut self) -> Result<(), DecodeError> {
        let first = self.next().await?;
        self.skip_value(first).await
    }

    /// The error for `what` being `event` where it must be `kind` ("a list").
    pub fn unexpected(&self, event: Event, what: &str, kind: &str) -> DecodeError {
        invalid(format!(
            "{what} must be {kind}, not {}",
            describe(event, &self.text)
        ))
    }

    /// Reads the opening of `what`, which must be an object or a list (`want`).
    pub async fn expect(&mut self, want: Event, what: &str) -> Result<(), DecodeError> {
        let kind = if want == Event::StartArray {
            "a list"
        } else {
            "an object"
        };
        match self.next().await? {
            event if event == want => Ok(()),
            other => Err(self.unexpected(other, what, kind)),
        }
    }

    /// Skips the value that starts with `first` (already read), however nested.
    pub async fn skip_value(&mut self, first: Event) -> Result<(), DecodeError> {
        let mut depth = match first {
            Event::StartObject | Event::StartArray => 1usize,
            _ => return Ok(()),
        };
        while depth > 0 {
            match self.next().await? {
                Event::StartObject | Event::StartArray => depth += 1,
                Event::EndObject | Event::EndArray => depth -= 1,
                Event::Eof => {
                    return Err(invalid(
                        "request is not a valid inference request: invalid JSON: it ends too early",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// How an event reads in an error message.
pub fn describe(event: Event, text: &str) -> String {
    match event {
        Event::StartObject => "an object".into(),
        Event::StartArray => "an array".into(),
        Event::Str => {
            let shown: String = text.chars().take(40).collect();
            format!("the string {shown:?}")
        }
        Event::Number => text.chars().take(40).collect(),
        Event::Bool(b) => b.to_string(),
        Event::Null => "null".into(),
        Event::Key | Event::EndObject | Event::EndArray | Event::Eof => "nothing".into(),
    }
}

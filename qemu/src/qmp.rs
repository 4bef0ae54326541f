//! A minimal QMP client. Hand-written because the harness needs four commands over a unix
//! socket and QMP is line-delimited JSON; the `qapi` crate would add a large generated API.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect, read the greeting and leave capabilities negotiation mode. The greeting only
    /// arrives once QEMU has finished setting up the machine (devices, netdevs, forwards).
    pub fn connect(path: &Path) -> Result<Qmp> {
        let stream = UnixStream::connect(path)
            .map_err(|e| Error::Qmp(format!("cannot connect to {}: {e}", path.display())))?;
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| Error::Qmp(e.to_string()))?;
        let writer = stream.try_clone().map_err(|e| Error::Qmp(e.to_string()))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Qmp(format!("unexpected greeting: {greeting}")));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Run a command and return its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut request = json!({ "execute": command });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| Error::Qmp(format!("sending {command}: {e}")))?;
        loop {
            let message = self.read_message()?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                return Err(Error::Qmp(format!("{command} failed: {error}")));
            }
            // Anything else is an asynchronous event; skip it.
        }
    }

    /// Press ctrl-alt-delete on the guest's keyboard.
    pub fn send_ctrl_alt_delete(&mut self) -> Result<()> {
        let keys: Vec<Value> = ["ctrl", "alt", "delete"]
            .iter()
            .map(|k| json!({ "type": "qcode", "data": k }))
            .collect();
        self.execute("send-key", Some(json!({ "keys": keys })))
            .map(drop)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(Error::Qmp("QEMU closed the QMP socket".into())),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|e| Error::Qmp(format!("bad QMP message {line:?}: {e}"))),
            Err(e) => Err(Error::Qmp(format!("reading from QMP: {e}"))),
        }
    }
}

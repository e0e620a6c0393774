//! Online backup: the file format ([`Writer`], [`verify`]), taking one from
//! the node's database ([`take`]), the `taskraft backup` client
//! ([`client`]) and `taskraft restore` ([`restore`]).
//!
//! A backup is one gzip stream of UTF-8 lines, each a JSON value:
//!
//! ```text
//! {"header":{"format":1,"cluster_id":…,"node_id":…,"applied_index":…,"applied_term":…,"last_seq":…,"created_at":…,"taskraft_version":…}}
//! {"part":"events"}
//! <one line per row>
//! {"trailer":{"part":"events","rows":N,"sha256":"<hex of the part's row lines>"}}
//! … the same for idempotency_keys, users, sessions, api_tokens, membership …
//! {"end":{"parts":6,"sha256":"<hex of every line before this one>"}}
//! ```
//!
//! Rows are encoded as the catch-up between nodes encodes them
//! ([`crate::db::catchup::EventRow`], [`crate::db::rows::KeyRow`], the
//! account rows of [`crate::accounts`]): an event's payload is the text the
//! event table holds, byte for byte. Every line ends with `\n`, and the
//! checksums cover those newlines too.

pub mod client;
pub mod restore;
pub mod take;

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{Session, Token, User};
use crate::db::catchup::EventRow;
use crate::db::rows::KeyRow;
use crate::time::Timestamp;

/// The format this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// The parts of a backup, in the order they come.
pub const PARTS: [&str; 6] = [
    "events",
    "idempotency_keys",
    "users",
    "sessions",
    "api_tokens",
    "membership",
];

/// The first line: where and when the backup was taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u64,
    pub cluster_id: String,
    /// The node that took it.
    pub node_id: u64,
    /// Every row is as of this applied log entry.
    pub applied_index: u64,
    pub applied_term: u64,
    /// The backup holds exactly the events `1..=last_seq`.
    pub last_seq: u64,
    pub created_at: Timestamp,
    pub taskraft_version: String,
}

/// A member of the cluster, as the node taking the backup knew it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: u64,
    /// `voter` or `learner`.
    pub role: String,
    pub raft_addr: Option<String>,
    pub url: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    part: String,
    rows: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    parts: u64,
    sha256: String,
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a backup into `W`, compressed, part by part. With a `Vec<u8>`
/// the compressed bytes so far can be taken out ([`Writer::take`]) and
/// sent while the rest is still being written.
pub struct Writer<W: Write> {
    out: GzEncoder<W>,
    all: Sha256,
    /// The open part: its name, hash and rows.
    part: Option<(&'static str, Sha256, u64)>,
    parts: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Writer<W>> {
        let mut writer = Writer {
            out: GzEncoder::new(out, Compression::default()),
            all: Sha256::new(),
            part: None,
            parts: 0,
        };
        writer.control(&serde_json::json!({ "header": header }))?;
        Ok(writer)
    }

    fn line(&mut self, mut text: Vec<u8>) -> io::Result<()> {
        text.push(b'\n');
        self.all.update(&text);
        self.out.write_all(&text)
    }

    fn control(&mut self, value: &serde_json::Value) -> io::Result<()> {
        self.line(serde_json::to_vec(value)?)
    }

    /// Starts the next part; parts must come in [`PARTS`] order.
    pub fn begin(&mut self, part: &'static str) -> io::Result<()> {
        let expected = PARTS.get(self.parts as usize).copied();
        if self.part.is_some() || expected != Some(part) {
            return Err(io::Error::other(format!(
                "part {part} out of order (expected {expected:?})"
            )));
        }
        self.control(&serde_json::json!({ "part": part }))?;
        self.part = Some((part, Sha256::new(), 0));
        Ok(())
    }

    /// One row of the open part.
    pub fn row<T: Serialize>(&mut self, row: &T) -> io::Result<()> {
        let mut text = serde_json::to_vec(row)?;
        let Some((_, hash, rows)) = &mut self.part else {
            return Err(io::Error::other("a row outside any part"));
        };
        text.push(b'\n');
        hash.update(&text);
        *rows += 1;
        self.all.update(&text);
        self.out.write_all(&text)
    }

    /// Closes the open part with its trailer.
    pub fn end_part(&mut self) -> io::Result<()> {
        let (part, hash, rows) = self
            .part
            .take()
            .ok_or_else(|| io::Error::other("no part to end"))?;
        self.parts += 1;
        let trailer = Trailer {
            part: part.into(),
            rows,
            sha256: hex(hash.finalize()),
        };
        self.control(&serde_json::json!({ "trailer": trailer }))
    }

    /// The end record, and the end of the gzip stream.
    pub fn finish(mut self) -> io::Result<W> {
        if self.part.is_some() || self.parts != PARTS.len() as u64 {
            return Err(io::Error::other("a backup ends after all its parts"));
        }
        let end = End {
            parts: self.parts,
            sha256: hex(self.all.clone().finalize()),
        };
        let mut text = serde_json::to_vec(&serde_json::json!({ "end": end }))?;
        text.push(b'\n');
        self.out.write_all(&text)?;
        self.out.finish()
    }
}

impl Writer<Vec<u8>> {
    /// The compressed bytes written so far and not yet taken.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.out.get_mut())
    }
}

/// Why a file is not a good backup.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a taskraft backup: {0}")]
    NotBackup(String),
    #[error("wrong format version {found}: this taskraft reads version {FORMAT_VERSION}")]
    Version { found: String },
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("corrupted: {0}")]
    Corrupted(String),
    #[error("cannot read it: {0}")]
    Io(String),
}

/// What a good backup holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub header: Header,
    /// Each part and its row count, in order.
    pub parts: Vec<(String, u64)>,
    /// The end record's checksum.
    pub sha256: String,
}

/// Reads a whole backup, checking every part's rows (each must decode as
/// its part's row), count and checksum, the events `1..=last_seq` in
/// order, and the end record; `on_row` sees each row line (without its
/// newline) as it goes. Nothing is kept but the current line.
pub fn verify(
    input: impl Read,
    mut on_row: impl FnMut(&str, &[u8]) -> Result<(), String>,
) -> Result<Summary, VerifyError> {
    let mut lines = Lines {
        input: BufReader::with_capacity(1 << 16, GzDecoder::new(input)),
        line: Vec::new(),
        number: 0,
    };
    let mut all = Sha256::new();
    // The header: is this a backup at all, and of which version?
    if !lines.next()? {
        return Err(VerifyError::NotBackup("the file is empty".into()));
    }
    let first: serde_json::Value = serde_json::from_slice(lines.text())
        .map_err(|_| VerifyError::NotBackup("its first line is not a header".into()))?;
    let Some(header) = first.get("header") else {
        return Err(VerifyError::NotBackup(
            "its first line is not a header".into(),
        ));
    };
    match header.get("format").and_then(serde_json::Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(VerifyError::Version {
                found: other.to_string(),
            })
        }
        None => {
            return Err(VerifyError::Version {
                found: header
                    .get("format")
                    .map_or("(none)".into(), |v| v.to_string()),
            })
        }
    }
    let header: Header = serde_json::from_value(header.clone())
        .map_err(|e| VerifyError::Corrupted(format!("header: {e}")))?;
    all.update(lines.with_newline());
    let mut parts = Vec::new();
    for part in PARTS {
        let truncated = |rows| {
            VerifyError::Truncated(format!(
                "the file ends inside part {part} after {rows} rows (no trailer, no end record)"
            ))
        };
        if !lines.next()? {
            return Err(VerifyError::Truncated(format!(
                "the file ends before part {part} (no end record)"
            )));
        }
        let start: serde_json::Value = serde_json::from_slice(lines.text())
            .map_err(|_| VerifyError::Corrupted(format!("line {}: not JSON", lines.number)))?;
        if start.get("part").and_then(|p| p.as_str()) != Some(part) {
            return Err(VerifyError::Corrupted(format!(
                "line {}: expected the start of part {part}",
                lines.number
            )));
        }
        all.update(lines.with_newline());
        let mut hash = Sha256::new();
        let mut rows = 0u64;
        let mut last_seq = 0u64;
        loop {
            if !lines.next()? {
                return Err(truncated(rows));
            }
            if lines.text().starts_with(b"{\"trailer\":") {
                break;
            }
            let text = lines.text();
            check_row(part, text, &mut last_seq).map_err(|e| {
                VerifyError::Corrupted(format!("part {part}, row {}: {e}", rows + 1))
            })?;
            on_row(part, text).map_err(|e| {
                VerifyError::Corrupted(format!("part {part}, row {}: {e}", rows + 1))
            })?;
            let line = lines.with_newline();
            hash.update(line);
            all.update(line);
            rows += 1;
        }
        #[derive(Deserialize)]
        struct Record {
            trailer: Trailer,
        }
        let record: Record = serde_json::from_slice(lines.text()).map_err(|e| {
            VerifyError::Corrupted(format!("part {part}: its trailer is unreadable: {e}"))
        })?;
        let trailer = record.trailer;
        if trailer.part != part {
            return Err(VerifyError::Corrupted(format!(
                "part {part} ends with the trailer of part {}",
                trailer.part
            )));
        }
        if trailer.rows != rows {
            return Err(VerifyError::Corrupted(format!(
                "part {part} has {rows} rows, its trailer says {}",
                trailer.rows
            )));
        }
        if trailer.sha256 != hex(hash.finalize()) {
            return Err(VerifyError::Corrupted(format!(
                "part {part}: its checksum does not match its rows"
            )));
        }
        if part == "events" && (rows != header.last_seq || last_seq != header.last_seq) {
            return Err(VerifyError::Corrupted(format!(
                "part events holds {rows} events up to seq {last_seq}, the header says 1..={}",
                header.last_seq
            )));
        }
        all.update(lines.with_newline());
        parts.push((part.to_string(), rows));
    }
    if !lines.next()? {
        return Err(VerifyError::Truncated(
            "the file ends after its last part, without the end record".into(),
        ));
    }
    #[derive(Deserialize)]
    struct Record {
        end: End,
    }
    let end = serde_json::from_slice::<Record>(lines.text())
        .map_err(|e| VerifyError::Corrupted(format!("the end record is unreadable: {e}")))?
        .end;
    let sha256 = hex(all.finalize());
    if end.parts != PARTS.len() as u64 || end.sha256 != sha256 {
        return Err(VerifyError::Corrupted(
            "the end record's checksum does not match the file".into(),
        ));
    }
    if lines.next()? {
        return Err(VerifyError::Corrupted(format!(
            "line {}: more after the end record",
            lines.number
        )));
    }
    Ok(Summary {
        header,
        parts,
        sha256,
    })
}

/// A row decodes as its part's row; events come as seq 1, 2, 3…
fn check_row(part: &str, text: &[u8], last_seq: &mut u64) -> Result<(), String> {
    fn decode<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(text).map_err(|e| e.to_string())
    }
    match part {
        "events" => {
            let event: EventRow = decode(text)?;
            if event.seq != *last_seq + 1 {
                return Err(format!(
                    "event seq {} follows seq {} (a gap or a repeat)",
                    event.seq, last_seq
                ));
            }
            *last_seq = event.seq;
        }
        "idempotency_keys" => drop(decode::<KeyRow>(text)?),
        "users" => drop(decode::<User>(text)?),
        "sessions" => drop(decode::<Session>(text)?),
        "api_tokens" => drop(decode::<Token>(text)?),
        "membership" => drop(decode::<Member>(text)?),
        other => return Err(format!("unknown part {other}")),
    }
    Ok(())
}

struct Lines<R> {
    input: BufReader<GzDecoder<R>>,
    line: Vec<u8>,
    number: u64,
}

impl<R: Read> Lines<R> {
    /// The next whole line; `false` at a clean end of the file.
    fn next(&mut self) -> Result<bool, VerifyError> {
        self.line.clear();
        let read = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => VerifyError::Truncated(format!(
                    "the compressed stream ends early, after line {}",
                    self.number
                )),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
                    VerifyError::Corrupted(format!(
                        "the compressed stream is damaged after line {}: {e}",
                        self.number
                    ))
                }
                _ => VerifyError::Io(e.to_string()),
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.number += 1;
        if self.line.last() != Some(&b'\n') {
            return Err(VerifyError::Truncated(format!(
                "line {} is cut short",
                self.number
            )));
        }
        Ok(true)
    }

    fn text(&self) -> &[u8] {
        &self.line[..self.line.len() - 1]
    }

    fn with_newline(&self) -> &[u8] {
        &self.line
    }
}

#[cfg(test)]
mod tests;

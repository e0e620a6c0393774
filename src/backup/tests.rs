use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use uuid::Uuid;

use super::*;
use crate::db::rows::KeyRow;
use crate::task::{EventKind, TaskId};

fn header(last_seq: u64) -> Header {
    Header {
        format: FORMAT_VERSION,
        cluster_id: "c-1.abc".into(),
        node_id: 2,
        applied_index: 40,
        applied_term: 3,
        last_seq,
        created_at: Timestamp(1_700_000_000_000),
        taskraft_version: "0.1.0".into(),
    }
}

fn event(seq: u64) -> EventRow {
    EventRow {
        seq,
        raft_index: 10 + seq,
        ordinal: 0,
        term: 3,
        event_id: Uuid::from_u128(seq as u128),
        task_id: Some(TaskId(Uuid::from_u128(1000 + seq as u128))),
        kind: EventKind::TaskCreated,
        payload: format!("{{\"task\":{{\"title\":\"t{seq} é\"}},\"changes\":{{}}}}"),
        at: Timestamp(1_700_000_000_000 + seq as i64),
        request_id: Uuid::from_u128(7),
    }
}

/// A backup of `events` events (seqs `seqs`), one key, one member.
fn backup_of(header: &Header, seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), header).unwrap();
    let mut out = Vec::new();
    writer.begin("events").unwrap();
    for seq in seqs {
        writer.row(&event(seq)).unwrap();
        // Taking the compressed bytes as they come makes the same file.
        out.extend(writer.take());
    }
    writer.end_part().unwrap();
    writer.begin("idempotency_keys").unwrap();
    writer
        .row(&KeyRow {
            key: "k-1".into(),
            fingerprint: "0123456789abcdef".into(),
            raft_index: 11,
            outcome: "{\"created\":1}".into(),
            created_at: crate::time::Timestamp(1_796_400_000_000),
        })
        .unwrap();
    writer.end_part().unwrap();
    for part in ["users", "sessions", "api_tokens"] {
        writer.begin(part).unwrap();
        writer.end_part().unwrap();
    }
    writer.begin("membership").unwrap();
    writer
        .row(&Member {
            id: 1,
            role: "voter".into(),
            raft_addr: Some("127.0.0.1:9001".into()),
            url: Some("http://127.0.0.1:8001".into()),
        })
        .unwrap();
    writer.end_part().unwrap();
    out.extend(writer.finish().unwrap());
    out
}

fn plain(file: &[u8]) -> String {
    let mut text = String::new();
    GzDecoder::new(file).read_to_string(&mut text).unwrap();
    text
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_backup_reads_back_as_written() {
    let file = backup_of(&header(300), 1..=300);
    let mut seen = Vec::new();
    let summary = verify(&file[..], |part, row| {
        if part == "events" {
            seen.push(serde_json::from_slice::<EventRow>(row).unwrap());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(summary.header, header(300));
    assert_eq!(
        summary.parts,
        vec![
            ("events".to_string(), 300),
            ("idempotency_keys".to_string(), 1),
            ("users".to_string(), 0),
            ("sessions".to_string(), 0),
            ("api_tokens".to_string(), 0),
            ("membership".to_string(), 1),
        ]
    );
    assert_eq!(seen, (1..=300).map(event).collect::<Vec<_>>());
    // The documented line format.
    let text = plain(&file);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("{\"header\":{"), "{}", lines[0]);
    assert_eq!(lines[1], "{\"part\":\"events\"}");
    assert!(lines[302].starts_with("{\"trailer\":{\"part\":\"events\",\"rows\":300,"));
    assert!(lines.last().unwrap().starts_with("{\"end\":{\"parts\":6,"));
    assert_eq!(summary.sha256.len(), 64);
}

#[test]
fn a_truncated_file_is_refused_as_truncated() {
    let file = backup_of(&header(300), 1..=300);
    for cut in [file.len() - 1, file.len() - 9, file.len() / 2, 20] {
        let error = verify(&file[..cut], |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(error, VerifyError::Truncated(_)),
            "cut at {cut}: {error}"
        );
        assert!(error.to_string().starts_with("truncated: "), "{error}");
    }
    // Cut at a line boundary of the content, properly compressed: no end.
    let text = plain(&file);
    let without_end = &text[..text.trim_end().rfind('\n').unwrap() + 1];
    let error = verify(&gzip(without_end)[..], |_, _| Ok(())).unwrap_err();
    assert!(
        error.to_string().contains("without the end record"),
        "{error}"
    );
    // An empty file: nothing of a backup, cut before its first byte.
    assert!(matches!(
        verify(&[][..], |_, _| Ok(())).unwrap_err(),
        VerifyError::NotBackup(_) | VerifyError::Truncated(_)
    ));
}

#[test]
fn a_flipped_byte_anywhere_in_the_data_is_refused() {
    let file = backup_of(&header(50), 1..=50);
    // Past the gzip header (whose mtime gzip does not check) and before
    // its 8-byte trailer, which are checked.
    for at in (10..file.len()).step_by(7) {
        let mut bad = file.clone();
        bad[at] ^= 0x20;
        let error = verify(&bad[..], |_, _| Ok(()));
        assert!(error.is_err(), "a flip at byte {at} went unseen");
    }
}

#[test]
fn an_edited_row_is_named_by_its_part_checksum() {
    let text = plain(&backup_of(&header(5), 1..=5));
    let edited = text.replacen("t3 é", "t3 e", 1);
    assert_ne!(edited, text);
    let error = verify(&gzip(&edited)[..], |_, _| Ok(())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "corrupted: part events: its checksum does not match its rows"
    );
    // A row dropped with its count fixed: the checksum still catches it.
    let dropped: String = text
        .lines()
        .filter(|l| !l.starts_with("{\"seq\":5,"))
        .map(|l| format!("{}\n", l.replace("\"rows\":5,", "\"rows\":4,")))
        .collect();
    let error = verify(&gzip(&dropped)[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(error, VerifyError::Corrupted(_)), "{error}");
}

#[test]
fn events_must_be_exactly_one_to_last_seq() {
    // Well-formed files, checksums right, but not the events the header says.
    let gap = backup_of(&header(3), [1, 2, 4]);
    let error = verify(&gap[..], |_, _| Ok(())).unwrap_err();
    assert!(
        error.to_string().contains("event seq 4 follows seq 2"),
        "{error}"
    );
    let short = backup_of(&header(4), 1..=3);
    let error = verify(&short[..], |_, _| Ok(())).unwrap_err();
    assert!(
        error.to_string().contains("the header says 1..=4"),
        "{error}"
    );
}

#[test]
fn another_format_version_is_named() {
    let text = plain(&backup_of(&header(2), 1..=2)).replacen("\"format\":1,", "\"format\":7,", 1);
    let error = verify(&gzip(&text)[..], |_, _| Ok(())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "wrong format version 7: this taskraft reads version 1"
    );
    let error = verify(&gzip("hello\n")[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(error, VerifyError::NotBackup(_)), "{error}");
    // Not gzip at all.
    let error = verify(&b"{\"header\":{}}\n"[..], |_, _| Ok(())).unwrap_err();
    assert!(matches!(error, VerifyError::Corrupted(_)), "{error}");
}

#[test]
fn the_writer_keeps_the_part_order() {
    let mut writer = Writer::new(Vec::new(), &header(0)).unwrap();
    assert!(writer.begin("users").is_err());
    assert!(writer.row(&1).is_err(), "a row outside a part");
    writer.begin("events").unwrap();
    writer.end_part().unwrap();
    assert!(writer.finish().is_err(), "parts missing");
}

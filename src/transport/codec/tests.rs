use std::time::Duration;

use super::*;

fn append(from: u64, to: u64, entries: usize) -> PeerMessage {
    PeerMessage::sample_append(from, to, entries)
}

const ANY: &[u8] = &[KIND_HELLO, KIND_RAFT, KIND_CHALLENGE, KIND_PING];

fn limits(wire: Wire, max_frame: usize, kinds: &'static [u8]) -> Limits {
    Limits {
        wire,
        max_frame,
        kinds,
        stall: Duration::from_millis(200),
    }
}

fn read_all(bytes: &[u8], limits: &Limits) -> Result<Vec<Frame>, CodecError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = bytes;
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        while let Some(frame) = read_frame(&mut reader, &mut buf, limits).await? {
            frames.push(frame);
        }
        Ok(frames)
    })
}

fn sample() -> Vec<Frame> {
    vec![
        Frame::Challenge(vec![7; 33]),
        Frame::Hello(Hello {
            node_id: 2,
            url: "http://127.0.0.1:8082".into(),
            cluster_id: Some("c1".into()),
            proof: Some("00ff".into()),
            wire: Some(WIRE_V2),
            version: None,
        }),
        Frame::Raft(append(2, 1, 3)),
        Frame::Ping,
        Frame::Raft(append(2, 1, 0)),
    ]
}

#[test]
fn frames_written_back_to_back_read_back_the_same_in_both_framings() {
    for wire in [Wire::V1, Wire::V2] {
        let frames = sample();
        let mut bytes = Vec::new();
        for frame in &frames {
            encode(frame, &mut bytes, wire);
        }
        assert_eq!(
            read_all(&bytes, &limits(wire, MAX_FRAME, ANY)).unwrap(),
            frames,
            "{wire:?}"
        );
    }
}

#[test]
fn a_stream_cut_inside_a_frame_is_an_error_not_a_clean_end() {
    let mut bytes = Vec::new();
    encode(&Frame::Raft(append(1, 2, 2)), &mut bytes, Wire::V2);
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        read_all(cut, &limits(Wire::V2, MAX_FRAME, ANY)),
        Err(CodecError::Io(_))
    ));
    assert_eq!(
        read_all(&[], &limits(Wire::V2, MAX_FRAME, ANY)).unwrap(),
        vec![],
        "no bytes at all is a clean end"
    );
}

#[test]
fn oversized_empty_and_unexpected_frames_are_refused_at_the_header() {
    let pre_auth = limits(Wire::V1, PRE_AUTH_MAX_FRAME, &[KIND_HELLO]);
    // The report's attack: a 5-byte header declaring 64 MiB, before any hello.
    let huge = [0x04, 0x00, 0x00, 0x00, 0x01];
    assert!(matches!(
        read_all(&huge, &pre_auth),
        Err(CodecError::TooLarge(0x0400_0000, PRE_AUTH_MAX_FRAME))
    ));
    let over = ((MAX_FRAME + 1) as u32).to_be_bytes();
    assert!(matches!(
        read_all(
            &[over[0], over[1], over[2], over[3], KIND_RAFT],
            &limits(Wire::V1, MAX_FRAME, ANY)
        ),
        Err(CodecError::TooLarge(..))
    ));
    assert!(matches!(
        read_all(&[0, 0, 0, 0, 1], &pre_auth),
        Err(CodecError::Empty)
    ));
    assert!(matches!(
        read_all(&[0, 0, 0, 1, 9], &limits(Wire::V1, MAX_FRAME, ANY)),
        Err(CodecError::UnexpectedKind(9))
    ));
    // A raft frame before the hello is refused before its body is read.
    let mut raft = Vec::new();
    encode(&Frame::Raft(append(1, 2, 1)), &mut raft, Wire::V1);
    assert!(matches!(
        read_all(&raft, &pre_auth),
        Err(CodecError::UnexpectedKind(KIND_RAFT))
    ));
    assert!(matches!(
        read_all(
            &[0, 0, 0, 3, KIND_RAFT, 0xff, 0xff],
            &limits(Wire::V1, MAX_FRAME, ANY)
        ),
        Err(CodecError::Raft(_))
    ));
}

#[test]
fn memory_follows_the_bytes_that_came_not_the_length_declared() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut bytes = vec![0x03, 0xff, 0xff, 0xff, KIND_RAFT];
    bytes.extend_from_slice(&[0u8; 1000]);
    let mut buf = Vec::new();
    let result = rt.block_on(read_frame(
        &mut &bytes[..],
        &mut buf,
        &limits(Wire::V1, MAX_FRAME, ANY),
    ));
    assert!(matches!(result, Err(CodecError::Io(_))), "{result:?}");
    assert!(
        buf.capacity() <= 2 * (1000 + READ_PIECE),
        "a 64 MiB declaration with 1,000 bytes behind it held {} bytes",
        buf.capacity()
    );
}

#[test]
fn v2_notices_a_stream_that_lost_bytes_in_the_middle() {
    let v2 = limits(Wire::V2, MAX_FRAME, &[KIND_RAFT, KIND_PING]);
    let mut frames = Vec::new();
    for i in 0..4 {
        encode(&Frame::Raft(append(1, 2, i + 1)), &mut frames, Wire::V2);
    }
    // Every cut point: the bytes after it resume at some later offset.
    let first = {
        let mut one = Vec::new();
        encode(&Frame::Raft(append(1, 2, 1)), &mut one, Wire::V2);
        one.len()
    };
    for lost_from in 1..first {
        for lost_to in [lost_from + 3, lost_from + 100, first + 7, first + 300] {
            let mut damaged = frames[..lost_from].to_vec();
            damaged.extend_from_slice(&frames[lost_to..]);
            let result = read_all(&damaged, &v2);
            assert!(
                result.is_err(),
                "bytes {lost_from}..{lost_to} lost, yet read as {:?}",
                result.map(|f| f.len())
            );
        }
    }
}

#[test]
fn v2_gives_up_on_a_frame_whose_rest_never_comes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut bytes = Vec::new();
        encode(&Frame::Raft(append(1, 2, 3)), &mut bytes, Wire::V2);
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        tokio::io::AsyncWriteExt::write_all(&mut client, &bytes[..bytes.len() / 2])
            .await
            .unwrap();
        let mut buf = Vec::new();
        let result = read_frame(
            &mut server,
            &mut buf,
            &limits(Wire::V2, MAX_FRAME, &[KIND_RAFT]),
        )
        .await;
        assert!(matches!(result, Err(CodecError::Stalled(_))), "{result:?}");
        drop(client);
    });
}

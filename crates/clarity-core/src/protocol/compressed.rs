//! Compressed frames: a WebSocket binary message holding one client text frame, compressed.
//!
//! Rules:
//! - The format is told by its first bytes: `1f 8b` is gzip (RFC 1952); anything else is raw
//!   DEFLATE (RFC 1951, no zlib header: what `CompressionStream("deflate-raw")`,
//!   `java.util.zip.Deflater(level, true)` and Apple's `COMPRESSION_ZLIB` write). No raw DEFLATE
//!   stream starts with `1f` (its block type bits would be the reserved `11`), so the two never
//!   collide.
//! - Each message is inflated on its own (no shared dictionary between messages), so a
//!   session holds no compression state between frames.
//! - The limit on a frame's size applies to the inflated text: inflating stops one byte past
//!   it, so a compression bomb costs at most that much memory and work ([`Inflate::TooBig`],
//!   which the session answers with close 1009).
//! - What comes out is read exactly as a text frame would be; answers are text frames.

use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder};

/// Why a binary message is not a frame.
#[derive(Debug, thiserror::Error)]
pub enum Inflate {
    #[error("the inflated frame is larger than max_frame_bytes")]
    TooBig,
    #[error(
        "a binary frame must be one JSON text frame compressed with gzip (RFC 1952) or raw DEFLATE (RFC 1951): {0}"
    )]
    Corrupt(std::io::Error),
    #[error("the inflated frame is not UTF-8 text")]
    NotText,
}

impl Inflate {
    /// The `error` frame's code.
    pub fn code(&self) -> &'static str {
        match self {
            Inflate::TooBig => "frame_too_large",
            Inflate::Corrupt(_) => "unsupported_frame",
            Inflate::NotText => "invalid_json",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The text frame compressed in `bytes`, if it inflates to at most `max` bytes.
pub fn inflate(bytes: &[u8], max: usize) -> Result<String, Inflate> {
    let limit = max as u64 + 1;
    let mut out = Vec::new();
    let read = if bytes.starts_with(&GZIP_MAGIC) {
        GzDecoder::new(bytes).take(limit).read_to_end(&mut out)
    } else {
        DeflateDecoder::new(bytes).take(limit).read_to_end(&mut out)
    };
    // Past the limit first: a bomb cut off there may also look truncated.
    if out.len() > max {
        return Err(Inflate::TooBig);
    }
    read.map_err(Inflate::Corrupt)?;
    String::from_utf8(out).map_err(|_| Inflate::NotText)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder};

    use super::*;

    fn deflate(text: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_raw_deflate_inflate_to_the_frame() {
        let frame = r#"{"type":"ping"}"#;
        assert_eq!(inflate(&deflate(frame.as_bytes()), 100).unwrap(), frame);
        assert_eq!(inflate(&gzip(frame.as_bytes()), 100).unwrap(), frame);
        // Exactly at the limit is allowed.
        assert_eq!(
            inflate(&deflate(frame.as_bytes()), frame.len()).unwrap(),
            frame
        );
    }

    #[test]
    fn a_bomb_stops_one_byte_past_the_limit() {
        let zeros = vec![b' '; 8 << 20];
        for bomb in [deflate(&zeros), gzip(&zeros)] {
            assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
            assert!(matches!(inflate(&bomb, 1 << 20), Err(Inflate::TooBig)));
        }
    }

    #[test]
    fn other_bytes_are_refused_naming_the_formats() {
        let e = inflate(&[1, 2, 3], 100).unwrap_err();
        assert_eq!(e.code(), "unsupported_frame");
        assert!(
            e.to_string()
                .contains("gzip (RFC 1952) or raw DEFLATE (RFC 1951)")
        );
        let e = inflate(&[0x1f, 0x8b, 0, 0], 100).unwrap_err();
        assert_eq!(e.code(), "unsupported_frame");
        let e = inflate(&deflate(&[0xff, 0xfe]), 100).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
    }
}

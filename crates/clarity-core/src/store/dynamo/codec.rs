//! Item keys and the compact encoding of samples inside chunk items.
//!
//! Rules: sort keys order lexicographically exactly as their time buckets do (fixed-width,
//! zero-padded); a sample's attribute name is `i:` + its id, so "is this id already in the
//! chunk" is an attribute-existence question DynamoDB answers atomically; the value is a
//! versioned binary record so that a chunk of minute samples costs ~60 bytes a sample.
//! A sample with extra fields (blood pressure, workout) is written as format 2 (flag
//! [`HAS_EXTRA`], then a length-prefixed [`Extra`] record before the source), so that a server
//! that only knows format 1 skips it instead of misreading the extra bytes as its source;
//! every other sample stays format 1, byte for byte, and format 1 blobs decode as before.
//! A sample with a client `version` is written as format 3 (flag [`HAS_VERSION`], the version
//! as 8 bytes after the end, extra fields optional), so that a server that predates versions
//! skips it rather than serving it without the version that decides its updates.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use crate::samples::{Extra, Kind, Sample, Timestamp};

/// Width of one chunk: all samples of one user, one kind and one UTC hour share an item.
///
/// An hour of minute data is ~4 KB (4 write units per update); a 1 Hz heart-rate stream is
/// ~220 KB, still under DynamoDB's 400 KB item limit.
pub const BUCKET_MS: i64 = 3_600_000;

/// Prefix of sample attributes in a chunk item.
pub const SAMPLE_ATTR_PREFIX: &str = "i:";

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const FORMAT_V3: u8 = 3;
const HAS_END: u8 = 1;
const HAS_SOURCE: u8 = 2;
const HAS_EXTRA: u8 = 4;
const HAS_VERSION: u8 = 8;

pub fn user_pk(id: Uuid) -> String {
    format!("USER#{id}")
}

pub fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}

pub fn refresh_pk(hash: &[u8; 32]) -> String {
    let mut s = String::with_capacity(3 + 64);
    s.push_str("RT#");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn family_pk(family: Uuid) -> String {
    format!("RTF#{family}")
}

pub fn samples_pk(user: Uuid) -> String {
    format!("SAMPLES#{user}")
}

pub fn bucket_of(ms: i64) -> i64 {
    ms.div_euclid(BUCKET_MS)
}

/// Sort key of the chunk holding `kind` samples of hour `bucket`. Starts are validated to be
/// after 2000, so buckets are positive and ten digits cover them for millennia.
pub fn chunk_sk(kind: Kind, bucket: i64) -> String {
    format!("{:02}#{:010}", kind.code(), bucket.max(0))
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Encodes everything of a sample but its id and kind (those are the attribute name and the
/// sort key).
pub fn encode_sample(sample: &Sample) -> AttributeValue {
    let source = sample.source.as_deref().unwrap_or("");
    let extra = sample.extra.as_ref().map(|e| e.to_bytes());
    let extra_len = extra.as_ref().map_or(0, |e| 2 + e.len());
    let mut buf = Vec::with_capacity(2 + 12 + 8 + 12 + extra_len + source.len());
    let mut flags = 0;
    if sample.end.is_some() {
        flags |= HAS_END;
    }
    if sample.source.is_some() {
        flags |= HAS_SOURCE;
    }
    if extra.is_some() {
        flags |= HAS_EXTRA;
    }
    if sample.version.is_some() {
        flags |= HAS_VERSION;
    }
    buf.push(if sample.version.is_some() {
        FORMAT_V3
    } else if extra.is_some() {
        FORMAT_V2
    } else {
        FORMAT_V1
    });
    buf.push(flags);
    buf.extend_from_slice(&sample.start.utc_ms.to_le_bytes());
    buf.extend_from_slice(&sample.start.offset_secs.to_le_bytes());
    buf.extend_from_slice(&sample.value.to_le_bytes());
    if let Some(end) = sample.end {
        buf.extend_from_slice(&end.utc_ms.to_le_bytes());
        buf.extend_from_slice(&end.offset_secs.to_le_bytes());
    }
    if let Some(version) = sample.version {
        buf.extend_from_slice(&version.to_le_bytes());
    }
    if let Some(extra) = extra {
        // A few dozen bytes: `activity` is at most 64, the rest numbers.
        let len = u16::try_from(extra.len()).expect("extra fields are small");
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&extra);
    }
    buf.extend_from_slice(source.as_bytes());
    AttributeValue::B(Blob::new(buf))
}

/// Decodes one chunk attribute; `None` for anything this version did not write.
pub fn decode_sample(id: &str, kind: Kind, value: &AttributeValue) -> Option<Sample> {
    let AttributeValue::B(blob) = value else {
        return None;
    };
    let mut r = Reader(blob.as_ref());
    let format = r.take(1)?[0];
    let flags = r.take(1)?[0];
    let consistent = match format {
        FORMAT_V1 => flags & (HAS_EXTRA | HAS_VERSION) == 0,
        FORMAT_V2 => flags & (HAS_EXTRA | HAS_VERSION) == HAS_EXTRA,
        FORMAT_V3 => flags & HAS_VERSION != 0,
        _ => false,
    };
    if !consistent {
        return None;
    }
    let start = Timestamp {
        utc_ms: i64::from_le_bytes(r.take(8)?.try_into().ok()?),
        offset_secs: i32::from_le_bytes(r.take(4)?.try_into().ok()?),
    };
    let value = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let end = if flags & HAS_END != 0 {
        Some(Timestamp {
            utc_ms: i64::from_le_bytes(r.take(8)?.try_into().ok()?),
            offset_secs: i32::from_le_bytes(r.take(4)?.try_into().ok()?),
        })
    } else {
        None
    };
    let version = if flags & HAS_VERSION != 0 {
        Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?))
    } else {
        None
    };
    let extra = if flags & HAS_EXTRA != 0 {
        let len = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        Some(Box::new(Extra::from_bytes(r.take(usize::from(len))?)?))
    } else {
        None
    };
    let source = if flags & HAS_SOURCE != 0 {
        Some(std::str::from_utf8(r.0).ok()?.to_owned())
    } else {
        None
    };
    Some(Sample {
        version,
        id: id.to_owned(),
        kind,
        start,
        end,
        value,
        source,
        extra,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(end: bool, source: Option<&str>) -> Sample {
        Sample {
            version: None,
            id: "a-1".into(),
            kind: Kind::HeartRate,
            start: Timestamp {
                utc_ms: 1_717_000_000_123,
                offset_secs: -7 * 3600,
            },
            end: end.then_some(Timestamp {
                utc_ms: 1_717_000_060_000,
                offset_secs: 3600,
            }),
            value: 61.5,
            source: source.map(str::to_owned),
            extra: None,
        }
    }

    fn with_extra(s: Sample, diastolic: Option<f64>, activity: Option<&str>) -> Sample {
        Sample {
            extra: Some(Box::new(Extra {
                provenance: None,
                diastolic,
                activity: activity.map(str::to_owned),
            })),
            ..s
        }
    }

    /// A format 1 blob as the server wrote it before extra fields existed (end, source).
    const V1_BLOB: [u8; 39] = [
        1, 3, 123, 210, 44, 197, 143, 1, 0, 0, 144, 157, 255, 255, 0, 0, 0, 0, 0, 192, 78, 64, 96,
        188, 45, 197, 143, 1, 0, 0, 16, 14, 0, 0, 119, 97, 116, 99, 104,
    ];

    #[test]
    fn samples_round_trip() {
        for s in [
            sample(false, None),
            sample(true, None),
            sample(true, Some("watch")),
            sample(false, Some("")),
        ] {
            let back = decode_sample(&s.id, s.kind, &encode_sample(&s)).expect("decodes");
            assert_eq!(back, s);
        }
    }

    #[test]
    fn extra_fields_round_trip_and_old_blobs_still_decode() {
        for s in [
            with_extra(sample(false, None), Some(78.5), None),
            with_extra(sample(true, Some("watch")), None, Some("running")),
            with_extra(sample(true, Some("")), Some(60.0), Some("x")),
        ] {
            let blob = encode_sample(&s);
            let AttributeValue::B(b) = &blob else {
                unreachable!()
            };
            assert_eq!(
                b.as_ref()[0],
                FORMAT_V2,
                "an old server must skip it, not misread it"
            );
            assert_eq!(decode_sample(&s.id, s.kind, &blob), Some(s.clone()));
            for len in 0..b.as_ref().len() {
                let cut = AttributeValue::B(Blob::new(&b.as_ref()[..len]));
                // Cut inside the source a blob still decodes (the source is the rest), with
                // another source; never with other extra fields.
                if let Some(d) = decode_sample("x", s.kind, &cut) {
                    assert_eq!(d.extra, s.extra, "len {len}");
                }
            }
        }
        // Samples without extra fields are written exactly as before.
        let old = sample(true, Some("watch"));
        let AttributeValue::B(b) = encode_sample(&old) else {
            unreachable!()
        };
        assert_eq!(b.as_ref(), &V1_BLOB[..]);
        let decoded = decode_sample(
            "a-1",
            Kind::HeartRate,
            &AttributeValue::B(Blob::new(&V1_BLOB[..])),
        );
        assert!(decoded.is_some_and(|d| d.extra.is_none()));
    }

    #[test]
    fn versions_round_trip_as_format_3() {
        for s in [
            Sample {
                version: Some(0),
                ..sample(true, Some("watch"))
            },
            Sample {
                version: Some(9_007_199_254_740_991),
                ..with_extra(sample(false, None), Some(70.0), None)
            },
        ] {
            let blob = encode_sample(&s);
            let AttributeValue::B(b) = &blob else {
                unreachable!()
            };
            assert_eq!(b.as_ref()[0], FORMAT_V3, "an old server must skip it");
            assert_eq!(decode_sample(&s.id, s.kind, &blob), Some(s.clone()));
            for len in 0..30.min(b.as_ref().len()) {
                let cut = AttributeValue::B(Blob::new(&b.as_ref()[..len]));
                assert!(decode_sample("x", s.kind, &cut).is_none(), "len {len}");
            }
        }
    }

    #[test]
    fn truncated_values_are_refused_not_misread() {
        let AttributeValue::B(b) = encode_sample(&sample(true, None)) else {
            unreachable!()
        };
        for len in 0..b.as_ref().len() {
            let cut = AttributeValue::B(Blob::new(&b.as_ref()[..len]));
            assert!(
                decode_sample("x", Kind::HeartRate, &cut).is_none(),
                "len {len}"
            );
        }
    }

    #[test]
    fn sort_keys_order_like_time() {
        let a = chunk_sk(Kind::StepCount, bucket_of(1_000_000_000_000));
        let b = chunk_sk(Kind::StepCount, bucket_of(1_900_000_000_000));
        assert!(a < b);
        assert!(a.starts_with("01#"));
    }
}

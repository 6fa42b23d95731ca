//! DynamoDB JSON: the item encoding of DynamoDB's export to S3 (`DYNAMODB_JSON`) and of its
//! low-level API, one `{"Item":{"attr":{"S":"..."}}}` per line.
//!
//! Rules: every attribute is an object with exactly one type descriptor (`S`, `N`, `B`, `SS`,
//! `NS`, `BS`, `M`, `L`, `NULL`, `BOOL`); numbers stay strings (DynamoDB's own precision);
//! binaries are standard base64. Reading is strict: a line that is not exactly that shape is
//! refused with the attribute path that broke it, never guessed at, since a restore that
//! silently drops an attribute would drop health data.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

type Item = HashMap<String, AttributeValue>;

/// One export line (without its newline) for `item`.
pub fn line_of(item: &Item) -> Result<String, String> {
    let mut attrs = Map::with_capacity(item.len());
    // Sorted: the same table always exports to the same bytes (diffable, checksummable).
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    for name in names {
        attrs.insert(name.clone(), to_json(&item[name], name)?);
    }
    let mut line = Map::with_capacity(1);
    line.insert("Item".into(), Value::Object(attrs));
    Ok(Value::Object(line).to_string())
}

fn to_json(v: &AttributeValue, path: &str) -> Result<Value, String> {
    let one = |ty: &str, v: Value| {
        let mut m = Map::with_capacity(1);
        m.insert(ty.to_owned(), v);
        Value::Object(m)
    };
    let b64 = |b: &Blob| Value::String(BASE64.encode(b.as_ref()));
    Ok(match v {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Ss(v) => one("SS", v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(v) => one("NS", v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Bs(v) => one("BS", v.iter().map(b64).collect()),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::Null(b) => one("NULL", Value::Bool(*b)),
        AttributeValue::L(l) => one(
            "L",
            l.iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        AttributeValue::M(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                out.insert(k.clone(), to_json(v, &format!("{path}.{k}"))?);
            }
            one("M", Value::Object(out))
        }
        other => {
            return Err(format!(
                "attribute {path}: a type this tool does not know ({other:?})"
            ));
        }
    })
}

/// The item of one export line; the error says what is wrong and where.
pub fn item_of(line: &str) -> Result<Item, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let Value::Object(mut top) = v else {
        return Err("not a JSON object".into());
    };
    let Some(Value::Object(attrs)) = top.remove("Item") else {
        return Err(
            "no \"Item\" object: a full export line is {\"Item\":{...}} (incremental exports, \
             with NewImage/OldImage, cannot be restored)"
                .into(),
        );
    };
    if let Some(extra) = top.keys().next() {
        return Err(format!("unexpected field {extra:?} beside \"Item\""));
    }
    attrs
        .into_iter()
        .map(|(name, v)| {
            let value = from_json(v, &name)?;
            Ok((name, value))
        })
        .collect()
}

fn from_json(v: Value, path: &str) -> Result<AttributeValue, String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "attribute {path}: not an object like {{\"S\": ...}}"
        ));
    };
    if m.len() != 1 {
        return Err(format!(
            "attribute {path}: {} type descriptors, expected exactly one",
            m.len()
        ));
    }
    let (ty, v) = m.into_iter().next().expect("one entry");
    let bad = |what: &str| format!("attribute {path}: {ty} must be {what}");
    let string = |v: Value| match v {
        Value::String(s) => Ok(s),
        _ => Err(bad("a string")),
    };
    let strings = |v: Value| match v {
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad("an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>(),
        _ => Err(bad("an array of strings")),
    };
    let blob = |s: String| {
        BASE64
            .decode(s.as_bytes())
            .map(Blob::new)
            .map_err(|e| format!("attribute {path}: {ty} is not base64: {e}"))
    };
    Ok(match ty.as_str() {
        "S" => AttributeValue::S(string(v)?),
        "N" => AttributeValue::N(number(string(v)?, path)?),
        "B" => AttributeValue::B(blob(string(v)?)?),
        "SS" => AttributeValue::Ss(strings(v)?),
        "NS" => AttributeValue::Ns(
            strings(v)?
                .into_iter()
                .map(|n| number(n, path))
                .collect::<Result<_, _>>()?,
        ),
        "BS" => AttributeValue::Bs(
            strings(v)?
                .into_iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "BOOL" => AttributeValue::Bool(v.as_bool().ok_or_else(|| bad("true or false"))?),
        "NULL" => AttributeValue::Null(v.as_bool().ok_or_else(|| bad("true"))?),
        "L" => match v {
            Value::Array(a) => AttributeValue::L(
                a.into_iter()
                    .enumerate()
                    .map(|(i, v)| from_json(v, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad("an array")),
        },
        "M" => match v {
            Value::Object(m) => AttributeValue::M(
                m.into_iter()
                    .map(|(k, v)| {
                        let value = from_json(v, &format!("{path}.{k}"))?;
                        Ok((k, value))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(bad("an object")),
        },
        other => {
            return Err(format!(
                "attribute {path}: unknown type descriptor {other:?} (S, N, B, SS, NS, BS, M, L, NULL, BOOL)"
            ));
        }
    })
}

/// A DynamoDB number: refused here, with its path, rather than by DynamoDB mid-restore.
fn number(n: String, path: &str) -> Result<String, String> {
    if n.parse::<f64>().is_ok_and(f64::is_finite) {
        Ok(n)
    } else {
        Err(format!(
            "attribute {path}: N must be a decimal number, got {n:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn every_type_round_trips_in_aws_shape() {
        let item: Item = [
            ("pk".to_owned(), s("SAMPLES#1")),
            ("n".to_owned(), AttributeValue::N("-12.5".into())),
            (
                "b".to_owned(),
                AttributeValue::B(Blob::new(vec![0u8, 1, 255])),
            ),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("ns".to_owned(), AttributeValue::Ns(vec!["1".into()])),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())]),
            ),
            ("t".to_owned(), AttributeValue::Bool(true)),
            ("z".to_owned(), AttributeValue::Null(true)),
            (
                "m".to_owned(),
                AttributeValue::M([("k".to_owned(), AttributeValue::L(vec![s("x")]))].into()),
            ),
        ]
        .into();
        let line = line_of(&item).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Item"]["b"], serde_json::json!({"B": "AAH/"}));
        assert_eq!(v["Item"]["n"], serde_json::json!({"N": "-12.5"}));
        assert_eq!(
            v["Item"]["m"],
            serde_json::json!({"M": {"k": {"L": [{"S": "x"}]}}})
        );
        assert_eq!(item_of(&line).unwrap(), item);
    }

    #[test]
    fn an_aws_export_line_reads() {
        // The shape of a line of DynamoDB's own export (docs: S3DataExport.Output).
        let line = r#"{"Item":{"Authors":{"SS":["Author1","Author2"]},"Id":{"N":"103"},"InPublication":{"BOOL":false},"Title":{"S":"Book 103 Title"}}}"#;
        let item = item_of(line).unwrap();
        assert_eq!(item["Id"], AttributeValue::N("103".into()));
        assert_eq!(item["InPublication"], AttributeValue::Bool(false));
    }

    #[test]
    fn malformed_lines_name_what_is_wrong() {
        let cases = [
            (r#"{"Item":{"pk":{"S":"x"}"#, "not a JSON object"),
            (r#"{"Keys":{"pk":{"S":"x"}}}"#, "no \"Item\" object"),
            (
                r#"{"Item":{"pk":{"S":1}}}"#,
                "attribute pk: S must be a string",
            ),
            (
                r#"{"Item":{"pk":{"S":"a","N":"1"}}}"#,
                "attribute pk: 2 type descriptors",
            ),
            (
                r#"{"Item":{"v":{"B":"%%%"}}}"#,
                "attribute v: B is not base64",
            ),
            (
                r#"{"Item":{"v":{"N":"ten"}}}"#,
                "attribute v: N must be a decimal number",
            ),
            (
                r#"{"Item":{"m":{"M":{"k":{"X":"1"}}}}}"#,
                "attribute m.k: unknown type descriptor",
            ),
            (r#"{"Item":{},"extra":1}"#, "unexpected field \"extra\""),
        ];
        for (line, want) in cases {
            let err = item_of(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}

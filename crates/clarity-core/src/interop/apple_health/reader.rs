//! Streaming reader of Health's export.xml: yields the top-level elements that carry data
//! (`Record`, `Correlation`, `Workout`, `ActivitySummary`, and any other element below
//! `HealthData`, by name) one at a time, each with the children an importer needs.
//!
//! Rules:
//! - Never more than one top-level element in memory: the file is read through a buffered
//!   stream, whatever its size (exports reach several GB).
//! - The DTD header is read and skipped (Health's declares no entities; the five predefined
//!   ones and character references are decoded in attribute values).
//! - A malformed document is an error naming the line and the byte offset in export.xml where
//!   reading stopped; nothing after it is read.
//! - Children kept: a `Correlation`'s `Record`s, a `Workout`'s `WorkoutStatistics`, and each
//!   element's `MetadataEntry` `HKWasUserEntered`; the rest (beat-to-beat lists, routes,
//!   events) is skipped.

use std::io::BufRead;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

/// A data element of the export with its attributes (decoded) and kept children.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    /// `Record`, `Correlation`, `Workout`, `ActivitySummary`, ...
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// `MetadataEntry key="HKWasUserEntered" value="1"`.
    pub user_entered: bool,
    /// A Correlation's Records; a Workout's WorkoutStatistics.
    pub children: Vec<Element>,
}

impl Element {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error("malformed XML in export.xml at line {line}, byte offset {offset}: {message}")]
    Malformed {
        line: u64,
        offset: u64,
        message: String,
    },
    #[error("not an Apple Health export: the root element is `{0}`, not `HealthData`")]
    NotHealthData(String),
    #[error("reading export.xml failed: {0}")]
    Io(String),
}

/// Counts the lines of what the XML parser consumed, for error messages.
struct LineCounter<R> {
    inner: R,
    lines: u64,
}

impl<R: BufRead> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines += newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The buffer is already filled: this returns it without reading.
        if let Ok(buf) = self.inner.fill_buf() {
            self.lines += newlines(&buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt);
    }
}

fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

pub struct HealthReader<R: BufRead> {
    xml: quick_xml::Reader<LineCounter<R>>,
    buf: Vec<u8>,
    /// Elements open below the root (0: between top-level elements).
    depth: usize,
    seen_root: bool,
}

impl<R: BufRead> HealthReader<R> {
    pub fn new(input: R) -> HealthReader<R> {
        let mut xml = quick_xml::Reader::from_reader(LineCounter {
            inner: input,
            lines: 0,
        });
        xml.config_mut().check_end_names = true;
        HealthReader {
            xml,
            buf: Vec::with_capacity(4096),
            depth: 0,
            seen_root: false,
        }
    }

    fn malformed(&self, message: impl Into<String>) -> ReadError {
        ReadError::Malformed {
            line: self.xml.get_ref().lines + 1,
            offset: self.xml.error_position().max(self.xml.buffer_position()),
            message: message.into(),
        }
    }

    fn error(&self, e: quick_xml::Error) -> ReadError {
        match e {
            quick_xml::Error::Io(e) => ReadError::Io(e.to_string()),
            other => self.malformed(other.to_string()),
        }
    }

    /// The next data element, or `None` at the end of the document.
    pub fn next_element(&mut self) -> Result<Option<Element>, ReadError> {
        // The element being collected, and the depth (below the root) it opened at.
        let mut current: Option<Element> = None;
        // Taken out of `self` so that the event may borrow it while `self` is used.
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.next_into(&mut buf, &mut current);
        self.buf = buf;
        result
    }

    fn next_into(
        &mut self,
        buf: &mut Vec<u8>,
        current: &mut Option<Element>,
    ) -> Result<Option<Element>, ReadError> {
        loop {
            buf.clear();
            let event = match self.xml.read_event_into(buf) {
                Ok(e) => e,
                Err(e) => return Err(self.error(e)),
            };
            match event {
                Event::Start(start) | Event::Empty(start) if !self.seen_root => {
                    let name = start.name().as_ref().to_owned();
                    if name != "HealthData" {
                        return Err(ReadError::NotHealthData(name));
                    }
                    self.seen_root = true;
                }
                Event::Start(start) => {
                    self.depth += 1;
                    self.open(current, &start)?;
                }
                Event::Empty(start) => {
                    self.depth += 1;
                    self.open(current, &start)?;
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(current.take());
                    }
                }
                Event::End(_) => {
                    if self.depth == 0 {
                        // The root closed: nothing may follow but whitespace.
                        continue;
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(current.take());
                    }
                }
                Event::Text(t) if self.depth == 0 && self.seen_root && !t.trim().is_empty() => {
                    return Err(self.malformed("text between elements"));
                }
                Event::Eof => {
                    if !self.seen_root {
                        return Err(self.malformed("no HealthData element"));
                    }
                    if self.depth != 0 || current.is_some() {
                        return Err(self.malformed("the document ends inside an element"));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// An element opened at `self.depth` (1: top level).
    fn open(&self, current: &mut Option<Element>, start: &BytesStart<'_>) -> Result<(), ReadError> {
        let name = start.name();
        let name = name.as_ref();
        match self.depth {
            1 => *current = Some(self.element(start)?),
            2 | 3 if name == "MetadataEntry" => {
                let entry = self.element(start)?;
                if entry.get("key") == Some("HKWasUserEntered") && entry.get("value") == Some("1") {
                    let Some(top) = current.as_mut() else {
                        return Ok(());
                    };
                    let target = if self.depth == 2 {
                        Some(top)
                    } else {
                        top.children.last_mut()
                    };
                    if let Some(t) = target {
                        t.user_entered = true;
                    }
                }
            }
            2 if name == "Record" || name == "WorkoutStatistics" => {
                if let Some(top) = current.as_mut() {
                    top.children.push(self.element(start)?);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn element(&self, start: &BytesStart<'_>) -> Result<Element, ReadError> {
        let mut attrs = Vec::with_capacity(10);
        for a in start.attributes() {
            let a = a.map_err(|e| self.malformed(e.to_string()))?;
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.malformed(e.to_string()))?;
            attrs.push((a.key.as_ref().to_owned(), value.into_owned()));
        }
        Ok(Element {
            name: start.name().as_ref().to_owned(),
            attrs,
            user_entered: false,
            children: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(xml: &str) -> Result<Vec<Element>, ReadError> {
        let mut r = HealthReader::new(xml.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = r.next_element()? {
            out.push(e);
        }
        Ok(out)
    }

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (Record*)>\n<!ATTLIST Record\n  type CDATA #REQUIRED\n>\n]>\n<HealthData locale=\"en_US\">\n";

    #[test]
    fn reads_records_correlations_and_escapes() {
        let xml = format!(
            "{HEAD} <ExportDate value=\"2024-03-20 10:00:00 -0400\"/>\n <Record type=\"T\" sourceName=\"Dr. M&#252;ller&#8217;s &quot;Scale&quot; &amp; Co\" value=\"1\">\n  <MetadataEntry key=\"HKWasUserEntered\" value=\"1\"/>\n  <HeartRateVariabilityMetadataList>\n   <InstantaneousBeatsPerMinute bpm=\"60\" time=\"1:00:00.00 PM\"/>\n  </HeartRateVariabilityMetadataList>\n </Record>\n <Correlation type=\"C\">\n  <Record type=\"S\" value=\"120\"/>\n  <Record type=\"D\" value=\"80\"/>\n </Correlation>\n</HealthData>\n"
        );
        let els = all(&xml).unwrap();
        assert_eq!(els.len(), 3);
        assert_eq!(els[0].name, "ExportDate");
        assert_eq!(
            els[1].get("sourceName"),
            Some("Dr. Müller’s \"Scale\" & Co")
        );
        assert!(els[1].user_entered);
        assert!(els[1].children.is_empty());
        assert_eq!(els[2].children.len(), 2);
        assert_eq!(els[2].children[1].get("value"), Some("80"));
    }

    #[test]
    fn malformed_names_line_and_offset() {
        let xml = format!(
            "{HEAD} <Record type=\"A\"/>\n <Record type=\"B\">\n </Recrd>\n</HealthData>\n"
        );
        let err = all(&xml).unwrap_err();
        let ReadError::Malformed { line, offset, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 11, "{err}");
        let at = xml.find("</Recrd>").unwrap() as u64;
        assert!(*offset >= at && *offset <= at + 8, "{err}");
        let truncated = format!("{HEAD} <Record type=\"A\">\n");
        assert!(matches!(all(&truncated), Err(ReadError::Malformed { .. })));
        assert!(matches!(
            all("<?xml version=\"1.0\"?><html/>"),
            Err(ReadError::NotHealthData(n)) if n == "html"
        ));
    }
}

//! The streams a session can subscribe to: the document streams (`analyses`, `insights`),
//! whose events the store appends and keeps, and `samples`, the user's change feed, whose
//! offsets are the store's change sequence numbers.
//!
//! Rules: a stream's wire name is written here and nowhere else; a document stream's name is
//! its [`DocKind::stream`] (the share scope that grants it).

use crate::store::DocKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// A user's analyses or insights.
    Docs(DocKind),
    /// A user's sample changes (inserts, updates, deletions); only ever the user's own.
    Samples,
}

impl Stream {
    pub const SAMPLES: &'static str = "samples";

    pub fn name(self) -> &'static str {
        match self {
            Stream::Docs(kind) => kind.stream(),
            Stream::Samples => Stream::SAMPLES,
        }
    }

    pub fn from_name(name: &str) -> Option<Stream> {
        match name {
            Stream::SAMPLES => Some(Stream::Samples),
            other => DocKind::from_stream(other).map(Stream::Docs),
        }
    }
}

impl From<DocKind> for Stream {
    fn from(kind: DocKind) -> Stream {
        Stream::Docs(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            Stream::Docs(DocKind::Analysis),
            Stream::Docs(DocKind::Insight),
            Stream::Samples,
        ] {
            assert_eq!(Stream::from_name(s.name()), Some(s));
        }
        assert_eq!(Stream::from_name("analysis"), None);
    }
}

//! Interoperability: history in from other platforms' files (Apple Health: [`apple_health`],
//! the jobs: [`imports`], the kept uploads: [`archive`]) and interchange formats out: FHIR R4 ([`fhir`]), Open mHealth
//! ([`omh`], both ways) and CSV for researchers ([`csv`]), all from one mapping table
//! ([`table`]).
//!
//! Rules: everything coming in goes through the same validation and store write path as
//! samples sent live; the formats turn samples and analysis documents into text (and Open
//! mHealth data points into sample inputs) a piece at a time, so an export never holds an
//! account in memory; no HTTP types here (the edge streams uploads to a file and streams the
//! pieces out). docs/import.md and docs/interop.md describe the formats and choices.

pub mod apple_health;
pub mod archive;
pub mod csv;
pub mod fhir;
pub mod imports;
pub mod omh;
pub mod table;

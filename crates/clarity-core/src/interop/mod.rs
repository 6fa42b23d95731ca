//! Interchange formats: FHIR R4 ([`fhir`]), Open mHealth ([`omh`]) and CSV for researchers
//! ([`csv`]), all from one mapping table ([`table`]).
//!
//! Rules: this module turns samples and analysis documents into text (and Open mHealth data
//! points into sample inputs); it never reads the store or speaks HTTP. The edge streams the
//! pieces it writes; each piece is built from one sample, so an export never holds an
//! account in memory. docs/interop.md describes the formats and the choices made.

pub mod csv;
pub mod fhir;
pub mod omh;
pub mod table;

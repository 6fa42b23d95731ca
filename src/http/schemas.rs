//! The OpenAPI schemas of domain types that REST bodies carry (samples, ingest reports, token
//! pairs), written on the HTTP side so that the domain modules know nothing of utoipa.
//!
//! Rules:
//! - Each type here mirrors, field for field and under the same name, the domain type that
//!   the handlers serialise (named in a comment above it); the `#[utoipa::path]` annotations
//!   reference these instead. The OpenAPI tests validate real responses against the served
//!   document, so a mirror that drifts from what is served fails them.
//! - Doc comments are the schema descriptions that clients read (hence plain `//` for the
//!   notes to maintainers).
//! - The types are never built: only their schemas are used.

#![allow(dead_code)]

use utoipa::ToSchema;

// Mirrors `crate::samples::Kind` (a test checks its values against the protocol's).
/// Sample kinds. The numeric discriminant is the stored code: never reorder.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Kind {
    ActivityCount,
    StepCount,
    HeartRate,
    HeartRateVariability,
    RespiratoryRate,
    OxygenSaturation,
    BodyTemperature,
    SleepStage,
    HeartRateVariabilityRmssd,
    RestingHeartRate,
    BloodPressure,
    BloodGlucose,
    ActiveEnergy,
    Distance,
    BodyMass,
    Workout,
    MindfulSession,
    Mood,
    Phq9,
    Gad7,
}

// Mirrors `crate::samples::SampleOut` (what `Sample::to_wire` gives).
/// The wire shape of a sample in responses. (Clients send the same shape, with other units
/// allowed; the API documents take that schema from protocol/schemas/client/samples.json.)
#[derive(ToSchema)]
pub struct Sample {
    /// The client's idempotency key, unique per user: 1-128 bytes, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub id: String,
    pub kind: Kind,
    /// RFC 3339 with offset; kept at millisecond precision with its offset. After
    /// 2000-01-01, at most 24 h ahead of the server's clock.
    #[schema(format = DateTime)]
    pub start: String,
    /// At or after `start`; required for `sleep_stage`, `workout` and `mindful_session`. At
    /// most 24 h ahead of the server's clock, and at most the kind's span after `start` (1 h
    /// for readings, 24 h for totals, stages and sessions).
    #[schema(value_type = String, format = DateTime, nullable = false, required = false)]
    pub end: Option<String>,
    /// In the kind's canonical unit (`unit`); for `sleep_stage` the stage.
    #[schema(schema_with = super::openapi::sample_value)]
    pub value: serde_json::Value,
    /// The kind's canonical unit (other units are converted on input); none for
    /// `sleep_stage`.
    #[schema(value_type = String, nullable = false, required = false)]
    pub unit: Option<String>,
    /// Where the sample came from (at most 256 bytes), e.g. a device name; the rest of what
    /// the client knows is in `provenance`.
    #[schema(value_type = String, max_length = 256, nullable = false, required = false)]
    pub source: Option<String>,
    /// `blood_pressure` only: the diastolic pressure, in `unit` (mmHg).
    #[schema(value_type = f64, nullable = false, required = false)]
    pub diastolic: Option<f64>,
    /// `workout` only: the activity type, snake_case (e.g. `running`).
    #[schema(value_type = String, pattern = "^[a-z0-9_]{1,64}$", nullable = false, required = false)]
    pub activity: Option<String>,
    /// The client's version of the sample, when it sent one (0..=2^53 - 1).
    #[schema(value_type = i64, minimum = 0, maximum = 9007199254740991.0, nullable = false, required = false)]
    pub version: Option<i64>,
    /// Device, app and recording method, when the client sent them.
    #[schema(value_type = super::openapi::Provenance, nullable = false, required = false)]
    pub provenance: Option<super::openapi::Provenance>,
}

// Mirrors `crate::samples::Rejection`.
/// Why one sample of a batch was not stored.
#[derive(ToSchema)]
pub struct Rejection {
    /// Position in the batch.
    pub index: usize,
    pub code: RejectionCode,
    pub message: String,
}

// The codes of `crate::samples::Rejection::code`.
/// Why a sample was rejected (protocol/README.md explains each code).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RejectionCode {
    InvalidSample,
    InvalidId,
    UnknownKind,
    InvalidTime,
    TimeOutOfRange,
    InvalidValue,
    OutOfRange,
    UnitMismatch,
}

// Mirrors `crate::ingest::IngestReport`.
/// What happened to each sample of a batch.
#[derive(ToSchema)]
pub struct IngestReport {
    /// Stored now.
    pub accepted: usize,
    /// Already stored (same `id` for this user, same or lower `version`): not stored again.
    pub duplicates: usize,
    /// Stored ids replaced because this `version` is higher than the stored one.
    pub updated: usize,
    /// Not stored, with why: the first 100 such samples.
    pub rejected: Vec<Rejection>,
    /// Further samples not stored because they are invalid, beyond those listed in `rejected`.
    pub rejected_omitted: usize,
}

// Mirrors `crate::ingest::DeleteReport`.
/// What a delete did.
#[derive(ToSchema)]
pub struct DeleteReport {
    /// Samples removed now.
    pub deleted: usize,
    /// Ids that were not stored (unknown, or deleted already): not an error.
    pub not_found: usize,
    /// Those ids, in request order.
    pub not_found_ids: Vec<String>,
}

// Mirrors `crate::auth::TokenPair`.
/// An access/refresh pair as handed to a client.
#[derive(ToSchema)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single use: spend it at `/api/v1/auth/refresh`.
    pub refresh_token: String,
    #[schema(pattern = "^Bearer$", example = "Bearer")]
    pub token_type: String,
    /// Access token lifetime, seconds.
    pub expires_in: u64,
}

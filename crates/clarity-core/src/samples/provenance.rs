//! Where a sample came from, as structured as the client knows it: the device (name,
//! manufacturer, model, hardware and software version), the app that wrote it (bundle id or
//! package name) and how it was recorded (automatic, active, manual entry).
//!
//! Rules:
//! - Every field is optional; the flat `source` name of protocol v1 stays the key that source
//!   priority ranks by (it is the device name when the client sends only a device).
//! - Stored inside [`super::Extra`], so both stores keep it without a schema of their own.
//! - Strings are at most [`super::MAX_SOURCE_LEN`] bytes, no control characters.

use serde::{Deserialize, Serialize};

/// How a sample was recorded (HealthKit's `HKWasUserEntered`, Health Connect's
/// `Metadata.recordingMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMethod {
    /// Passively measured by a sensor (a watch's background heart rate).
    Automatic,
    /// Measured during a session the user started (a workout, a spot check).
    Active,
    /// Typed in by the user.
    Manual,
}

impl RecordingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMethod::Automatic => "automatic",
            RecordingMethod::Active => "active",
            RecordingMethod::Manual => "manual",
        }
    }
}

/// The device that measured a sample.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

/// Structured provenance beyond the flat source name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// The app that wrote the sample: an iOS bundle id or an Android package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<RecordingMethod>,
}

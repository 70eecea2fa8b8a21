//! Publishing to the command centre over MQTT: topics, the alert JSON, and the link that
//! delivers outbox entries with QoS 1.

pub mod alert;
pub mod commands;
pub mod mqtt;
pub mod probe;
pub mod topics;

pub use alert::{rfc3339, Alert, AlertContext, AlertAck, AlertDumper, AlertDumping, AlertObject, EvidenceRef, ManifestRef, ModelRef, ALERT_SCHEMA, SCHEMA_VERSION};
pub use mqtt::{broker_address, HeartbeatFn, LinkStats, MqttLink, Publisher};
pub use topics::Topics;

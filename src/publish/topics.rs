//! MQTT topic names, all under `{prefix}/{device}`.

/// Topic builder for one device.
#[derive(Clone, Debug)]
pub struct Topics {
    root: String,
}

impl Topics {
    pub fn new(prefix: &str, device: &str) -> Self {
        Topics { root: format!("{prefix}/{device}") }
    }
    /// Retained `online` / `offline` (the latter also as Last Will).
    pub fn status(&self) -> String {
        format!("{}/status", self.root)
    }
    /// QoS 1 alert JSON, one message per event transition.
    pub fn alerts(&self) -> String {
        format!("{}/alerts", self.root)
    }
    /// QoS 1 binary evidence (JPEG) for one event.
    pub fn evidence(&self, event_id: &str, name: &str) -> String {
        format!("{}/evidence/{event_id}/{name}", self.root)
    }
    /// Periodic health report.
    pub fn heartbeat(&self) -> String {
        format!("{}/heartbeat", self.root)
    }
}

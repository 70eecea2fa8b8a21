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
    /// Retained hex Ed25519 public key that verifies the device's evidence manifests.
    pub fn pubkey(&self) -> String {
        format!("{}/pubkey", self.root)
    }
    /// QoS 1 alert JSON, one message per event transition.
    pub fn alerts(&self) -> String {
        format!("{}/alerts", self.root)
    }
    /// QoS 1 binary evidence (JPEG, clip) for one event; above `mqtt.max_payload_kb` in chunks
    /// (`…/index`, `…/chunk/{i}`: see [`crate::outbox::blob`]).
    pub fn evidence(&self, event_id: &str, name: &str) -> String {
        format!("{}/evidence/{event_id}/{name}", self.root)
    }
    /// The ACL probe the link publishes to itself at every connect (matched by the commands
    /// filter, so a device allowed to read only its own commands still receives it).
    pub fn probe(&self) -> String {
        format!("{}/cmd/{}", self.root, super::commands::PROBE)
    }
    /// Inbound commands (`…/cmd/ack`, `…/cmd/snapshot`, …); subscribe with this filter.
    pub fn commands_filter(&self) -> String {
        format!("{}/cmd/+", self.root)
    }
    /// Replies to commands.
    pub fn command_result(&self) -> String {
        format!("{}/cmd_result", self.root)
    }
    /// On-demand snapshots of a camera (`cmd/snapshot`).
    pub fn snapshot(&self, camera_id: &str) -> String {
        format!("{}/snapshot/{camera_id}", self.root)
    }
    /// The outcome of every loudspeaker request (played, failed, skipped, dropped).
    pub fn speaker_result(&self) -> String {
        format!("{}/speaker_result", self.root)
    }
    /// The topic root `{prefix}/{device}`.
    pub fn root(&self) -> &str {
        &self.root
    }
    /// Periodic health report.
    pub fn heartbeat(&self) -> String {
        format!("{}/heartbeat", self.root)
    }
    /// Retained: the cameras with their zones, the speakers and the messages they may play,
    /// as applied now (what a console's zone editor and warning buttons offer); sent at start
    /// and after every reload.
    pub fn applied_config(&self) -> String {
        format!("{}/applied_config", self.root)
    }
    /// Retained, from the command centre: the box's desired cameras and zones, signed and
    /// versioned (see [`crate::config::fleet`]).
    pub fn config(&self) -> String {
        format!("{}/config", self.root)
    }
    /// Retained, from the box: the fleet config version it applied, or every error of the one
    /// it refused.
    pub fn config_status(&self) -> String {
        format!("{}/config_status", self.root)
    }
}

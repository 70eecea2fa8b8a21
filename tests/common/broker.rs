//! A real mosquitto on a free loopback port, with its own config; stopped by PID on drop.

pub use hawkeye::tools::demo::Mosquitto;

/// Starts mosquitto or panics with the reason (tests need the real broker; setup installs it).
pub fn mosquitto() -> Mosquitto {
    Mosquitto::start().expect("mosquitto must be installed (scripts/setup.sh) and start")
}

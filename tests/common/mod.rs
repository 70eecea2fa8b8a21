//! Helpers shared by the integration tests: real broker, RTSP server, subscriber, model paths.
#![allow(dead_code)]

pub mod broker;
pub mod model;
pub mod mqtt;
pub mod rtsp;

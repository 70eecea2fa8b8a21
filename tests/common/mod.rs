//! Helpers shared by the integration tests: real broker, RTSP server, subscriber, model paths,
//! config files and the daemon process.
#![allow(dead_code)]

pub mod broker;
pub mod config;
pub mod console;
pub mod daemon;
pub mod model;
pub mod mqtt;
pub mod rtsp;
pub mod scene;
pub mod onvif;
pub mod speaker_http;
pub mod streams;
pub mod pki;
pub mod platform;
pub mod proxy;
pub mod process;
pub mod tmpfs;
pub mod vlc;

pub mod rtsp;

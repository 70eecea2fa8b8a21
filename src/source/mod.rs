//! Camera sources over GStreamer. (Being written.)

//! The hand-off between camera sources and the one shared detector: one slot per camera holding
//! its latest frame. The detector takes frames round-robin, so every camera gets a fair share;
//! a frame overwritten before the detector took it is dropped and counted (latest frame wins).
//! A camera in `lossless` mode (files decoded as fast as possible, eval, bench) instead waits
//! until its slot is free, so no frame is skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::frame::Frame;

/// Latest-frame slots for N cameras plus the round-robin cursor.
pub struct FrameSlots {
    inner: Mutex<SlotsState>,
    /// Signalled when a frame is put (wakes the detector).
    filled: Condvar,
    /// Signalled when a frame is taken (wakes lossless producers).
    emptied: Condvar,
    dropped: Vec<AtomicU64>,
    accepted: Vec<AtomicU64>,
}

struct SlotsState {
    slots: Vec<Option<Frame>>,
    /// Cameras whose previous frame a detector worker still holds (see [`FrameSlots::claim`]).
    busy: Vec<bool>,
    next: usize,
    closed: bool,
}

impl FrameSlots {
    /// Slots for `n` cameras.
    pub fn new(n: usize) -> Self {
        FrameSlots {
            inner: Mutex::new(SlotsState { slots: (0..n).map(|_| None).collect(), busy: vec![false; n], next: 0, closed: false }),
            filled: Condvar::new(),
            emptied: Condvar::new(),
            dropped: (0..n).map(|_| AtomicU64::new(0)).collect(),
            accepted: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Number of camera slots.
    pub fn len(&self) -> usize {
        self.dropped.len()
    }

    /// True when there are no camera slots.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty()
    }

    /// Puts the camera's newest frame. Lossy: replaces (and counts) an untaken frame. Lossless:
    /// blocks until the slot is free or the slots are closed. Returns false once closed.
    pub fn put(&self, frame: Frame, lossless: bool) -> bool {
        let cam = frame.camera;
        let mut st = self.inner.lock().unwrap();
        if lossless {
            while st.slots[cam].is_some() && !st.closed {
                st = self.emptied.wait(st).unwrap();
            }
        }
        if st.closed {
            return false;
        }
        if st.slots[cam].replace(frame).is_some() {
            self.dropped[cam].fetch_add(1, Ordering::Relaxed);
        }
        self.accepted[cam].fetch_add(1, Ordering::Relaxed);
        drop(st);
        self.filled.notify_one();
        true
    }

    /// Takes the next frame round-robin, waiting up to `timeout`. `None` on timeout or close.
    pub fn take(&self, timeout: Duration) -> Option<Frame> {
        self.take_inner(timeout, false)
    }

    /// Like [`FrameSlots::take`] for one of several detector workers: skips cameras whose
    /// previous frame another worker still holds and marks this one's camera held until
    /// [`FrameSlots::release`]. So a camera's frames are detected one at a time, in order, and
    /// its per-camera state (motion gate, tracks downstream) sees them in sequence.
    pub fn claim(&self, timeout: Duration) -> Option<Frame> {
        self.take_inner(timeout, true)
    }

    /// Ends a [`FrameSlots::claim`]: the camera's next frame may be taken.
    pub fn release(&self, cam: usize) {
        let mut st = self.inner.lock().unwrap();
        if let Some(b) = st.busy.get_mut(cam) {
            *b = false;
        }
        let waiting = st.slots.get(cam).is_some_and(|f| f.is_some());
        drop(st);
        if waiting {
            self.filled.notify_one();
        }
    }

    fn take_inner(&self, timeout: Duration, claim: bool) -> Option<Frame> {
        let mut st = self.inner.lock().unwrap();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if st.closed {
                return None;
            }
            let n = st.slots.len();
            for k in 0..n {
                let i = (st.next + k) % n;
                if claim && st.busy[i] {
                    continue;
                }
                if let Some(f) = st.slots[i].take() {
                    st.busy[i] = claim;
                    st.next = (i + 1) % n;
                    drop(st);
                    self.emptied.notify_all();
                    return Some(f);
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            st = self.filled.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Wakes everyone and makes further `put`/`take` return immediately.
    pub fn close(&self) {
        self.inner.lock().unwrap().closed = true;
        self.filled.notify_all();
        self.emptied.notify_all();
    }

    /// True once [`FrameSlots::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().unwrap().closed
    }

    /// Frames of camera `cam` overwritten before the detector took them.
    pub fn dropped(&self, cam: usize) -> u64 {
        self.dropped[cam].load(Ordering::Relaxed)
    }

    /// Frames of camera `cam` put into the slot.
    pub fn accepted(&self, cam: usize) -> u64 {
        self.accepted[cam].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(cam: usize, seq: u64) -> Frame {
        Frame { camera: cam, seq, ts: seq as f64, wall: chrono::Utc::now(), width: 1, height: 1, rgb: Arc::new(vec![0; 3]) }
    }

    #[test]
    fn latest_frame_wins_and_drops_are_counted() {
        let s = FrameSlots::new(1);
        s.put(frame(0, 1), false);
        s.put(frame(0, 2), false);
        assert_eq!(s.take(Duration::ZERO).unwrap().seq, 2);
        assert_eq!(s.dropped(0), 1);
        assert!(s.take(Duration::from_millis(1)).is_none());
    }

    #[test]
    fn a_busy_camera_does_not_starve_the_others() {
        let s = FrameSlots::new(3);
        for cam in 0..3 {
            s.put(frame(cam, 0), false);
        }
        let mut order = Vec::new();
        for i in 0..4 {
            order.push(s.take(Duration::ZERO).unwrap().camera);
            // camera 0 always has a fresh frame ready again
            s.put(frame(0, 1 + i), false);
        }
        assert_eq!(order, vec![0, 1, 2, 0]);
    }

    #[test]
    fn lossless_put_waits_for_the_detector() {
        let s = Arc::new(FrameSlots::new(1));
        let s2 = s.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..50 {
                assert!(s2.put(frame(0, i), true));
            }
        });
        let mut got = Vec::new();
        while got.len() < 50 {
            if let Some(f) = s.take(Duration::from_secs(5)) {
                got.push(f.seq);
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(s.dropped(0), 0);
    }

    #[test]
    fn a_claimed_camera_waits_for_its_release() {
        let s = FrameSlots::new(2);
        s.put(frame(0, 1), false);
        assert_eq!(s.claim(Duration::ZERO).unwrap().seq, 1);
        s.put(frame(0, 2), false);
        s.put(frame(1, 7), false);
        // camera 0 is held: the other worker gets camera 1, then nothing
        assert_eq!(s.claim(Duration::ZERO).unwrap().camera, 1);
        assert!(s.claim(Duration::from_millis(1)).is_none());
        s.release(0);
        assert_eq!(s.claim(Duration::ZERO).unwrap().seq, 2);
    }

    #[test]
    fn release_wakes_a_waiting_worker() {
        let s = Arc::new(FrameSlots::new(1));
        s.put(frame(0, 1), false);
        assert!(s.claim(Duration::ZERO).is_some());
        s.put(frame(0, 2), false);
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.claim(Duration::from_secs(5)).map(|f| f.seq));
        std::thread::sleep(Duration::from_millis(20));
        s.release(0);
        assert_eq!(t.join().unwrap(), Some(2));
    }

    #[test]
    fn close_unblocks_everyone() {
        let s = Arc::new(FrameSlots::new(1));
        s.put(frame(0, 0), true);
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.put(frame(0, 1), true));
        std::thread::sleep(Duration::from_millis(20));
        s.close();
        assert!(!t.join().unwrap());
    }
}

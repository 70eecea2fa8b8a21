//! Value mappings: the integer encodings of ST 0601 (without IMAPB) for the items hawkeye reads
//! and writes.

/// `raw_max` integer steps over `min..=max`: `value = min + raw * (max - min) / raw_max`.
#[derive(Clone, Copy)]
pub(super) struct UnsignedMap {
    raw_max: f64,
    min: f64,
    max: f64,
}

impl UnsignedMap {
    pub(super) fn decode(self, raw: u64) -> f64 {
        self.min + raw as f64 * (self.max - self.min) / self.raw_max
    }

    /// Rounds to the nearest integer and clamps to the range; `None` for NaN (the item is omitted).
    pub(super) fn encode(self, value: f64) -> Option<u64> {
        if value.is_nan() {
            return None;
        }
        let raw = ((value - self.min) * self.raw_max / (self.max - self.min)).round();
        Some(raw.clamp(0.0, self.raw_max) as u64)
    }

    #[cfg(test)]
    pub(super) fn step(self) -> f64 {
        (self.max - self.min) / self.raw_max
    }
}

/// `±raw_max` integer steps over `±limit`: `value = raw * limit / raw_max`; the most negative
/// integer (`-raw_max - 1`) is the "out of range" / "reserved" value.
#[derive(Clone, Copy)]
pub(super) struct SignedMap {
    raw_max: f64,
    limit: f64,
}

impl SignedMap {
    /// `None` for the reserved integer.
    pub(super) fn decode(self, raw: i64) -> Option<f64> {
        if raw as f64 == -self.raw_max - 1.0 {
            return None;
        }
        Some(raw as f64 * self.limit / self.raw_max)
    }

    /// Rounds to the nearest integer; the reserved integer for NaN, infinities and values out of
    /// range.
    pub(super) fn encode(self, value: f64) -> i64 {
        if value.is_nan() || value.abs() > self.limit {
            return -(self.raw_max as i64) - 1;
        }
        (value * self.raw_max / self.limit)
            .round()
            .clamp(-self.raw_max, self.raw_max) as i64
    }

    #[cfg(test)]
    pub(super) fn step(self) -> f64 {
        self.limit / self.raw_max
    }
}

pub(super) const U16_MAX: f64 = 65_535.0;
pub(super) const U32_MAX: f64 = 4_294_967_295.0;
pub(super) const I16_MAX: f64 = 32_767.0;
pub(super) const I32_MAX: f64 = 2_147_483_647.0;

pub(super) const HEADING: UnsignedMap = UnsignedMap {
    raw_max: U16_MAX,
    min: 0.0,
    max: 360.0,
};
pub(super) const PITCH: SignedMap = SignedMap {
    raw_max: I16_MAX,
    limit: 20.0,
};
pub(super) const ROLL: SignedMap = SignedMap {
    raw_max: I16_MAX,
    limit: 50.0,
};
pub(super) const LATITUDE: SignedMap = SignedMap {
    raw_max: I32_MAX,
    limit: 90.0,
};
pub(super) const LONGITUDE: SignedMap = SignedMap {
    raw_max: I32_MAX,
    limit: 180.0,
};
pub(super) const ALTITUDE: UnsignedMap = UnsignedMap {
    raw_max: U16_MAX,
    min: -900.0,
    max: 19_000.0,
};
pub(super) const SLANT_RANGE: UnsignedMap = UnsignedMap {
    raw_max: U32_MAX,
    min: 0.0,
    max: 5_000_000.0,
};

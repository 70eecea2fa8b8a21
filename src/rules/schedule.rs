//! Weekly schedule windows: "mon-fri 07:00-22:00", "sat,sun 09:00-18:00", "mon-sun 22:00-06:00"
//! (a window may run past midnight; it then belongs to the day it starts on). Times are local
//! to the zone's fixed UTC offset (China has no daylight saving; `+08:00`).

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One window: a set of weekdays (bit 0 = Monday) and minutes of the day.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    days: u8,
    from_min: u32,
    to_min: u32,
}

/// A zone's schedule; empty means always active.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schedule {
    windows: Vec<Window>,
    offset_s: i32,
}

fn parse_day(d: &str) -> Result<usize, String> {
    DAYS.iter().position(|x| *x == d).ok_or_else(|| format!("unknown day {d:?} (use mon, tue, wed, thu, fri, sat, sun)"))
}

fn parse_time(t: &str) -> Result<u32, String> {
    let (h, m) = t.split_once(':').ok_or_else(|| format!("time {t:?} is not HH:MM"))?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| format!("time {t:?} is not HH:MM"))?, m.parse().map_err(|_| format!("time {t:?} is not HH:MM"))?);
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(format!("time {t:?} is out of range"));
    }
    Ok(h * 60 + m)
}

/// Parses `"mon-fri 07:00-22:00"` / `"sat,sun 09:00-18:00"`.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let (days_s, times_s) = s.trim().split_once(' ').ok_or_else(|| format!("{s:?} is not \"DAYS HH:MM-HH:MM\" (e.g. \"mon-fri 07:00-22:00\")"))?;
    let mut days = 0u8;
    for part in days_s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                let mut d = a;
                loop {
                    days |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days |= 1 << parse_day(part)?,
        }
    }
    let (from, to) = times_s.trim().split_once('-').ok_or_else(|| format!("{times_s:?} is not HH:MM-HH:MM"))?;
    let (from_min, to_min) = (parse_time(from)?, parse_time(to)?);
    if from_min == to_min {
        return Err(format!("{times_s:?} is an empty window"));
    }
    Ok(Window { days, from_min, to_min })
}

/// Parses a fixed UTC offset like `+08:00`, `-05:30` or `Z`.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    if s == "Z" || s == "UTC" {
        return Ok(0);
    }
    let sign = match s.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => return Err(format!("time zone {s:?} is not an offset like \"+08:00\"")),
    };
    let m = parse_time(&s[1..]).map_err(|_| format!("time zone {s:?} is not an offset like \"+08:00\""))?;
    Ok(sign * m as i32 * 60)
}

impl Schedule {
    /// Builds a schedule from config strings; `Err` names the first bad entry.
    pub fn parse(windows: &[String], timezone: &str) -> Result<Schedule, String> {
        Ok(Schedule { windows: windows.iter().map(|w| parse_window(w)).collect::<Result<_, _>>()?, offset_s: parse_offset(timezone)? })
    }

    /// Whether the zone is watched at `t`.
    pub fn is_active(&self, t: DateTime<Utc>) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local = t.with_timezone(&FixedOffset::east_opt(self.offset_s).unwrap_or(FixedOffset::east_opt(0).unwrap()));
        let day = local.weekday().num_days_from_monday() as usize;
        let prev = (day + 6) % 7;
        let min = local.hour() * 60 + local.minute();
        self.windows.iter().any(|w| {
            if w.from_min < w.to_min {
                w.days & (1 << day) != 0 && min >= w.from_min && min < w.to_min
            } else {
                // past midnight: the evening part today, or the morning part of yesterday's window
                (w.days & (1 << day) != 0 && min >= w.from_min) || (w.days & (1 << prev) != 0 && min < w.to_min)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        // given in China time (+08:00)
        FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekday_windows_in_local_time() {
        // 2026-11-23 is a Monday
        let s = Schedule::parse(&["mon-fri 07:00-22:00".into(), "sat,sun 09:00-18:00".into()], "+08:00").unwrap();
        assert!(s.is_active(at(2026, 11, 23, 7, 0)));
        assert!(!s.is_active(at(2026, 11, 23, 6, 59)));
        assert!(!s.is_active(at(2026, 11, 23, 22, 0)));
        assert!(!s.is_active(at(2026, 11, 28, 8, 0)), "Saturday 08:00");
        assert!(s.is_active(at(2026, 11, 29, 17, 59)), "Sunday 17:59");
    }

    #[test]
    fn windows_past_midnight_and_wrapping_day_ranges() {
        let s = Schedule::parse(&["fri-mon 22:00-06:00".into()], "+08:00").unwrap();
        assert!(s.is_active(at(2026, 11, 27, 23, 0)), "Friday night");
        assert!(s.is_active(at(2026, 11, 28, 5, 0)), "Saturday early morning, Friday's window");
        assert!(s.is_active(at(2026, 11, 24, 5, 0)), "Tuesday early morning, Monday's window");
        assert!(!s.is_active(at(2026, 11, 24, 23, 0)), "Tuesday night");
        assert!(Schedule::default().is_active(at(2026, 1, 1, 3, 0)), "no windows: always");
    }

    #[test]
    fn bad_entries_are_explained() {
        assert!(parse_window("monday 07:00-22:00").unwrap_err().contains("unknown day"));
        assert!(parse_window("mon 7-22").unwrap_err().contains("HH:MM"));
        assert!(parse_window("mon 25:00-26:00").unwrap_err().contains("out of range"));
        assert!(parse_window("mon-fri").unwrap_err().contains("DAYS HH:MM-HH:MM"));
        assert!(parse_offset("Asia/Shanghai").unwrap_err().contains("offset"));
        assert_eq!(parse_offset("-05:30").unwrap(), -(5 * 3600 + 30 * 60));
    }
}

//! Response times: per event raised → acknowledged → resolved (the re-check that found the
//! zone clear), and per day / kind / device the count, medians and the share acknowledged
//! within the target (5 minutes: officers on site within 5 minutes of an alert).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::EventRow;

/// The command centre's target from raised to acknowledged.
pub const TARGET_S: f64 = 300.0;

/// One event's milestones, in seconds after it was raised.
#[derive(Clone, Debug, Serialize)]
pub struct EventTimes {
    pub event_id: String,
    pub device_id: String,
    pub kind: String,
    pub raised_at: String,
    pub ack_s: Option<f64>,
    pub resolve_s: Option<f64>,
    pub acked_by: Option<String>,
}

/// One aggregate row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Aggregate {
    /// `day`, `kind` or `device`.
    pub by: String,
    pub key: String,
    pub events: usize,
    pub acked: usize,
    pub resolved: usize,
    pub median_ack_s: Option<f64>,
    pub median_resolve_s: Option<f64>,
    /// Acknowledged within [`TARGET_S`], of all events raised.
    pub within_target: f64,
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc))
}

fn secs(from: &DateTime<Utc>, to: Option<&String>) -> Option<f64> {
    let to = parse(to?)?;
    Some(((to - *from).num_milliseconds() as f64 / 1000.0).max(0.0))
}

/// Milestones of every raised event.
pub fn event_times(events: &[EventRow]) -> Vec<EventTimes> {
    events
        .iter()
        .filter_map(|e| {
            let raised_text = e.raised_at.as_ref()?;
            let raised = parse(raised_text)?;
            Some(EventTimes {
                event_id: e.event_id.clone(),
                device_id: e.device_id.clone(),
                kind: e.kind.clone(),
                raised_at: raised_text.clone(),
                ack_s: secs(&raised, e.acked_at.as_ref()),
                resolve_s: secs(&raised, e.resolved_at.as_ref()),
                acked_by: e.acked_by.clone(),
            })
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Aggregates per day (UTC date raised), kind and device, and `all`.
pub fn aggregate(times: &[EventTimes]) -> Vec<Aggregate> {
    let mut groups: BTreeMap<(String, String), Vec<&EventTimes>> = BTreeMap::new();
    for t in times {
        groups.entry(("all".into(), "all".into())).or_default().push(t);
        groups.entry(("day".into(), t.raised_at.get(..10).unwrap_or_default().to_string())).or_default().push(t);
        groups.entry(("kind".into(), t.kind.clone())).or_default().push(t);
        groups.entry(("device".into(), t.device_id.clone())).or_default().push(t);
    }
    let order = |by: &str| ["all", "day", "kind", "device"].iter().position(|b| *b == by).unwrap_or(9);
    let mut out: Vec<Aggregate> = groups
        .into_iter()
        .map(|((by, key), ts)| {
            let acks: Vec<f64> = ts.iter().filter_map(|t| t.ack_s).collect();
            let res: Vec<f64> = ts.iter().filter_map(|t| t.resolve_s).collect();
            Aggregate {
                by,
                key,
                events: ts.len(),
                acked: acks.len(),
                resolved: res.len(),
                within_target: acks.iter().filter(|s| **s <= TARGET_S).count() as f64 / ts.len() as f64,
                median_ack_s: median(acks),
                median_resolve_s: median(res),
            }
        })
        .collect();
    out.sort_by(|a, b| order(&a.by).cmp(&order(&b.by)).then(a.key.cmp(&b.key)));
    out
}

/// CSV: one line per event.
pub fn csv(times: &[EventTimes]) -> String {
    let mut s = String::from("event_id,device_id,kind,raised_at,ack_s,resolve_s,acked_by,acked_within_5min\n");
    let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
    let q = |v: &str| if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() };
    for t in times {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            q(&t.event_id),
            q(&t.device_id),
            q(&t.kind),
            t.raised_at,
            f(t.ack_s),
            f(t.resolve_s),
            q(t.acked_by.as_deref().unwrap_or_default()),
            t.ack_s.is_some_and(|s| s <= TARGET_S)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, kind: &str, raised: &str, acked: Option<&str>, resolved: Option<&str>) -> EventRow {
        EventRow {
            event_id: id.into(),
            device_id: "box-1".into(),
            camera_id: "c".into(),
            zone_id: "z".into(),
            kind: kind.into(),
            violation: String::new(),
            state: "end".into(),
            level: None,
            started_at: raised.into(),
            raised_at: Some(raised.into()),
            updated_at: raised.into(),
            last_seq: 1,
            acked_at: acked.map(Into::into),
            acked_by: acked.map(|_| "op".into()),
            ack_note: None,
            resolved_at: resolved.map(Into::into),
            recurred_at: None,
            integrity: None,
        }
    }

    #[test]
    fn milestones_medians_and_the_five_minute_share() {
        let events = vec![
            ev("a", "dumping", "2026-12-01T10:00:00Z", Some("2026-12-01T10:02:00Z"), Some("2026-12-01T10:30:00Z")),
            ev("b", "dumping", "2026-12-01T11:00:00Z", Some("2026-12-01T11:10:00Z"), None),
            ev("c", "flooding", "2026-12-02T09:00:00Z", None, None),
        ];
        let t = event_times(&events);
        assert_eq!(t[0].ack_s, Some(120.0));
        assert_eq!(t[0].resolve_s, Some(1800.0));
        let agg = aggregate(&t);
        let all = agg.iter().find(|a| a.by == "all").unwrap();
        assert_eq!((all.events, all.acked, all.resolved), (3, 2, 1));
        assert_eq!(all.median_ack_s, Some(360.0));
        assert!((all.within_target - 1.0 / 3.0).abs() < 1e-9);
        let dumping = agg.iter().find(|a| a.by == "kind" && a.key == "dumping").unwrap();
        assert_eq!(dumping.within_target, 0.5);
        assert_eq!(agg.iter().filter(|a| a.by == "day").count(), 2);
        let c = csv(&t);
        assert!(c.lines().nth(1).unwrap().ends_with(",120.0,1800.0,op,true"), "{c}");
        assert!(c.lines().nth(3).unwrap().ends_with(",,,,false"), "{c}");
    }
}

//! Cron schedules as upstream's CronJob controller reads them (`robfig/cron/v3`'s
//! `ParseStandard`): five fields (minute, hour, day of month, month, day of week) with
//! `*`/`?`, ranges, steps, lists and month/weekday names, or a descriptor (`@hourly`,
//! `@daily`, ..., `@every <duration>`); an optional `TZ=`/`CRON_TZ=` prefix. Next times
//! are computed in wall-clock time of an IANA time zone.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// How far ahead a schedule is searched before it is declared never to fire (robfig: five
/// years, e.g. for `0 0 30 2 *`).
const YEARS_AHEAD: i16 = 5;

#[derive(Clone, Debug)]
pub enum Spec {
    Fields(Fields),
    /// `@every <duration>`: a fixed delay, whole seconds.
    Every(i64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// The day fields were `*`/`?`: then both must match, else either (cron's rule).
    dom_star: bool,
    dow_star: bool,
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub spec: Spec,
    /// A zone from a `TZ=` prefix, which wins over the caller's.
    pub tz: Option<TimeZone>,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a schedule; the error reads like robfig's.
pub fn parse(schedule: &str) -> Result<Schedule, String> {
    let mut s = schedule.trim();
    if s.is_empty() {
        return Err("empty spec string".into());
    }
    let mut tz = None;
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        let (prefix, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let name = prefix.split_once('=').map(|x| x.1).unwrap_or_default();
        tz = Some(TimeZone::get(name).map_err(|e| format!("provided bad location {name}: {e}"))?);
        s = rest.trim();
    }
    let spec = if let Some(d) = s.strip_prefix('@') {
        match d {
            "yearly" | "annually" => Spec::Fields(fields("0 0 1 1 *")?),
            "monthly" => Spec::Fields(fields("0 0 1 * *")?),
            "weekly" => Spec::Fields(fields("0 0 * * 0")?),
            "daily" | "midnight" => Spec::Fields(fields("0 0 * * *")?),
            "hourly" => Spec::Fields(fields("0 * * * *")?),
            _ => match d.strip_prefix("every ") {
                Some(dur) => {
                    let secs = parse_duration(dur.trim())
                        .map_err(|e| format!("failed to parse duration {s}: {e}"))?;
                    Spec::Every(secs.max(1))
                }
                None => return Err(format!("unrecognized descriptor: {s}")),
            },
        }
    } else {
        Spec::Fields(fields(s)?)
    };
    Ok(Schedule { spec, tz })
}

fn fields(s: &str) -> Result<Fields, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {:?}",
            parts.len(),
            parts
        ));
    }
    let (minute, _) = field(parts[0], &MINUTE)?;
    let (hour, _) = field(parts[1], &HOUR)?;
    let (dom, dom_star) = field(parts[2], &DOM)?;
    let (month, _) = field(parts[3], &MONTH)?;
    let (dow, dow_star) = field(parts[4], &DOW)?;
    Ok(Fields {
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    })
}

/// One field: a bit per allowed value, and whether it was a bare `*`/`?`.
fn field(s: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for r in s.split(',') {
        let (rb, rs) = range(r, b)?;
        bits |= rb;
        star |= rs;
    }
    Ok((bits, star))
}

fn range(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut star) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, true)
    } else {
        let start = value(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => value(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, false)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = number(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok((bits, star))
}

fn value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    number(s)
}

fn number(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}: invalid syntax"))
}

/// A Go duration ("1h30m", "90s", "2m"), in whole seconds.
fn parse_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("invalid duration \"\"".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let num: f64 = rest[..n]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            unit => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

impl Fields {
    fn day_matches(&self, d: Date) -> bool {
        let dom = self.dom & (1 << d.day()) != 0;
        let dow = self.dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

impl Schedule {
    /// The first activation strictly after `after`, in `tz` (unless the schedule names its
    /// own); `None` if there is none within five years.
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let tz = self.tz.as_ref().unwrap_or(tz);
        let f = match &self.spec {
            Spec::Every(secs) => {
                return Timestamp::from_second(after.as_second() + secs).ok();
            }
            Spec::Fields(f) => f,
        };
        let start = tz.to_datetime(after);
        let start_minute = start.with().second(0).subsec_nanosecond(0).build().ok()?;
        let mut day = start.date();
        let last = day.year() + YEARS_AHEAD;
        while day.year() <= last {
            if f.month & (1 << day.month()) != 0 && f.day_matches(day) {
                for h in (0..24i8).filter(|h| f.hour & (1 << h) != 0) {
                    for m in (0..60i8).filter(|m| f.minute & (1 << m) != 0) {
                        let dt = DateTime::from_parts(day, jiff::civil::time(h, m, 0, 0));
                        if dt < start_minute {
                            continue;
                        }
                        let Ok(z) = tz.to_ambiguous_zoned(dt).compatible() else {
                            continue;
                        };
                        if z.timestamp() > after {
                            return Some(z.timestamp());
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

/// `t` in `tz` as Go's `time.RFC3339` formats it (`Z` for a zero offset).
pub fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    let offset = z.offset().seconds();
    let base = z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if offset == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", z.strftime("%:z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(sched: &str, after: &str, tz: &str) -> String {
        let tz = TimeZone::get(tz).unwrap();
        let t = parse(sched).unwrap().next(ts(after), &tz).unwrap();
        rfc3339(t, &tz)
    }

    #[test]
    fn standard_fields_and_descriptors() {
        assert_eq!(
            next("*/1 * * * *", "2024-03-01T10:00:30Z", "UTC"),
            "2024-03-01T10:01:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:15:00Z", "UTC"),
            "2024-03-01T10:30:00Z"
        );
        assert_eq!(
            next("30 2 * * 1-5", "2024-03-01T10:00:00Z", "UTC"),
            "2024-03-04T02:30:00Z"
        );
        assert_eq!(
            next("0 0 1 jan,JUL *", "2024-03-01T10:00:00Z", "UTC"),
            "2024-07-01T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2024-03-01T10:00:00Z", "UTC"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-03-01T10:00:00Z", "UTC"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-03-01T10:00:00Z", "UTC"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 90s", "2024-03-01T10:00:00Z", "UTC"),
            "2024-03-01T10:01:30Z"
        );
        // Day of month OR day of week when both are restricted; AND when one is `*`.
        assert_eq!(
            next("0 0 13 * fri", "2024-09-01T00:00:00Z", "UTC"),
            "2024-09-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * fri", "2024-09-01T00:00:00Z", "UTC"),
            "2024-09-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2024-03-01T00:00:00Z", "UTC"),
            "2028-02-29T00:00:00Z"
        );
        assert!(parse("0 0 30 2 *")
            .unwrap()
            .next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC)
            .is_none());
    }

    #[test]
    fn time_zones_follow_wall_clock_across_dst() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
        let tz = TimeZone::get("America/New_York").unwrap();
        let s = parse("0 9 * * *").unwrap();
        let t = s.next(ts("2024-03-09T15:00:00Z"), &tz).unwrap();
        assert_eq!(t, ts("2024-03-10T13:00:00Z"));
        assert_eq!(rfc3339(t, &tz), "2024-03-10T09:00:00-04:00");
        let t = s.next(ts("2024-01-09T15:00:00Z"), &tz).unwrap();
        assert_eq!(t, ts("2024-01-10T14:00:00Z"));
        // 02:30 does not exist on the spring-forward day: it runs once, later that day.
        let s = parse("30 2 * * *").unwrap();
        let t = s.next(ts("2024-03-10T05:00:00Z"), &tz).unwrap();
        assert_eq!(t, ts("2024-03-10T07:30:00Z"));
        // A TZ= prefix names the zone itself.
        let s = parse("TZ=Asia/Tokyo 0 9 * * *").unwrap();
        assert_eq!(
            s.next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC).unwrap(),
            ts("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn errors_read_like_robfig() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(
            err("* * * *"),
            r#"expected exactly 5 fields, found 4: ["*", "*", "*", "*"]"#
        );
        assert_eq!(
            err("60 * * * *"),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            err("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: invalid syntax"
        );
        assert_eq!(err("@sometimes"), "unrecognized descriptor: @sometimes");
        assert!(err("TZ=Nowhere/City * * * * *").starts_with("provided bad location"));
        assert_eq!(err(""), "empty spec string");
    }
}

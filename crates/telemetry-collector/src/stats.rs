//! Aggregated views for the dashboard and `/api/stats/*`: what each chart and
//! table shows, and the range it covers.
//!
//! Every view is answered from the rollup tables (see [`crate::rollup`]) or
//! from an indexed slice of the events table (usage and error reports of a
//! range), never by scanning every event: with a million events stored each
//! view still answers in milliseconds.
//!
//! Days are UTC calendar days of the event's own timestamp (the receive time
//! when the sender gave none), written `YYYY-MM-DD`; weeks are named by their
//! Monday. A [`StatsRange`] is inclusive at both ends.
//!
//! ```
//! use telemetry_collector::stats::StatsRange;
//! let range = StatsRange::days_ending("2024-05-31", 30).unwrap().product("chromadb");
//! assert_eq!(range.from, "2024-05-02");
//! assert_eq!(range.product.as_deref(), Some("chromadb"));
//! assert!(range.contains("2024-05-31") && !range.contains("2024-06-01"));
//! ```

use serde::Serialize;
use serde_json::Value;
use time::{Date, Duration, Month};

use crate::store::{ErrorGroup, StoredEvent};

/// The days and product a view covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRange {
    /// First day, `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// Last day, `YYYY-MM-DD`, inclusive.
    pub to: String,
    /// Only this product (`properties.product`), or every product.
    pub product: Option<String>,
}

/// Why a range could not be made from what a request gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError(pub String);

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RangeError {}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(day: &str) -> Result<Date, RangeError> {
    // By hand: `time`'s format-description macros are a feature this crate
    // does not enable.
    let bad = || RangeError(format!("{day:?} is not a day; write it YYYY-MM-DD"));
    let b = day.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return Err(bad());
    }
    let year: i32 = day[0..4].parse().map_err(|_| bad())?;
    let month: u8 = day[5..7].parse().map_err(|_| bad())?;
    let dom: u8 = day[8..10].parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, dom).map_err(|_| bad())
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The Monday of `day`'s ISO week, `YYYY-MM-DD`: the name of a week in
/// [`WeekIds`].
///
/// ```
/// use telemetry_collector::stats::{parse_day, week_of};
/// assert_eq!(week_of(parse_day("2024-05-05").unwrap()), "2024-04-29"); // a Sunday
/// ```
pub fn week_of(day: Date) -> String {
    let back = i64::from(day.weekday().number_days_from_monday());
    format_day(day - Duration::days(back))
}

impl StatsRange {
    /// `days` days ending with `to` (inclusive).
    pub fn days_ending(to: &str, days: u32) -> Result<StatsRange, RangeError> {
        let end = parse_day(to)?;
        let start = end - Duration::days(i64::from(days.max(1)) - 1);
        Ok(StatsRange {
            from: format_day(start),
            to: format_day(end),
            product: None,
        })
    }

    /// From `from` to `to`, both `YYYY-MM-DD`, `from` not after `to`.
    pub fn between(from: &str, to: &str) -> Result<StatsRange, RangeError> {
        let (start, end) = (parse_day(from)?, parse_day(to)?);
        if start > end {
            return Err(RangeError(format!(
                "the range starts ({from}) after it ends ({to})"
            )));
        }
        Ok(StatsRange {
            from: format_day(start),
            to: format_day(end),
            product: None,
        })
    }

    /// Keeps only `product`'s events.
    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into());
        self
    }

    /// Whether `day` (`YYYY-MM-DD`) is inside the range.
    pub fn contains(&self, day: &str) -> bool {
        self.from.as_str() <= day && day <= self.to.as_str()
    }
}

/// Distinct ids on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayIds {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Distinct ids that sent at least one event that day.
    pub active: u64,
    /// Of those, ids whose first event ever was that day.
    pub new: u64,
}

/// Distinct ids in one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekIds {
    /// The week's Monday, `YYYY-MM-DD`.
    pub week: String,
    /// Distinct ids that sent at least one event in the week's days inside the range.
    pub active: u64,
}

/// `GET /api/stats/ids`: active and new distinct ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdStats {
    /// Distinct ids active anywhere in the range.
    pub active_in_range: u64,
    /// Per day with any activity, oldest first.
    pub daily: Vec<DayIds>,
    /// Per week with any activity, oldest first.
    pub weekly: Vec<WeekIds>,
}

/// Installs on one product version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// `properties.product`.
    pub product: String,
    /// `properties.product_version`.
    pub version: String,
    /// Distinct ids whose newest event in the range came from this version.
    pub installs: u64,
}

/// Installs on one product version on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayVersion {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `properties.product`.
    pub product: String,
    /// `properties.product_version`.
    pub version: String,
    /// Distinct ids active that day whose last event of the day came from this version.
    pub installs: u64,
}

/// `GET /api/stats/versions`: versions in use and how that moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionStats {
    /// Installs per version, by the newest event of each install in the range;
    /// most installs first.
    pub now: Vec<VersionCount>,
    /// Per day, oldest first, then by product and version.
    pub daily: Vec<DayVersion>,
}

/// One value of an environment property and the installs that have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    /// The value (`unknown` when installs did not send it).
    pub value: String,
    /// Distinct ids active in the range whose newest event had this value.
    pub installs: u64,
}

/// `GET /api/stats/environment`: where the installs active in the range run,
/// each list with most installs first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnvironmentStats {
    /// Installs counted (active in the range).
    pub installs: u64,
    /// `properties.os` (or PostHog's `$os`).
    pub os: Vec<Share>,
    /// `properties.arch`.
    pub arch: Vec<Share>,
    /// `properties.runtime` and `runtime_version`, e.g. `python 3.12.1`.
    pub runtime: Vec<Share>,
    /// `properties.in_container`: `yes`, `no` or `unknown`.
    pub container: Vec<Share>,
    /// `properties.in_ci`: `yes`, `no` or `unknown`.
    pub ci: Vec<Share>,
    /// `properties.in_jupyter`: `yes`, `no` or `unknown`.
    pub jupyter: Vec<Share>,
}

/// Events of one name over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTotal {
    /// Event name.
    pub event: String,
    /// Stored events.
    pub events: u64,
    /// Occurrences they stand for (the sum of `batch_size`).
    pub occurrences: i64,
}

/// Events of one name on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayEvent {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Event name.
    pub event: String,
    /// Stored events.
    pub events: u64,
    /// Occurrences they stand for (the sum of `batch_size`).
    pub occurrences: i64,
}

/// `GET /api/stats/events`: events per name, over the range and per day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventStats {
    /// Per name, most events first.
    pub totals: Vec<EventTotal>,
    /// Per day and name, oldest first.
    pub daily: Vec<DayEvent>,
}

/// One value of one property of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueCount {
    /// The value as text (`true`/`false` for booleans, [`NUMBER`] for numbers,
    /// [`LONG_VALUE`] for strings longer than [`MAX_VALUE_CHARS`]).
    pub value: String,
    /// Events with this value.
    pub events: u64,
    /// Occurrences they stand for (the sum of `batch_size`).
    pub occurrences: i64,
}

/// The sum of a numeric property on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySum {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The sum of the property's values that day (e.g. Chroma's `add_amount`).
    pub sum: f64,
}

/// `GET /api/stats/properties?event=&property=`: one event's properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PropertyStats {
    /// The event.
    pub event: String,
    /// The property broken down (empty when none was chosen).
    pub property: String,
    /// Every property the event has in the range, sorted (what can be chosen).
    pub properties: Vec<String>,
    /// The chosen property's values, most events first.
    pub values: Vec<ValueCount>,
    /// For a numeric property, its sum per day, oldest first.
    pub daily_sums: Vec<DaySum>,
}

/// Value recorded for a numeric property (summed rather than broken down).
pub const NUMBER: &str = "(number)";

/// Value recorded for a string longer than [`MAX_VALUE_CHARS`].
pub const LONG_VALUE: &str = "(long text)";

/// Longest string value kept as itself in the property rollup.
pub const MAX_VALUE_CHARS: usize = 64;

/// One operation across the installs' latest usage reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationStats {
    /// The timing family's name in the report (`operations.<name>`).
    pub operation: String,
    /// Installs whose latest report has it.
    pub installs: u64,
    /// Calls summed over those reports.
    pub calls: u64,
    /// Failed calls summed over those reports.
    pub failures: u64,
    /// `failures / calls` (0 with no calls).
    pub fail_ratio: f64,
    /// Percentiles of the per-install average latency, microseconds.
    pub avg_micros_p50: f64,
    /// 90th percentile of the per-install averages.
    pub avg_micros_p90: f64,
    /// 99th percentile of the per-install averages.
    pub avg_micros_p99: f64,
}

/// The newest usage report of one install in the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestReport {
    /// The install.
    pub distinct_id: String,
    /// `properties.product`.
    pub product: String,
    /// `properties.product_version`.
    pub version: String,
    /// The report's timestamp as sent.
    pub timestamp: String,
    /// The report (the event's properties).
    pub report: Value,
}

/// `GET /api/stats/usage`: the latest usage report per install and the
/// operations across them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageStats {
    /// Per install, newest report first.
    pub reports: Vec<LatestReport>,
    /// Per operation, most calls first.
    pub operations: Vec<OperationStats>,
}

impl UsageStats {
    /// Builds the view from each install's newest report in the range.
    ///
    /// ```
    /// use serde_json::json;
    /// use telemetry_collector::stats::UsageStats;
    /// use telemetry_collector::StoredEvent;
    /// let report = |id: &str, avg: u64| StoredEvent {
    ///     uuid: String::new(), event: "usage_report".into(), distinct_id: id.into(),
    ///     timestamp: "2024-05-01T10:00:00Z".into(), received_at: String::new(),
    ///     properties: json!({"operations": {"query": {"count": 10, "fail_count": 1,
    ///                                                  "avg_duration_micros": avg}}}),
    /// };
    /// let usage = UsageStats::from_reports(vec![report("a", 100), report("b", 300)]);
    /// let query = &usage.operations[0];
    /// assert_eq!((query.installs, query.calls, query.failures), (2, 20, 2));
    /// assert_eq!(query.avg_micros_p50, 200.0);
    /// ```
    pub fn from_reports(reports: Vec<StoredEvent>) -> UsageStats {
        use std::collections::BTreeMap;
        let mut per_operation: BTreeMap<String, (u64, u64, Vec<f64>)> = BTreeMap::new();
        let mut latest = Vec::with_capacity(reports.len());
        for e in reports {
            if let Some(ops) = e.properties.get("operations").and_then(Value::as_object) {
                for (name, op) in ops {
                    let number =
                        |k: &str| op.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
                    let entry = per_operation.entry(name.clone()).or_default();
                    entry.0 += number("count").map_or(0, |v| v.max(0.0) as u64);
                    entry.1 += number("fail_count").map_or(0, |v| v.max(0.0) as u64);
                    if let Some(avg) = number("avg_duration_micros") {
                        entry.2.push(avg);
                    }
                }
            }
            let text = |k: &str| {
                e.properties
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or(crate::store::UNKNOWN)
                    .to_owned()
            };
            latest.push(LatestReport {
                product: text("product"),
                version: text("product_version"),
                distinct_id: e.distinct_id,
                timestamp: e.timestamp,
                report: e.properties,
            });
        }
        latest.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        let mut operations: Vec<OperationStats> = per_operation
            .into_iter()
            .map(|(operation, (calls, failures, mut avgs))| {
                avgs.sort_by(f64::total_cmp);
                OperationStats {
                    installs: avgs.len() as u64,
                    fail_ratio: if calls == 0 {
                        0.0
                    } else {
                        failures as f64 / calls as f64
                    },
                    avg_micros_p50: percentile(&avgs, 0.50),
                    avg_micros_p90: percentile(&avgs, 0.90),
                    avg_micros_p99: percentile(&avgs, 0.99),
                    operation,
                    calls,
                    failures,
                }
            })
            .collect();
        operations.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.operation.cmp(&b.operation)));
        UsageStats {
            reports: latest,
            operations,
        }
    }
}

/// The `q` quantile of sorted values, interpolating between neighbours (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let at = q * (n - 1) as f64;
            let (low, high) = (at.floor() as usize, at.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
        }
    }
}

/// `GET /api/stats/crashes`: error reports of the range grouped by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CrashStats {
    /// Error reports in the range.
    pub reports: u64,
    /// Groups, most reports first.
    pub groups: Vec<ErrorGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_and_inclusive() {
        let r = StatsRange::between("2024-01-30", "2024-02-02").unwrap();
        assert!(r.contains("2024-01-30") && r.contains("2024-02-02"));
        assert!(!r.contains("2024-01-29"));
        assert!(StatsRange::between("2024-02-02", "2024-01-30").is_err());
        assert!(StatsRange::between("2024-02-30", "2024-03-01").is_err());
        assert!(StatsRange::between("yesterday", "2024-03-01").is_err());
        assert_eq!(
            StatsRange::days_ending("2024-03-01", 1).unwrap().from,
            "2024-03-01"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(week_of(parse_day("2024-04-29").unwrap()), "2024-04-29");
        assert_eq!(week_of(parse_day("2025-01-01").unwrap()), "2024-12-30");
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 0.5), 30.0);
        assert_eq!(percentile(&v, 0.9), 46.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

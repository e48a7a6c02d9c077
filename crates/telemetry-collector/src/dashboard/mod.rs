//! The dashboard: the integrator's view of what the collector holds — active
//! and new distinct ids, versions, environments, events and their properties,
//! usage reports, crashes — as server-rendered pages, plus the same data as
//! JSON and CSV under `/api/stats/*` (the HTTP side is in `server::pages`).
//!
//! | view | page | JSON | tables (`?table=` of `/api/stats/<view>.csv`) |
//! |---|---|---|---|
//! | distinct ids | `/` | `/api/stats/ids` | `ids-daily`, `ids-weekly` |
//! | versions | `/versions` | `/api/stats/versions` | `versions-now`, `versions-daily` |
//! | environment | `/environment` | `/api/stats/environment` | `env-os`, `env-arch`, `env-runtime`, `env-container`, `env-ci`, `env-jupyter` |
//! | events | `/events` | `/api/stats/events`, `/api/stats/properties` | `events-totals`, `events-daily`, `property-values`, `property-sums` |
//! | usage reports | `/usage` | `/api/stats/usage` | `usage-operations`, `usage-reports` |
//! | crashes | `/crashes` | `/api/stats/crashes` | `crash-groups` |
//!
//! Every page and query takes `range` (7, 30, 90 or 365 days ending today,
//! UTC; default 30) or `range=custom` with `from` and `to` (`YYYY-MM-DD`,
//! inclusive; `from`/`to` alone work too), and `product`. The page's form also
//! sends the dates it showed (`shown_from`, `shown_to`): dates typed over them
//! win over the preset still selected. The events view and
//! `/api/stats/properties` take `event` and `property`.
//!
//! Charts are SVG drawn here rather than by a vendored chart library: the
//! page then runs no script at all (the Content-Security-Policy allows none),
//! nothing is fetched after the HTML, and there is no third-party code to
//! keep patched; the charts needed (lines over days, bars) are small.
//!
//! ```
//! use telemetry_collector::dashboard::{Params, View};
//! let today = telemetry_collector::stats::parse_day("2024-05-31").unwrap();
//! let p = Params::from_pairs(&[("range", "7"), ("product", "qdrant")], today).unwrap();
//! assert_eq!((p.range.from.as_str(), p.range.to.as_str()), ("2024-05-25", "2024-05-31"));
//! assert_eq!(View::from_api_name("versions"), Some(View::Versions));
//! ```

pub mod chart;
pub mod page;
pub mod table;

use time::{Date, Duration};

use crate::error::Error;
use crate::stats::{
    format_day, parse_day, CrashStats, EnvironmentStats, EventStats, IdStats, PropertyStats,
    StatsRange, UsageStats, VersionStats,
};
use crate::store::Store;
use table::{Cell, Table, Unit};

/// The range presets the form offers, in days ending today.
pub const PRESET_DAYS: [u32; 4] = [7, 30, 90, 365];

/// The range when a request names none.
pub const DEFAULT_DAYS: u32 = 30;

/// The longest range a request may ask for (ten years): a chart has a point
/// slot per day, so an absurd range would cost memory for nothing.
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// One page of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Active and new distinct ids (`/`).
    Ids,
    /// Versions in use (`/versions`).
    Versions,
    /// Where installs run (`/environment`).
    Environment,
    /// Events by name and one event's property (`/events`).
    Events,
    /// Usage reports (`/usage`).
    Usage,
    /// Error reports (`/crashes`).
    Crashes,
}

impl View {
    /// Every view, in navigation order.
    pub const ALL: [View; 6] = [
        View::Ids,
        View::Versions,
        View::Environment,
        View::Events,
        View::Usage,
        View::Crashes,
    ];

    /// The page's path.
    pub fn path(self) -> &'static str {
        match self {
            View::Ids => "/",
            View::Versions => "/versions",
            View::Environment => "/environment",
            View::Events => "/events",
            View::Usage => "/usage",
            View::Crashes => "/crashes",
        }
    }

    /// The heading and navigation text.
    pub fn title(self) -> &'static str {
        match self {
            View::Ids => "Distinct ids",
            View::Versions => "Versions",
            View::Environment => "Environment",
            View::Events => "Events",
            View::Usage => "Usage reports",
            View::Crashes => "Crashes",
        }
    }

    /// The name under `/api/stats/`.
    pub fn api_name(self) -> &'static str {
        match self {
            View::Ids => "ids",
            View::Versions => "versions",
            View::Environment => "environment",
            View::Events => "events",
            View::Usage => "usage",
            View::Crashes => "crashes",
        }
    }

    /// The view whose API name is `name`.
    pub fn from_api_name(name: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.api_name() == name)
    }
}

/// How the range was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeChoice {
    /// The last N days, ending today.
    Days(u32),
    /// Explicit `from` and `to`.
    Custom,
}

impl RangeChoice {
    /// The value of `range=` that chooses it again.
    pub fn query_value(self) -> String {
        match self {
            RangeChoice::Days(n) => n.to_string(),
            RangeChoice::Custom => "custom".into(),
        }
    }
}

/// A request's range, product, event and property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Days and product.
    pub range: StatsRange,
    /// How the days were chosen (for the form).
    pub choice: RangeChoice,
    /// The events view's event.
    pub event: Option<String>,
    /// The events view's property.
    pub property: Option<String>,
}

impl Params {
    /// Reads `range`, `from`, `to`, `product`, `event`, `property` (the first
    /// of a repeated name; empty values count as absent), `today` being the
    /// last day of a preset. A bad value is an error saying which and why.
    pub fn from_pairs(pairs: &[(&str, &str)], today: Date) -> Result<Params, String> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let (from, to) = (get("from"), get("to"));
        // The form sends a preset and the dates it showed; dates typed over
        // those choose themselves.
        let typed = from.is_some()
            && to.is_some()
            && get("shown_from").is_some()
            && (from != get("shown_from") || to != get("shown_to"));
        let (range, choice) = match (get("range").filter(|_| !typed), from, to) {
            (Some(days), _, _) if days != "custom" => {
                let n: u32 = days
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_RANGE_DAYS as u32).contains(n))
                    .ok_or_else(|| {
                        format!("\"range\" must be a number of days from 1 to {MAX_RANGE_DAYS}, or \"custom\"; got {days:?}")
                    })?;
                (
                    StatsRange::days_ending(&format_day(today), n),
                    RangeChoice::Days(n),
                )
            }
            (_, Some(from), Some(to)) => (StatsRange::between(from, to), RangeChoice::Custom),
            (Some(_), _, _) => {
                return Err("\"range=custom\" needs both \"from\" and \"to\" (YYYY-MM-DD)".into())
            }
            (None, None, None) => (
                StatsRange::days_ending(&format_day(today), DEFAULT_DAYS),
                RangeChoice::Days(DEFAULT_DAYS),
            ),
            (None, _, _) => {
                return Err("give both \"from\" and \"to\" (YYYY-MM-DD), or \"range\"".into())
            }
        };
        let mut range = range.map_err(|e| e.to_string())?;
        let span = (parse_day(&range.to).map_err(|e| e.0)?
            - parse_day(&range.from).map_err(|e| e.0)?)
        .whole_days()
            + 1;
        if span > MAX_RANGE_DAYS {
            return Err(format!(
                "the range spans {span} days; at most {MAX_RANGE_DAYS} are shown at once"
            ));
        }
        range.product = get("product").map(str::to_owned);
        Ok(Params {
            range,
            choice,
            event: get("event").map(str::to_owned),
            property: get("property").map(str::to_owned),
        })
    }

    /// `range=…&from=…&to=…&product=…`, URL-encoded: the filters links carry.
    pub fn range_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("range", &self.choice.query_value());
        if self.choice == RangeChoice::Custom {
            q.append_pair("from", &self.range.from);
            q.append_pair("to", &self.range.to);
        }
        if let Some(p) = &self.range.product {
            q.append_pair("product", p);
        }
        q.finish()
    }

    /// [`Params::range_query`] plus the event and property.
    pub fn view_query(&self) -> String {
        let mut q = self.range_query();
        let mut extra = form_urlencoded::Serializer::new(String::new());
        if let Some(e) = &self.event {
            extra.append_pair("event", e);
        }
        if let Some(p) = &self.property {
            extra.append_pair("property", p);
        }
        let extra = extra.finish();
        if !extra.is_empty() {
            q.push('&');
            q.push_str(&extra);
        }
        q
    }
}

/// Every day of `range`, oldest first.
pub fn day_list(range: &StatsRange) -> Vec<String> {
    let (Ok(mut day), Ok(end)) = (parse_day(&range.from), parse_day(&range.to)) else {
        return Vec::new();
    };
    let mut days = Vec::new();
    while day <= end && days.len() < MAX_RANGE_DAYS as usize {
        days.push(format_day(day));
        day += Duration::days(1);
    }
    days
}

/// A view's data, as the store answered it.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewData {
    /// `/`.
    Ids(IdStats),
    /// `/versions`.
    Versions(VersionStats),
    /// `/environment`.
    Environment(EnvironmentStats),
    /// `/events`: the events and, once an event is known, its property.
    Events {
        /// Events by name.
        events: EventStats,
        /// The chosen (or busiest) event's chosen (or first) property.
        property: Option<PropertyStats>,
    },
    /// `/usage`.
    Usage(UsageStats),
    /// `/crashes`.
    Crashes(CrashStats),
}

/// Asks the store for `view`'s data. On the events view without an event,
/// the busiest event is shown, and without a property its first one.
pub fn load(store: &Store, view: View, params: &Params) -> Result<ViewData, Error> {
    let range = &params.range;
    Ok(match view {
        View::Ids => ViewData::Ids(store.id_stats(range)?),
        View::Versions => ViewData::Versions(store.version_stats(range)?),
        View::Environment => ViewData::Environment(store.environment_stats(range)?),
        View::Events => {
            let events = store.event_stats(range)?;
            let event = params
                .event
                .clone()
                .or_else(|| events.totals.first().map(|t| t.event.clone()));
            let property = match event {
                Some(event) => Some(property_stats(
                    store,
                    range,
                    &event,
                    params.property.as_deref(),
                )?),
                None => None,
            };
            ViewData::Events { events, property }
        }
        View::Usage => ViewData::Usage(store.usage_stats(range)?),
        View::Crashes => ViewData::Crashes(store.crash_stats(range)?),
    })
}

/// One event's property; without a chosen property, its first one.
pub fn property_stats(
    store: &Store,
    range: &StatsRange,
    event: &str,
    property: Option<&str>,
) -> Result<PropertyStats, Error> {
    let stats = store.property_stats(range, event, property)?;
    match (property, stats.properties.first()) {
        (None, Some(first)) => {
            let first = first.clone();
            store.property_stats(range, event, Some(&first))
        }
        _ => Ok(stats),
    }
}

/// The tables of a view: what the page lists, and what its CSV links download.
pub fn tables(data: &ViewData) -> Vec<Table> {
    let mut out = Vec::new();
    match data {
        ViewData::Ids(ids) => {
            let mut daily = Table::new("ids-daily", &["day", "active", "new"]);
            for d in &ids.daily {
                daily.push(vec![
                    Cell::text(&d.day),
                    Cell::int(d.active),
                    Cell::int(d.new),
                ]);
            }
            let mut weekly = Table::new("ids-weekly", &["week", "active"]);
            for w in &ids.weekly {
                weekly.push(vec![Cell::text(&w.week), Cell::int(w.active)]);
            }
            out.extend([daily, weekly]);
        }
        ViewData::Versions(v) => {
            let mut now = Table::new("versions-now", &["product", "version", "installs"]);
            for r in &v.now {
                now.push(vec![
                    Cell::text(&r.product),
                    Cell::text(&r.version),
                    Cell::int(r.installs),
                ]);
            }
            let mut daily =
                Table::new("versions-daily", &["day", "product", "version", "installs"]);
            for r in &v.daily {
                daily.push(vec![
                    Cell::text(&r.day),
                    Cell::text(&r.product),
                    Cell::text(&r.version),
                    Cell::int(r.installs),
                ]);
            }
            out.extend([now, daily]);
        }
        ViewData::Environment(env) => {
            for (name, shares) in [
                ("env-os", &env.os),
                ("env-arch", &env.arch),
                ("env-runtime", &env.runtime),
                ("env-container", &env.container),
                ("env-ci", &env.ci),
                ("env-jupyter", &env.jupyter),
            ] {
                let mut t = Table::new(name, &["value", "installs"]);
                for s in shares {
                    t.push(vec![Cell::text(&s.value), Cell::int(s.installs)]);
                }
                out.push(t);
            }
        }
        ViewData::Events { events, property } => {
            let mut totals = Table::new("events-totals", &["event", "events", "occurrences"]);
            for t in &events.totals {
                totals.push(vec![
                    Cell::text(&t.event),
                    Cell::int(t.events),
                    Cell::int(t.occurrences),
                ]);
            }
            let mut daily = Table::new("events-daily", &["day", "event", "events", "occurrences"]);
            for d in &events.daily {
                daily.push(vec![
                    Cell::text(&d.day),
                    Cell::text(&d.event),
                    Cell::int(d.events),
                    Cell::int(d.occurrences),
                ]);
            }
            let mut values = Table::new("property-values", &["value", "events", "occurrences"]);
            let mut sums = Table::new("property-sums", &["day", "sum"]);
            if let Some(p) = property {
                for v in &p.values {
                    values.push(vec![
                        Cell::text(&v.value),
                        Cell::int(v.events),
                        Cell::int(v.occurrences),
                    ]);
                }
                for s in &p.daily_sums {
                    sums.push(vec![Cell::text(&s.day), Cell::Float(s.sum, Unit::Plain)]);
                }
            }
            out.extend([totals, daily, values, sums]);
        }
        ViewData::Usage(usage) => {
            let mut ops = Table::new(
                "usage-operations",
                &[
                    "operation",
                    "installs",
                    "calls",
                    "failures",
                    "fail_ratio",
                    "avg_micros_p50",
                    "avg_micros_p90",
                    "avg_micros_p99",
                ],
            );
            for o in &usage.operations {
                ops.push(vec![
                    Cell::text(&o.operation),
                    Cell::int(o.installs),
                    Cell::int(o.calls),
                    Cell::int(o.failures),
                    Cell::Float(o.fail_ratio, Unit::Percent),
                    Cell::Float(o.avg_micros_p50, Unit::Micros),
                    Cell::Float(o.avg_micros_p90, Unit::Micros),
                    Cell::Float(o.avg_micros_p99, Unit::Micros),
                ]);
            }
            let mut reports = Table::new(
                "usage-reports",
                &["distinct_id", "product", "version", "timestamp"],
            );
            for r in &usage.reports {
                reports.push(vec![
                    Cell::text(&r.distinct_id),
                    Cell::text(&r.product),
                    Cell::text(&r.version),
                    Cell::text(&r.timestamp),
                ]);
            }
            out.extend([ops, reports]);
        }
        ViewData::Crashes(crashes) => {
            let mut groups = Table::new(
                "crash-groups",
                &[
                    "fingerprint",
                    "count",
                    "installs",
                    "first_seen",
                    "last_seen",
                    "versions",
                    "suppressed",
                ],
            );
            for g in &crashes.groups {
                groups.push(vec![
                    Cell::text(&g.fingerprint),
                    Cell::int(g.count),
                    Cell::int(g.installs),
                    Cell::text(&g.first_seen),
                    Cell::text(&g.last_seen),
                    Cell::text(g.versions.join(" ")),
                    Cell::int(g.suppressed),
                ]);
            }
            out.push(groups);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        parse_day("2024-05-31").unwrap()
    }

    #[test]
    fn params_defaults_presets_custom_and_errors() {
        let p = Params::from_pairs(&[], today()).unwrap();
        assert_eq!(
            (p.range.from.as_str(), p.choice),
            ("2024-05-02", RangeChoice::Days(30))
        );
        // A preset wins over the dates the form also sends...
        let p = Params::from_pairs(
            &[("range", "7"), ("from", "2020-01-01"), ("to", "2020-02-01")],
            today(),
        )
        .unwrap();
        assert_eq!(p.range.from, "2024-05-25");
        let form = |from, to| {
            let shown = [("shown_from", "2024-05-02"), ("shown_to", "2024-05-31")];
            let mut pairs = vec![("range", "7"), ("from", from), ("to", to)];
            pairs.extend(shown);
            Params::from_pairs(&pairs, today()).unwrap()
        };
        // ... unless they are not the ones the form showed: typed, they choose.
        assert_eq!(form("2024-05-02", "2024-05-31").range.from, "2024-05-25");
        let typed = form("2024-04-01", "2024-05-31");
        assert_eq!(typed.range.from, "2024-04-01");
        assert_eq!(typed.choice, RangeChoice::Custom);
        let p = Params::from_pairs(
            &[
                ("range", "custom"),
                ("from", "2024-01-01"),
                ("to", "2024-01-31"),
                ("product", ""),
            ],
            today(),
        )
        .unwrap();
        assert_eq!(
            (p.range.to.as_str(), p.range.product.clone()),
            ("2024-01-31", None)
        );
        assert_eq!(
            p.range_query(),
            "range=custom&from=2024-01-01&to=2024-01-31"
        );
        for bad in [
            vec![("range", "0")],
            vec![("range", "abc")],
            vec![("range", "custom")],
            vec![("from", "2024-01-01")],
            vec![("from", "2024-02-01"), ("to", "2024-01-01")],
            vec![("from", "0001-01-01"), ("to", "9999-12-31")],
        ] {
            assert!(Params::from_pairs(&bad, today()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn queries_are_url_encoded() {
        let p = Params::from_pairs(&[("product", "a&b=c"), ("event", "<e>")], today()).unwrap();
        assert_eq!(p.view_query(), "range=30&product=a%26b%3Dc&event=%3Ce%3E");
    }

    #[test]
    fn day_list_covers_the_range() {
        let r = StatsRange::between("2024-02-27", "2024-03-01").unwrap();
        assert_eq!(
            day_list(&r),
            ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]
        );
    }
}

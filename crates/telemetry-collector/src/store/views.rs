//! The stats views and the summary, answered from the rollup tables with SQL
//! written once for both databases (`?N` placeholders, which the PostgreSQL
//! backend turns into `$N`; `CAST(? AS TEXT)` so PostgreSQL knows the type of
//! an argument that may be NULL; `CAST(SUM(..) AS BIGINT)` because its SUM of
//! a BIGINT is NUMERIC). Every list is sorted here in Rust, with ties broken by
//! name (byte order), so both databases answer identically whatever their
//! collation.

use std::collections::BTreeMap;

use super::{Backend, Cell, Col, EventCounts, Summary};
use crate::error::Error;
use crate::stats::{
    DayEvent, DayIds, DaySum, DayVersion, EnvironmentStats, EventStats, EventTotal, IdStats,
    PropertyStats, Share, StatsRange, ValueCount, VersionCount, VersionStats, WeekIds, NUMBER,
};

/// The range's days and product on a table with `day` and `product` columns
/// (arguments 1, 2 and 3).
const IN_RANGE: &str = "day BETWEEN ?1 AND ?2 AND (CAST(?3 AS TEXT) IS NULL OR product = ?3)";

fn range_args(range: &StatsRange) -> Vec<Option<&str>> {
    vec![
        Some(range.from.as_str()),
        Some(range.to.as_str()),
        range.product.as_deref(),
    ]
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Real(f) => f.to_string(),
            Cell::Null => String::new(),
        }
    }

    fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            Cell::Real(f) => *f as i64,
            _ => 0,
        }
    }

    fn count(&self) -> u64 {
        self.int().max(0) as u64
    }

    fn real(&self) -> f64 {
        match self {
            Cell::Real(f) => *f,
            Cell::Int(n) => *n as f64,
            _ => 0.0,
        }
    }
}

pub(crate) fn summary(db: &dyn Backend) -> Result<Summary, Error> {
    use Col::{Int, Text};
    let rows = db.view_rows(
        "SELECT event, product, product_version, os,
                CAST(SUM(events) AS BIGINT), CAST(SUM(occurrences) AS BIGINT)
         FROM daily_events GROUP BY event, product, product_version, os",
        &[],
        &[Text, Text, Text, Text, Int, Int],
    )?;
    let mut summary = Summary::default();
    for r in rows {
        let (events, occurrences) = (r[4].count(), r[5].int());
        summary.events += events;
        summary.batch_size_total += occurrences;
        let counts: &mut EventCounts = summary.by_event.entry(r[0].text()).or_default();
        counts.events += events;
        counts.batch_size_total += occurrences;
        for (map, cell) in [
            (&mut summary.by_product, &r[1]),
            (&mut summary.by_product_version, &r[2]),
            (&mut summary.by_os, &r[3]),
        ] {
            *map.entry(cell.text()).or_default() += events;
        }
    }
    let instances = db.view_rows(
        "SELECT COUNT(DISTINCT distinct_id) FROM installs",
        &[],
        &[Int],
    )?;
    summary.instances = instances.first().map_or(0, |r| r[0].count());
    Ok(summary)
}

pub(crate) fn products(db: &dyn Backend) -> Result<Vec<String>, Error> {
    let rows = db.view_rows("SELECT DISTINCT product FROM installs", &[], &[Col::Text])?;
    let mut products: Vec<String> = rows.iter().map(|r| r[0].text()).collect();
    products.sort();
    Ok(products)
}

pub(crate) fn id_stats(db: &dyn Backend, range: &StatsRange) -> Result<IdStats, Error> {
    use Col::{Int, Text};
    let args = range_args(range);
    let active = db.view_rows(
        &format!(
            "SELECT day, COUNT(DISTINCT distinct_id) FROM daily_installs
             WHERE {IN_RANGE} GROUP BY day"
        ),
        &args,
        &[Text, Int],
    )?;
    // New on a day: active that day, and no install of the id (of the
    // product, when filtered) started earlier.
    let new = db.view_rows(
        "SELECT di.day, COUNT(DISTINCT di.distinct_id) FROM daily_installs di
         WHERE di.day BETWEEN ?1 AND ?2 AND (CAST(?3 AS TEXT) IS NULL OR di.product = ?3)
           AND NOT EXISTS (SELECT 1 FROM installs i
                           WHERE i.distinct_id = di.distinct_id
                             AND (CAST(?3 AS TEXT) IS NULL OR i.product = ?3)
                             AND i.first_day < di.day)
         GROUP BY di.day",
        &args,
        &[Text, Int],
    )?;
    let weekly = db.view_rows(
        &format!(
            "SELECT week, COUNT(DISTINCT distinct_id) FROM daily_installs
             WHERE {IN_RANGE} GROUP BY week"
        ),
        &args,
        &[Text, Int],
    )?;
    let in_range = db.view_rows(
        &format!("SELECT COUNT(DISTINCT distinct_id) FROM daily_installs WHERE {IN_RANGE}"),
        &args,
        &[Int],
    )?;
    let new: BTreeMap<String, u64> = new.iter().map(|r| (r[0].text(), r[1].count())).collect();
    let mut daily: Vec<DayIds> = active
        .iter()
        .map(|r| {
            let day = r[0].text();
            DayIds {
                new: new.get(&day).copied().unwrap_or(0),
                active: r[1].count(),
                day,
            }
        })
        .collect();
    daily.sort_by(|a, b| a.day.cmp(&b.day));
    let mut weekly: Vec<WeekIds> = weekly
        .iter()
        .map(|r| WeekIds {
            week: r[0].text(),
            active: r[1].count(),
        })
        .collect();
    weekly.sort_by(|a, b| a.week.cmp(&b.week));
    Ok(IdStats {
        active_in_range: in_range.first().map_or(0, |r| r[0].count()),
        daily,
        weekly,
    })
}

pub(crate) fn version_stats(db: &dyn Backend, range: &StatsRange) -> Result<VersionStats, Error> {
    use Col::{Int, Text};
    let args = range_args(range);
    // Each install's last day in the range carries the version of its newest
    // event there.
    let now = db.view_rows(
        "SELECT di.product, di.product_version, COUNT(*) FROM daily_installs di
         WHERE di.day BETWEEN ?1 AND ?2 AND (CAST(?3 AS TEXT) IS NULL OR di.product = ?3)
           AND NOT EXISTS (SELECT 1 FROM daily_installs later
                           WHERE later.product = di.product AND later.distinct_id = di.distinct_id
                             AND later.day > di.day AND later.day <= ?2)
         GROUP BY di.product, di.product_version",
        &args,
        &[Text, Text, Int],
    )?;
    let daily = db.view_rows(
        &format!(
            "SELECT day, product, product_version, COUNT(*) FROM daily_installs
             WHERE {IN_RANGE} GROUP BY day, product, product_version"
        ),
        &args,
        &[Text, Text, Text, Int],
    )?;
    let mut now: Vec<VersionCount> = now
        .iter()
        .map(|r| VersionCount {
            product: r[0].text(),
            version: r[1].text(),
            installs: r[2].count(),
        })
        .collect();
    now.sort_by(|a, b| {
        b.installs
            .cmp(&a.installs)
            .then_with(|| a.product.cmp(&b.product))
            .then_with(|| a.version.cmp(&b.version))
    });
    let mut daily: Vec<DayVersion> = daily
        .iter()
        .map(|r| DayVersion {
            day: r[0].text(),
            product: r[1].text(),
            version: r[2].text(),
            installs: r[3].count(),
        })
        .collect();
    daily.sort_by(|a, b| (&a.day, &a.product, &a.version).cmp(&(&b.day, &b.product, &b.version)));
    Ok(VersionStats { now, daily })
}

pub(crate) fn environment_stats(
    db: &dyn Backend,
    range: &StatsRange,
) -> Result<EnvironmentStats, Error> {
    use Col::{Int, Text};
    let rows = db.view_rows(
        &format!(
            "SELECT i.os, i.arch, i.runtime, i.in_container, i.in_ci, i.in_jupyter, COUNT(*)
             FROM (SELECT DISTINCT product, distinct_id FROM daily_installs WHERE {IN_RANGE}) a
             JOIN installs i ON i.product = a.product AND i.distinct_id = a.distinct_id
             GROUP BY i.os, i.arch, i.runtime, i.in_container, i.in_ci, i.in_jupyter"
        ),
        &range_args(range),
        &[Text, Text, Text, Text, Text, Text, Int],
    )?;
    let mut columns: [BTreeMap<String, u64>; 6] = Default::default();
    let mut installs = 0;
    for r in &rows {
        let n = r[6].count();
        installs += n;
        for (column, cell) in columns.iter_mut().zip(r) {
            *column.entry(cell.text()).or_default() += n;
        }
    }
    let [os, arch, runtime, container, ci, jupyter] = columns.map(|column| {
        let mut shares: Vec<Share> = column
            .into_iter()
            .map(|(value, installs)| Share { value, installs })
            .collect();
        // BTreeMap order first, so a stable sort leaves ties by value.
        shares.sort_by_key(|s| std::cmp::Reverse(s.installs));
        shares
    });
    Ok(EnvironmentStats {
        installs,
        os,
        arch,
        runtime,
        container,
        ci,
        jupyter,
    })
}

pub(crate) fn event_stats(db: &dyn Backend, range: &StatsRange) -> Result<EventStats, Error> {
    use Col::{Int, Text};
    let rows = db.view_rows(
        &format!(
            "SELECT day, event, CAST(SUM(events) AS BIGINT), CAST(SUM(occurrences) AS BIGINT)
             FROM daily_events WHERE {IN_RANGE} GROUP BY day, event"
        ),
        &range_args(range),
        &[Text, Text, Int, Int],
    )?;
    let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut daily: Vec<DayEvent> = rows
        .iter()
        .map(|r| {
            let day = DayEvent {
                day: r[0].text(),
                event: r[1].text(),
                events: r[2].count(),
                occurrences: r[3].int(),
            };
            let total = totals.entry(day.event.clone()).or_default();
            total.0 += day.events;
            total.1 += day.occurrences;
            day
        })
        .collect();
    daily.sort_by(|a, b| (&a.day, &a.event).cmp(&(&b.day, &b.event)));
    let mut totals: Vec<EventTotal> = totals
        .into_iter()
        .map(|(event, (events, occurrences))| EventTotal {
            event,
            events,
            occurrences,
        })
        .collect();
    // BTreeMap order first, so a stable sort leaves ties by name.
    totals.sort_by_key(|t| std::cmp::Reverse(t.events));
    Ok(EventStats { totals, daily })
}

pub(crate) fn property_stats(
    db: &dyn Backend,
    range: &StatsRange,
    event: &str,
    property: Option<&str>,
) -> Result<PropertyStats, Error> {
    use Col::{Int, Real, Text};
    let mut args = range_args(range);
    args.push(Some(event));
    let names = db.view_rows(
        &format!("SELECT DISTINCT property FROM daily_properties WHERE event = ?4 AND {IN_RANGE}"),
        &args,
        &[Text],
    )?;
    let mut properties: Vec<String> = names.iter().map(|r| r[0].text()).collect();
    properties.sort();
    let mut stats = PropertyStats {
        event: event.to_owned(),
        property: property.unwrap_or_default().to_owned(),
        properties,
        ..PropertyStats::default()
    };
    let Some(property) = property else {
        return Ok(stats);
    };
    args.push(Some(property));
    let values = db.view_rows(
        &format!(
            "SELECT value, CAST(SUM(events) AS BIGINT), CAST(SUM(occurrences) AS BIGINT)
             FROM daily_properties WHERE event = ?4 AND property = ?5 AND {IN_RANGE}
             GROUP BY value"
        ),
        &args,
        &[Text, Int, Int],
    )?;
    stats.values = values
        .iter()
        .map(|r| ValueCount {
            value: r[0].text(),
            events: r[1].count(),
            occurrences: r[2].int(),
        })
        .collect();
    stats
        .values
        .sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.value.cmp(&b.value)));
    if stats.values.iter().any(|v| v.value == NUMBER) {
        args.push(Some(NUMBER));
        let sums = db.view_rows(
            &format!(
                "SELECT day, SUM(total) FROM daily_properties
                 WHERE event = ?4 AND property = ?5 AND value = ?6 AND {IN_RANGE} GROUP BY day"
            ),
            &args,
            &[Text, Real],
        )?;
        stats.daily_sums = sums
            .iter()
            .map(|r| DaySum {
                day: r[0].text(),
                sum: r[1].real(),
            })
            .collect();
        stats.daily_sums.sort_by(|a, b| a.day.cmp(&b.day));
    }
    Ok(stats)
}

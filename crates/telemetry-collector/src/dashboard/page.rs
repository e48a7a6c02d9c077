//! The pages: the layout every view shares (navigation, the range and product
//! form), each view's figures, charts and tables, and the sign-in page.
//!
//! Every value a sender controls reaches the page through maud's escaping; no
//! markup is ever built from stored text by hand.

use maud::{html, Markup, DOCTYPE};

use super::chart::{bar_chart, line_chart, Series, MAX_SERIES};
use super::table::{Cell, Table};
use super::{day_list, tables, Params, RangeChoice, View, ViewData, PRESET_DAYS};

/// Rows a page table shows; the CSV and JSON behind it hold all of them.
pub const MAX_HTML_ROWS: usize = 500;

/// What every view's page needs besides its data.
pub struct PageContext<'a> {
    /// The view shown.
    pub view: View,
    /// Its range, product and (on the events view) event and property.
    pub params: &'a Params,
    /// Products to choose from.
    pub products: &'a [String],
    /// Signed in with a session: offer to sign out.
    pub signed_in: bool,
}

fn layout(title: &str, header_extra: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · telemetry collector" }
                link rel="stylesheet" href="/assets/dashboard.css";
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    p class="brand" { "telemetry collector" }
                    (header_extra)
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A whole view: layout, filters, and the view's sections.
pub fn render(ctx: &PageContext<'_>, data: &ViewData) -> Markup {
    let query = ctx.params.range_query();
    let nav = html! {
        nav aria-label="Views" {
            ul {
                @for view in View::ALL {
                    li {
                        a href={(view.path()) "?" (query)} aria-current=[(view == ctx.view).then_some("page")] {
                            (view.title())
                        }
                    }
                }
            }
        }
        @if ctx.signed_in {
            form method="post" action="/logout" class="signout" {
                button type="submit" { "Sign out" }
            }
        }
    };
    let tables = tables(data);
    let body = html! {
        h1 { (ctx.view.title()) }
        (filter_form(ctx))
        p class="range-note" {
            (ctx.params.range.from) " to " (ctx.params.range.to) " (UTC days of the events' timestamps)"
            @if let Some(p) = &ctx.params.range.product { ", product " strong { (p) } }
            ". "
            a data-json=(ctx.view.api_name()) href={"/api/stats/" (ctx.view.api_name()) "?" (ctx.params.view_query())} { "This view as JSON" }
        }
        (view_body(ctx, data, &tables))
    };
    layout(ctx.view.title(), nav, body)
}

fn filter_form(ctx: &PageContext<'_>) -> Markup {
    let p = ctx.params;
    let chosen = |days: u32| p.choice == RangeChoice::Days(days);
    html! {
        form method="get" action=(ctx.view.path()) data-filter class="filters" aria-label="Range and product" {
            div {
                label for="range" { "Range" }
                select id="range" name="range" {
                    @for days in PRESET_DAYS {
                        option value=(days) selected[chosen(days)] { "Last " (days) " days" }
                    }
                    option value="custom" selected[p.choice == RangeChoice::Custom] { "From and to below" }
                }
            }
            // The dates shown, sent back: dates typed over them mean a custom
            // range even while the select still names a preset.
            input type="hidden" name="shown_from" value=(p.range.from);
            input type="hidden" name="shown_to" value=(p.range.to);
            div {
                label for="from" { "From" }
                input type="date" id="from" name="from" value=(p.range.from);
            }
            div {
                label for="to" { "To" }
                input type="date" id="to" name="to" value=(p.range.to);
            }
            div {
                label for="product" { "Product" }
                select id="product" name="product" {
                    option value="" selected[p.range.product.is_none()] { "All products" }
                    @for product in ctx.products {
                        option value=(product) selected[p.range.product.as_deref() == Some(product.as_str())] { (product) }
                    }
                }
            }
            @if ctx.view == View::Events {
                @if let Some(event) = &p.event { input type="hidden" name="event" value=(event); }
                @if let Some(property) = &p.property { input type="hidden" name="property" value=(property); }
            }
            div { button type="submit" { "Apply" } }
        }
    }
}

fn find<'t>(tables: &'t [Table], name: &str) -> &'t Table {
    tables
        .iter()
        .find(|t| t.name == name)
        .expect("every view's tables are defined in tables()")
}

/// A section with a heading, a chart (or none) and the table.
fn section(
    ctx: &PageContext<'_>,
    heading: &str,
    table: &Table,
    chart: Option<Markup>,
    note: Option<&str>,
) -> Markup {
    let id = format!("h-{}", table.name);
    html! {
        section aria-labelledby=(id) {
            div class="section-head" {
                h2 id=(id) { (heading) }
                @if !table.rows.is_empty() {
                    a data-csv=(table.name) download
                        href={"/api/stats/" (ctx.view.api_name()) ".csv?table=" (table.name) "&" (ctx.params.view_query())} {
                        "Download CSV" span class="visually-hidden" { " of " (heading) }
                    }
                }
            }
            @if let Some(note) = note { p class="note" { (note) } }
            @if table.rows.is_empty() {
                p data-empty { "No data in this range." }
            } @else {
                @if let Some(chart) = chart {
                    figure data-chart=(table.name) { (chart) figcaption class="visually-hidden" { (heading) } }
                }
                (html_table(heading, table))
            }
        }
    }
}

fn column_label(column: &str) -> String {
    match column {
        "avg_micros_p50" => return "Average latency, p50".into(),
        "avg_micros_p90" => return "p90".into(),
        "avg_micros_p99" => return "p99".into(),
        "fail_ratio" => return "Failed".into(),
        "distinct_id" => return "Distinct id".into(),
        _ => {}
    }
    let spaced = column.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

fn html_table(caption: &str, table: &Table) -> Markup {
    let shown = table.rows.len().min(MAX_HTML_ROWS);
    html! {
        div class="scroll" {
            table data-table=(table.name) data-rows=(table.rows.len()) {
                caption class="visually-hidden" { (caption) }
                thead { tr { @for c in &table.columns { th scope="col" { (column_label(c)) } } } }
                tbody {
                    @for row in &table.rows[..shown] {
                        tr {
                            @for cell in row {
                                @if cell.is_number() {
                                    td class="num" data-value=(cell.raw()) { (cell.display()) }
                                } @else {
                                    td { (cell.display()) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if shown < table.rows.len() {
            p class="note" data-truncated { "The first " (shown) " of " (table.rows.len()) " rows; the CSV has all." }
        }
    }
}

fn figure(name: &str, label: &str, value: u64) -> Markup {
    html! {
        div { dt { (label) } dd data-figure=(name) data-value=(value) { (super::table::group_digits(value as i64)) } }
    }
}

fn number(cell: &Cell) -> f64 {
    match cell {
        Cell::Int(n) => *n as f64,
        Cell::Float(f, _) => *f,
        Cell::Text(_) => 0.0,
    }
}

fn text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        other => other.raw(),
    }
}

/// Series over the range's days from a table's rows: `label` names the
/// series, column `x` the day, column `y` the value; the largest series first.
fn series_by(
    days: &[String],
    table: &Table,
    label: impl Fn(&[Cell]) -> String,
    x: usize,
    y: usize,
) -> Vec<Series> {
    let index: std::collections::HashMap<&str, usize> = days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    // (series name, its total, its points)
    type Named = (String, f64, Vec<(usize, f64)>);
    let mut by_name: Vec<Named> = Vec::new();
    for row in &table.rows {
        let name = label(row);
        let Some(&i) = index.get(text(&row[x]).as_str()) else {
            continue;
        };
        let v = number(&row[y]);
        match by_name.iter_mut().find(|s| s.0 == name) {
            Some(s) => {
                s.1 += v;
                s.2.push((i, v));
            }
            None => by_name.push((name, v, vec![(i, v)])),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_name
        .into_iter()
        .map(|(name, _, points)| Series { name, points })
        .collect()
}

fn bars(table: &Table, label: usize, value: usize) -> Vec<(String, f64)> {
    table
        .rows
        .iter()
        .map(|r| (text(&r[label]), number(&r[value])))
        .collect()
}

fn view_body(ctx: &PageContext<'_>, data: &ViewData, tables: &[Table]) -> Markup {
    let days = day_list(&ctx.params.range);
    match data {
        ViewData::Ids(ids) => {
            let daily = find(tables, "ids-daily");
            let weekly = find(tables, "ids-weekly");
            let new_in_range: u64 = ids.daily.iter().map(|d| d.new).sum();
            let active = Series {
                name: "active".into(),
                points: series_by(&days, daily, |_| "active".into(), 0, 1)
                    .into_iter()
                    .flat_map(|s| s.points)
                    .collect(),
            };
            let new = Series {
                name: "new".into(),
                points: series_by(&days, daily, |_| "new".into(), 0, 2)
                    .into_iter()
                    .flat_map(|s| s.points)
                    .collect(),
            };
            let weeks: Vec<String> = ids.weekly.iter().map(|w| w.week.clone()).collect();
            let weekly_series = vec![Series {
                name: "active".into(),
                points: ids
                    .weekly
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (i, w.active as f64))
                    .collect(),
            }];
            html! {
                dl class="figures" {
                    (figure("active-in-range", "Distinct ids active in the range", ids.active_in_range))
                    (figure("new-in-range", "New distinct ids in the range", new_in_range))
                }
                p class="note" {
                    "A distinct id is what a sender names an install with. A product that makes a new id at every process start (a Qdrant-style profile) counts each start as one."
                }
                (section(ctx, "Active and new distinct ids per day", daily,
                    Some(line_chart("ids-daily", "Active and new distinct ids per day", &days, &[active, new])), None))
                (section(ctx, "Active distinct ids per week", weekly,
                    Some(line_chart("ids-weekly", "Active distinct ids per week (weeks named by their Monday)", &weeks, &weekly_series)),
                    Some("Weeks are named by their Monday; the first and last week count only the range's days.")))
            }
        }
        ViewData::Versions(_) => {
            let now = find(tables, "versions-now");
            let daily = find(tables, "versions-daily");
            let now_bars: Vec<(String, f64)> = now
                .rows
                .iter()
                .map(|r| (format!("{} {}", text(&r[0]), text(&r[1])), number(&r[2])))
                .collect();
            let series = series_by(
                &days,
                daily,
                |r| format!("{} {}", text(&r[1]), text(&r[2])),
                0,
                3,
            );
            html! {
                (section(ctx, "Installs per version now", now, Some(bar_chart("versions-now", "Installs per product version, by each install's newest event", &now_bars)),
                    Some("Installs active in the range, counted by the version of their newest event.")))
                (section(ctx, "Installs per version per day", daily, Some(line_chart("versions-daily", "Installs per product version per day", &days, &series)),
                    (series.len() > MAX_SERIES).then_some("The chart draws the eight versions with the most install-days; the table has every one.")))
            }
        }
        ViewData::Environment(env) => {
            let parts = [
                ("env-os", "Operating system"),
                ("env-arch", "Architecture"),
                ("env-runtime", "Runtime and its version"),
                ("env-container", "In a container"),
                ("env-ci", "In CI"),
                ("env-jupyter", "In Jupyter"),
            ];
            html! {
                dl class="figures" { (figure("installs", "Installs active in the range", env.installs)) }
                p class="note" { "Each install counted once, by its newest event." }
                @for (name, heading) in parts {
                    @let table = find(tables, name);
                    (section(ctx, heading, table, Some(bar_chart(name, heading, &bars(table, 0, 1))), None))
                }
            }
        }
        ViewData::Events { events, property } => {
            let totals = find(tables, "events-totals");
            let daily = find(tables, "events-daily");
            let series = series_by(&days, daily, |r| text(&r[1]), 0, 2);
            html! {
                (section(ctx, "Events by name", totals, Some(bar_chart("events-totals", "Events by name in the range", &bars(totals, 0, 1))),
                    Some("Events are stored rows; occurrences count what merged events stand for (their batch_size).")))
                (section(ctx, "Events per day by name", daily, Some(line_chart("events-daily", "Events per day by name", &days, &series)), None))
                @if !events.totals.is_empty() {
                    (property_form(ctx, events, property.as_ref()))
                }
                @if let Some(p) = property {
                    @let values = find(tables, "property-values");
                    @let sums = find(tables, "property-sums");
                    @let heading = format!("Values of {} in {}", p.property, p.event);
                    p class="range-note" {
                        a data-json="properties" href={"/api/stats/properties?" (ctx.params.view_query())} {
                            "This event's property as JSON"
                        }
                    }
                    (section(ctx, &heading, values, Some(bar_chart("property-values", &heading, &bars(values, 0, 1))), None))
                    @if !sums.rows.is_empty() {
                        @let heading = format!("Sum of {} per day", p.property);
                        @let sum_series = series_by(&days, sums, |_| p.property.clone(), 0, 1);
                        (section(ctx, &heading, sums, Some(line_chart("property-sums", &heading, &days, &sum_series)), None))
                    }
                }
            }
        }
        ViewData::Usage(usage) => {
            let ops = find(tables, "usage-operations");
            let reports = find(tables, "usage-reports");
            html! {
                dl class="figures" { (figure("installs-reporting", "Installs with a usage report in the range", usage.reports.len() as u64)) }
                (section(ctx, "Operations across installs", ops, Some(bar_chart("usage-operations", "Calls per operation across installs", &bars(ops, 0, 2))),
                    Some("From each install's newest report in the range: calls and failures summed; latency percentiles are over the installs' average latencies.")))
                (section(ctx, "Newest usage report per install", reports, None, None))
            }
        }
        ViewData::Crashes(crashes) => {
            let groups = find(tables, "crash-groups");
            html! {
                dl class="figures" { (figure("crash-reports", "Error reports in the range", crashes.reports)) }
                (section(ctx, "Crash groups by fingerprint", groups, Some(bar_chart("crash-groups", "Error reports per fingerprint", &bars(groups, 0, 1))), None))
                @if !crashes.groups.is_empty() {
                    section aria-labelledby="h-examples" {
                        h2 id="h-examples" { "An example of each group" }
                        @for g in crashes.groups.iter().take(MAX_HTML_ROWS) {
                            details data-example=(g.fingerprint) {
                                summary { code { (g.fingerprint) } ": " (example_title(&g.example)) }
                                (example_frames(&g.example))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn property_form(
    ctx: &PageContext<'_>,
    events: &crate::stats::EventStats,
    property: Option<&crate::stats::PropertyStats>,
) -> Markup {
    let p = ctx.params;
    html! {
        section aria-labelledby="h-property" {
            h2 id="h-property" { "One event's property" }
            form method="get" action="/events" data-property class="filters" aria-label="Event and property" {
                input type="hidden" name="range" value=(p.choice.query_value());
                input type="hidden" name="from" value=(p.range.from);
                input type="hidden" name="to" value=(p.range.to);
                @if let Some(product) = &p.range.product { input type="hidden" name="product" value=(product); }
                div {
                    label for="event" { "Event" }
                    select id="event" name="event" {
                        @for t in &events.totals {
                            option value=(t.event) selected[property.is_some_and(|s| s.event == t.event)] { (t.event) }
                        }
                    }
                }
                div {
                    label for="property" { "Property" }
                    select id="property" name="property" {
                        @if let Some(s) = property {
                            @for name in &s.properties {
                                option value=(name) selected[*name == s.property] { (name) }
                            }
                        }
                    }
                }
                div { button type="submit" { "Show" } }
            }
            @if property.is_some_and(|s| s.properties.is_empty()) {
                p data-empty { "This event has no properties to break down in this range." }
            }
        }
    }
}

fn example_title(example: &serde_json::Value) -> String {
    let first = &example["$exception_list"][0];
    let kind = first["type"].as_str().unwrap_or("error");
    match first["value"].as_str().filter(|v| !v.is_empty()) {
        Some(message) => format!("{kind}: {message}"),
        None => kind.to_owned(),
    }
}

fn example_frames(example: &serde_json::Value) -> Markup {
    let frames = example["$exception_list"][0]["stacktrace"]["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let field = |f: &serde_json::Value, k: &str| match &f[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    html! {
        @if frames.is_empty() {
            p { "No frames in this report." }
        } @else {
            ol class="frames" {
                @for f in &frames {
                    li { code { (field(f, "function")) } " in " code { (field(f, "filename")) ":" (field(f, "lineno")) } }
                }
            }
        }
        @let version = field(example, "product_version");
        @if !version.is_empty() { p class="note" { "Newest report, from version " (version) "." } }
    }
}

/// The sign-in page, with a message after a wrong token.
pub fn login(next: &str, message: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        p { "This collector needs its admin token to show its data." }
        @if let Some(message) = message { p class="error" role="alert" { (message) } }
        form method="post" action="/login" class="login" {
            input type="hidden" name="next" value=(next);
            div {
                label for="token" { "Admin token" }
                input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
            }
            div { button type="submit" { "Sign in" } }
        }
    };
    layout("Sign in", html! {}, body)
}

/// A page saying what went wrong (a bad range, a database failure).
pub fn error(title: &str, message: &str) -> Markup {
    layout(
        title,
        html! {},
        html! {
            h1 { (title) }
            p class="error" role="alert" { (message) }
            p { a href="/" { "Back to the dashboard" } }
        },
    )
}

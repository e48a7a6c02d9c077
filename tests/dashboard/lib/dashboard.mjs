// The dashboard's contract as data (views, their tables, charts and JSON), readers for a
// rendered page, and the comparisons of a page with its /api/stats JSON.

import assert from 'node:assert/strict';
import { apiGet } from './browser.mjs';

// Each view: its page, its /api/stats name, its tables (name -> JSON field holding the
// rows, and the columns = CSV header = JSON field names), its charts (drawn from the table
// of the same name), its figures (data-figure -> JSON field).
export const VIEWS = [
  {
    name: 'ids',
    path: '/',
    tables: {
      'ids-daily': { field: 'daily', columns: ['day', 'active', 'new'] },
      'ids-weekly': { field: 'weekly', columns: ['week', 'active'] },
    },
    charts: ['ids-daily', 'ids-weekly'],
    figures: { 'active-in-range': 'active_in_range', 'new-in-range': (d) => d.daily.reduce((n, r) => n + r.new, 0) },
  },
  {
    name: 'versions',
    path: '/versions',
    tables: {
      'versions-now': { field: 'now', columns: ['product', 'version', 'installs'] },
      'versions-daily': { field: 'daily', columns: ['day', 'product', 'version', 'installs'] },
    },
    charts: ['versions-daily'],
    figures: {},
  },
  {
    name: 'environment',
    path: '/environment',
    tables: Object.fromEntries(
      ['os', 'arch', 'runtime', 'container', 'ci', 'jupyter'].map((f) => [`env-${f}`, { field: f, columns: ['value', 'installs'] }]),
    ),
    charts: [],
    figures: { installs: 'installs' },
  },
  {
    name: 'events',
    path: '/events',
    tables: {
      'events-totals': { field: 'totals', columns: ['event', 'events', 'occurrences'] },
      'events-daily': { field: 'daily', columns: ['day', 'event', 'events', 'occurrences'] },
    },
    charts: ['events-daily'],
    figures: {},
  },
  {
    name: 'usage',
    path: '/usage',
    tables: {
      'usage-operations': {
        field: 'operations',
        columns: ['operation', 'installs', 'calls', 'failures', 'fail_ratio', 'avg_micros_p50', 'avg_micros_p90', 'avg_micros_p99'],
      },
      // The report itself is an object: in the JSON only, not a table column.
      'usage-reports': { field: 'reports', columns: ['distinct_id', 'product', 'version', 'timestamp'] },
    },
    charts: [],
    figures: { 'installs-reporting': (d) => d.reports.length },
  },
  {
    name: 'crashes',
    path: '/crashes',
    tables: {
      'crash-groups': {
        field: 'groups',
        // The example is an object: shown in <details data-example>, in the JSON, not a column.
        columns: ['fingerprint', 'count', 'installs', 'first_seen', 'last_seen', 'versions', 'suppressed'],
      },
    },
    charts: [],
    figures: { 'crash-reports': 'reports' },
  },
];

// The property part of /events (shown once an event and property are chosen).
export const PROPERTIES = {
  name: 'properties',
  tables: {
    'property-values': { field: 'values', columns: ['value', 'events', 'occurrences'] },
    'property-sums': { field: 'daily_sums', columns: ['day', 'sum'] },
  },
  charts: ['property-sums'],
  figures: {},
};

export const STATS_APIS = ['ids', 'versions', 'environment', 'events', 'properties', 'usage', 'crashes', 'products'];

// Every table of the page: { name: { headers, rows: [[{ text, value }]] } }.
export function readTables(page) {
  return page.evaluate(() => {
    const out = {};
    for (const table of document.querySelectorAll('table[data-table]')) {
      const headers = [...table.querySelectorAll('thead th, thead td')].map((c) => c.textContent.trim());
      const rows = [...table.querySelectorAll('tbody tr')].map((tr) =>
        [...tr.querySelectorAll('td, th')].map((td) => ({
          text: td.textContent.replace(/\s+/g, ' ').trim(),
          value: td.hasAttribute('data-value') ? td.getAttribute('data-value') : null,
        })),
      );
      // A long table may show only its first rows, saying so in a [data-truncated] note
      // beside it (the CSV and the JSON have all); data-rows is then the full count.
      const section = table.closest('section') ?? table.parentElement;
      const truncated = !!section?.querySelector('[data-truncated]');
      out[table.getAttribute('data-table')] = { headers, rows, truncated, declared: table.getAttribute('data-rows') };
    }
    return out;
  });
}

// Every chart: { name: { svg, role, title, points: [{ x, y }] } }.
export function readCharts(page) {
  return page.evaluate(() => {
    const out = {};
    for (const fig of document.querySelectorAll('figure[data-chart]')) {
      const svg = fig.querySelector('svg');
      out[fig.getAttribute('data-chart')] = {
        svg: !!svg,
        role: svg?.getAttribute('role') ?? null,
        title: svg?.querySelector('title')?.textContent.trim() ?? '',
        points: [...fig.querySelectorAll('[data-x][data-y]')].map((p) => ({ x: p.getAttribute('data-x'), y: p.getAttribute('data-y'), series: p.getAttribute('data-series') })),
      };
    }
    return out;
  });
}

// Every figure: { name: { text, value } } (the value from data-value, else the text).
export function readFigures(page) {
  return page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-figure]')].map((el) => [
        el.getAttribute('data-figure'),
        { text: el.textContent.trim(), value: el.getAttribute('data-value') },
      ]),
    ),
  );
}

// The page's data-json / data-csv links: { json: { VIEW: href }, csv: { NAME: href } }.
export function readLinks(page) {
  return page.evaluate(() => ({
    json: Object.fromEntries([...document.querySelectorAll('a[data-json]')].map((a) => [a.getAttribute('data-json'), a.getAttribute('href')])),
    csv: Object.fromEntries([...document.querySelectorAll('a[data-csv]')].map((a) => [a.getAttribute('data-csv'), a.getAttribute('href')])),
  }));
}

// Where the page differed from the contract without failing a check (printed at the end).
export const contractNotes = new Set();

// The JSON a data-json link points at, fetched in the page's context (its cookies).
// /events links only its events JSON: the properties JSON is then taken at the same query.
export async function fetchViewJson(page, view) {
  const { json } = await readLinks(page);
  let href = json[view];
  if (!href && view === 'properties' && json.events) {
    contractNotes.add('/events with an event and property chosen has no <a data-json="properties">: its only JSON link is data-json="events"');
    href = json.events.replace('/api/stats/events', '/api/stats/properties');
  }
  assert.ok(href, `the page ${page.url()} has no <a data-json="${view}"> (it has: ${Object.keys(json).join(', ') || 'none'})`);
  assert.match(href, new RegExp(`^/api/stats/${view}(\\?|$)`), `data-json="${view}" points at ${href}`);
  const res = await apiGet(page, href);
  assert.equal(res.status, 200, `GET ${href}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(res.headers['content-type'] ?? '', /application\/json/, `GET ${href}: content-type`);
  return { href, data: res.json() };
}

const NUMBER_TEXT = /^-?[\d,.\s\u00a0\u202f']+$/;

function sameNumber(a, b) {
  if (a === b) return true;
  const scale = Math.max(1, Math.abs(a), Math.abs(b));
  return Math.abs(a - b) <= 1e-9 * scale;
}

// One cell against its JSON value; returns a problem or null.
export function checkCell(cell, value, column) {
  if (value === null || value === undefined) {
    if (cell.value !== null && cell.value !== '') return `is null in JSON, data-value ${JSON.stringify(cell.value)} on the page`;
    return null;
  }
  if (typeof value === 'number') {
    if (cell.value === null) return `numeric (${value}) but its <td> has no data-value (text ${JSON.stringify(cell.text)})`;
    const n = Number(cell.value);
    if (!Number.isFinite(n) || !sameNumber(n, value)) return `data-value ${JSON.stringify(cell.value)}, JSON ${value}`;
    if (Number.isInteger(value) && NUMBER_TEXT.test(cell.text)) {
      const shown = Number(cell.text.replace(/[,\s\u00a0\u202f']/g, ''));
      if (shown !== value) return `text ${JSON.stringify(cell.text)} does not read as ${value}`;
    }
    return null;
  }
  if (typeof value === 'string') {
    if (cell.text === value) return null;
    // Times may be shown shorter (no seconds, no zone) but must start with their day.
    if (/^\d{4}-\d{2}-\d{2}T/.test(value) && cell.text.startsWith(value.slice(0, 10))) return null;
    return `text ${JSON.stringify(cell.text)}, JSON ${JSON.stringify(value)}`;
  }
  if (typeof value === 'boolean') {
    return cell.text === String(value) || cell.value === String(value) ? null : `text ${JSON.stringify(cell.text)}, JSON ${value}`;
  }
  if (Array.isArray(value)) {
    const missing = value.filter((v) => !cell.text.includes(String(v)));
    return missing.length ? `text ${JSON.stringify(cell.text.slice(0, 200))} lacks ${JSON.stringify(missing)} (${column})` : null;
  }
  return null; // objects (a usage report, a crash example): shown as the page likes
}

// Tables seen shown truncated, and contract columns a table does not show (reported at
// the end of a run; the CSV test checks the contract's columns).
export const truncatedTables = new Set();
export const missingColumns = new Set();
export const partialCharts = new Set();

// A header label as the JSON field it shows: "Avg micros p50" -> avg_micros_p50.
export function labelField(label) {
  return label.trim().toLowerCase().replace(/\s+/g, '_');
}

// Checks one table of a page against its JSON rows; returns a list of problems. The
// table's columns are its CSV's header (the JSON field names) when that has as many
// columns as the table, else its header labels read as field names ("Calls" -> calls);
// contract columns it lacks are noted in missingColumns.
export function compareTable(name, spec, table, rows, csvHeader) {
  const problems = [];
  if (!table) return [`<table data-table="${name}"> is missing`];
  if (!Array.isArray(rows)) return [`JSON field ${spec.field} of ${name} is not an array: ${JSON.stringify(rows)?.slice(0, 200)}`];
  const columns = csvHeader && csvHeader.length === table.headers.length ? csvHeader : table.headers.map(labelField);
  const unknown = columns.filter((c) => !spec.columns.includes(c));
  if (unknown.length) problems.push(`${name}: header columns ${JSON.stringify(unknown)} are not in the contract's ${spec.columns.join(', ')} (labels ${JSON.stringify(table.headers)})`);
  for (const c of spec.columns) if (!columns.includes(c)) missingColumns.add(`${name}.${c}`);
  if (table.truncated && table.rows.length < rows.length) {
    // Shown: the first rows; the full count in data-rows.
    if (table.declared !== null && Number(table.declared) !== rows.length) problems.push(`${name}: data-rows=${table.declared}, ${rows.length} rows in the JSON`);
    truncatedTables.add(name);
  } else if (table.rows.length !== rows.length) problems.push(`${name}: ${table.rows.length} rows on the page, ${rows.length} in the JSON`);
  const n = Math.min(table.rows.length, rows.length);
  for (let i = 0; i < n; i++) {
    const cells = table.rows[i];
    if (cells.length !== columns.length) {
      problems.push(`${name} row ${i}: ${cells.length} cells, ${columns.length} header columns`);
      continue;
    }
    columns.forEach((col, j) => {
      if (!spec.columns.includes(col)) return;
      if (!(col in rows[i])) {
        problems.push(`${name} row ${i}: JSON has no field ${col} (${Object.keys(rows[i]).join(', ')})`);
        return;
      }
      const p = checkCell(cells[j], rows[i][col], col);
      if (p) problems.push(`${name} row ${i} ${col}: ${p}`);
    });
    if (problems.length > 20) break;
  }
  return problems;
}

const sortedNumbers = (xs) => xs.map(Number).sort((a, b) => a - b);
const sameNumbers = (a, b) => a.length === b.length && a.every((x, i) => sameNumber(x, b[i]));

// One chart against its table's JSON rows. Points carry data-series when the chart has
// several: either one series per numeric column (ids-daily: active and new), each with a
// point per row; or one per category (a product version, an event name), a point per row
// in all. A bar chart has a point per row. Either way the points' data-y are a numeric
// column's values.
export function compareChart(name, chart, rows) {
  const problems = [];
  if (!chart.svg) problems.push(`chart ${name}: no inline <svg>`);
  if (chart.role !== 'img') problems.push(`chart ${name}: svg role=${chart.role}, not img`);
  if (!chart.title) problems.push(`chart ${name}: svg has no <title>`);
  const ys = chart.points.map((p) => Number(p.y));
  if (ys.some((y) => !Number.isFinite(y))) problems.push(`chart ${name}: a data-y is not a number`);
  const columns = Object.keys(rows[0] ?? {});
  const numeric = columns.filter((c) => rows.every((r) => typeof r[c] === 'number'));
  const series = new Map();
  for (const p of chart.points) series.set(p.series ?? '', [...(series.get(p.series ?? '') ?? []), p]);
  const measureSeries = series.size >= 1 && [...series.keys()].every((k) => numeric.includes(k));
  if (measureSeries) {
    for (const [k, points] of series) {
      if (points.length !== rows.length) problems.push(`chart ${name}: series ${k} has ${points.length} points, ${rows.length} rows`);
      if (!sameNumbers(sortedNumbers(points.map((p) => p.y)), sortedNumbers(rows.map((r) => r[k])))) problems.push(`chart ${name}: series ${k}'s data-y are not the rows' ${k}`);
    }
  } else {
    // Category series are named by the row's text columns beside the day ("chromadb
    // 1.0.12", "collection_add"). A chart may draw only the largest few series (the table
    // has every row): then its points are exactly the rows of the series it draws.
    const first = columns[0];
    const labelOf = (r) => columns.filter((c) => c !== first && typeof r[c] === 'string').map((c) => r[c]).join(' ');
    let expected = rows;
    const all = new Set(rows.map(labelOf));
    if (!(all.size === 1 && all.has('')) && (series.size > 1 || (series.size === 1 && !series.has('')))) {
      const drawn = new Set(series.keys());
      const unknown = [...drawn].filter((k) => !all.has(k));
      if (unknown.length) problems.push(`chart ${name}: series ${JSON.stringify(unknown.slice(0, 3))} name no rows (${JSON.stringify([...all].slice(0, 3))}...)`);
      if (drawn.size < all.size) partialCharts.add(`${name} (${drawn.size} of ${all.size} series)`);
      expected = rows.filter((r) => drawn.has(labelOf(r)));
    }
    if (series.size === 1 && series.has('') && chart.points.length < expected.length) {
      // A bar chart draws the first rows (in the table's order).
      partialCharts.add(`${name} (its first ${chart.points.length} of ${expected.length} bars)`);
      expected = expected.slice(0, chart.points.length);
    }
    if (chart.points.length !== expected.length) problems.push(`chart ${name}: ${chart.points.length} points, ${expected.length} rows${expected === rows ? '' : ' of its drawn series'}`);
    const y = sortedNumbers(chart.points.map((p) => p.y));
    if (expected.length && !numeric.some((c) => sameNumbers(y, sortedNumbers(expected.map((r) => r[c]))))) problems.push(`chart ${name}: its data-y are no numeric column's values (${numeric.join(', ')})`);
  }
  const first = columns[0];
  if (first === 'day' || first === 'week') {
    const xs = new Set(rows.map((r) => r[first]));
    const strays = chart.points.filter((p) => !xs.has(p.x));
    if (strays.length) problems.push(`chart ${name}: ${strays.length} points whose data-x is no row's ${first}, e.g. ${JSON.stringify(strays[0])}`);
  }
  return problems;
}

// The header row of a table's CSV (through its data-csv link), or null.
export async function csvHeader(page, name) {
  const href = await page.locator(`a[data-csv="${name}"]`).first().getAttribute('href', { timeout: 1000 }).catch(() => null);
  if (!href) return null;
  const res = await apiGet(page, href);
  return res.status === 200 ? parseCsv(res.text.split(/\r?\n/, 1)[0])[0] ?? null : null;
}

// A page's tables, charts and figures against its JSON; returns problems (empty = same).
export async function comparePage(page, view, data) {
  const problems = [];
  const tables = await readTables(page);
  const charts = await readCharts(page);
  const figures = await readFigures(page);
  const empty = await page.locator('[data-empty]').count();
  for (const [name, spec] of Object.entries(view.tables)) {
    const rows = data[spec.field];
    // A text property has no daily sums, and no section for them.
    if (name === 'property-sums' && !tables[name] && Array.isArray(rows) && rows.length === 0 && !data.values?.some((v) => v.value === '(number)')) continue;
    if (!tables[name] && Array.isArray(rows) && rows.length === 0) {
      if (!empty) problems.push(`${name}: no table and no [data-empty] for an empty ${spec.field}`);
      continue;
    }
    problems.push(...compareTable(name, spec, tables[name], rows, await csvHeader(page, name)));
  }
  for (const name of view.charts) {
    if (!charts[name] && (data[view.tables[name].field] ?? []).length) problems.push(`<figure data-chart="${name}"> is missing`);
  }
  for (const [name, chart] of Object.entries(charts)) {
    const spec = view.tables[name];
    if (!spec) continue; // another part's chart (e.g. /events's property charts)
    problems.push(...compareChart(name, chart, data[spec.field] ?? []));
  }
  for (const [name, field] of Object.entries(view.figures)) {
    const fig = figures[name];
    if (!fig) {
      problems.push(`[data-figure="${name}"] is missing`);
      continue;
    }
    const want = typeof field === 'function' ? field(data) : data[field];
    const shown = fig.value ?? fig.text.replace(/[,\s\u00a0\u202f']/g, '');
    if (Number(shown) !== want) problems.push(`figure ${name}: ${JSON.stringify(fig)} on the page, ${want} from the JSON`);
    const text = Number(fig.text.replace(/[,\s\u00a0\u202f']/g, ''));
    if (text !== want) problems.push(`figure ${name}: its text ${JSON.stringify(fig.text)} is not ${want}`);
  }
  return problems;
}

// RFC 4180 CSV -> rows of strings.
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

// A CSV text cell as the contract wants it: a leading =, +, -, @, tab or CR prefixed with '.
export function neutralised(text) {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

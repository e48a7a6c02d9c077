// `make bench-dashboard`: the dashboard over a million events (sample-data, 30 days ending
// today), SQLite and PostgreSQL side by side: each view's page load in headless Chromium
// (navigation start to the load event, median of 3) and each /api/stats query (full answer
// over keep-alive HTTP, median of 5), each beside its goal (< 1 s). The collector is the
// release build (TELEMETRY_COLLECTOR_BIN). A screenshot of each view per store is saved.
//
// DASHBOARD_BENCH_EVENTS sets the size (default 1000000); DASHBOARD_BENCH_PG=off skips
// PostgreSQL (it is started like the Rust tests' own: tests/dashboard/lib/postgres.mjs).

import { join } from 'node:path';
import { launch, openPage, screenshotDir } from './lib/browser.mjs';
import { Collector, collectorBin, sampleData, tempDir } from './lib/collector.mjs';
import { median, VIEWS } from './lib/dashboard.mjs';
import { Postgres } from './lib/postgres.mjs';

const EVENTS = Number(process.env.DASHBOARD_BENCH_EVENTS ?? 1_000_000);
const WITH_PG = process.env.DASHBOARD_BENCH_PG !== 'off';
const GOAL_MS = 1000;
const APIS = [
  ['ids', '/api/stats/ids'],
  ['versions', '/api/stats/versions'],
  ['environment', '/api/stats/environment'],
  ['events', '/api/stats/events'],
  ['properties', '/api/stats/properties?event=collection_add&property=add_amount'],
  ['usage', '/api/stats/usage'],
  ['crashes', '/api/stats/crashes'],
  ['products', '/api/stats/products'],
];
const PAGES = [...VIEWS.map((v) => [v.name, v.path]), ['events+property', '/events?event=collection_add&property=add_amount']];

collectorBin();
const tmp = tempDir('dashboard-bench-');
const shots = screenshotDir('dashboard-bench');
let pg;
const browser = await launch();
const results = {}; // store -> { 'page /': ms, 'api ids': ms }
const notes = [];

async function measure(store, db) {
  const collector = await Collector.start(db);
  const { context, page } = await openPage(browser, collector.url);
  const out = {};
  try {
    for (const [name, path] of PAGES) {
      const times = [];
      for (let i = 0; i < 3; i++) {
        const res = await page.goto(path, { waitUntil: 'load', timeout: 120000 });
        if (res.status() !== 200) throw new Error(`${store} ${path}: ${res.status()}`);
        times.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].duration));
      }
      out[`page ${path}`] = median(times);
      await page.screenshot({ path: join(shots, `${store}-${name}.png`), fullPage: true });
    }
    for (const [, path] of APIS) {
      const times = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const res = await fetch(collector.url + path);
        await res.arrayBuffer();
        times.push(performance.now() - started);
        if (res.status !== 200) throw new Error(`${store} ${path}: ${res.status}`);
      }
      out[`api ${path.replace('/api/stats/', '')}`] = median(times);
    }
  } finally {
    await context.close();
    await collector.stop();
  }
  results[store] = out;
}

try {
  const sqlite = join(tmp.dir, 'bench.db');
  let gen = await sampleData(sqlite, { events: EVENTS, seed: 1, days: 30 });
  notes.push(`SQLite: sample-data --events ${EVENTS} took ${(gen.ms / 1000).toFixed(1)} s (${JSON.stringify(gen.summary)})`);
  await measure('SQLite', sqlite);
  if (WITH_PG) {
    pg = await Postgres.start();
    gen = await sampleData(pg.url(), { events: EVENTS, seed: 1, days: 30 });
    notes.push(`PostgreSQL: sample-data --events ${EVENTS} took ${(gen.ms / 1000).toFixed(1)} s`);
    await measure('PostgreSQL', pg.url());
  }
} finally {
  await browser.close();
  pg?.stop();
  tmp.remove();
}

const stores = Object.keys(results);
const rows = Object.keys(results.SQLite);
const cell = (ms) => (ms === undefined ? '-' : `${ms.toFixed(0)} ms ${ms < GOAL_MS ? 'ok' : 'SLOW'}`);
const width = Math.max(...rows.map((r) => r.length)) + 2;
console.log(`\ndashboard, ${EVENTS} events over 30 days (default view: the last 30 days); page: navigation to load in headless Chromium, median of 3; api: GET, median of 5`);
console.log(`${'what'.padEnd(width)}${stores.map((s) => s.padStart(16)).join('')}${'goal'.padStart(10)}`);
for (const r of rows) console.log(`${r.padEnd(width)}${stores.map((s) => cell(results[s][r]).padStart(16)).join('')}${`< ${GOAL_MS} ms`.padStart(10)}`);
for (const n of notes) console.log(n);
console.log(`screenshots: ${shots}/{${stores.join(',')}}-*.png`);
const slow = stores.flatMap((s) => rows.filter((r) => results[s][r] >= GOAL_MS).map((r) => `${s} ${r}`));
console.log(slow.length ? `over the goal: ${slow.join(', ')}` : 'every figure within the goal');

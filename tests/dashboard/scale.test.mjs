// A million events (sample-data --events 1000000, SQLite): every view loads and matches its
// JSON; each view's page load (navigation to load, median of 3) is printed, without a
// timing assertion (the targets live in `make bench-dashboard`). DASHBOARD_SCALE_EVENTS
// sets another size.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launch, openPage } from './lib/browser.mjs';
import { Collector, collectorBin, sampleData, tempDir } from './lib/collector.mjs';
import { comparePage, fetchViewJson, median, VIEWS } from './lib/dashboard.mjs';

collectorBin();

const EVENTS = Number(process.env.DASHBOARD_SCALE_EVENTS ?? 1_000_000);

let tmp;
let collector;
let browser;
let context;
let page;

before(async () => {
  tmp = tempDir();
  const db = join(tmp.dir, 'million.db');
  const { summary, ms } = await sampleData(db, { events: EVENTS, seed: 1, days: 30 });
  console.log(`sample-data --events ${EVENTS} (${process.env.TELEMETRY_COLLECTOR_BIN}): ${(ms / 1000).toFixed(1)} s, ${JSON.stringify(summary)}`);
  collector = await Collector.start(db);
  browser = await launch();
  ({ context, page } = await openPage(browser, collector.url));
});

after(async () => {
  await context?.close();
  await browser?.close();
  await collector?.stop();
  tmp?.remove();
});

describe(`${EVENTS} events`, () => {
  test('every view loads and matches its JSON; page loads printed', async () => {
    const lines = [];
    for (const view of VIEWS) {
      const times = [];
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const res = await page.goto(view.path, { waitUntil: 'load' });
        times.push(performance.now() - started);
        assert.equal(res.status(), 200, `${view.path}: ${res.status()}`);
      }
      const { data } = await fetchViewJson(page, view.name);
      const problems = await comparePage(page, view, data);
      assert.deepEqual(problems, [], `${view.path}:\n  ${problems.slice(0, 20).join('\n  ')}`);
      lines.push(`${view.path.padEnd(14)} ${median(times).toFixed(0).padStart(7)} ms  (runs: ${times.map((t) => t.toFixed(0)).join(', ')})`);
    }
    console.log(`page load, navigation to load, median of 3, ${EVENTS} events in SQLite (this build):\n${lines.join('\n')}`);
  });
});

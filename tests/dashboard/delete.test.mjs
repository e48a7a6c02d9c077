// DELETE /api/instances/{id} (Bearer) of one install: it disappears from every view, and
// each figure drops by what that install contributed (the API before and after, and the
// page after against the API after).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, visit } from './lib/browser.mjs';
import { Collector, collectorBin, sampleData, tempDir } from './lib/collector.mjs';
import { comparePage, fetchViewJson, readTables, VIEWS } from './lib/dashboard.mjs';

collectorBin();

const TOKEN = 'dashboard-delete-token-91b2';
const bearer = { authorization: `Bearer ${TOKEN}` };

let tmp;
let collector;
let browser;
let context;
let page;

before(async () => {
  tmp = tempDir();
  const db = join(tmp.dir, 'events.db');
  await sampleData(db, { events: 4000, seed: 11, days: 20 });
  collector = await Collector.start(db, { adminToken: TOKEN });
  browser = await launch();
  ({ context, page } = await openPage(browser, collector.url));
  await page.goto('/login');
  await page.getByLabel('Admin token').fill(TOKEN);
  await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.getByLabel('Admin token').press('Enter')]);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await collector?.stop();
  tmp?.remove();
});

async function api(path) {
  const res = await collector.http(path, { headers: bearer });
  assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.text.slice(0, 200)}`);
  return res.json();
}

async function allStats() {
  const out = {};
  for (const v of VIEWS) out[v.name] = await api(`/api/stats/${v.name}`);
  return out;
}

const key = (...xs) => JSON.stringify(xs);

describe('deleting one install', () => {
  test('it disappears from every view and every figure drops by its share', async () => {
    const before = await allStats();
    // An install with a usage report, a crash and feature events in the range.
    const usage = before.usage.reports.map((r) => r.distinct_id);
    let victim;
    let events;
    for (const id of usage) {
      events = await api(`/api/events?distinct_id=${encodeURIComponent(id)}&limit=10000`);
      if (events.some((e) => e.event === '$exception') && events.length >= 5) {
        victim = id;
        break;
      }
    }
    assert.ok(victim, 'an install with a usage report and an error report in the sample data');
    assert.ok(events.length < 10000, 'all its events were read');

    // Its page shows up before (usage-reports lists it).
    await visit(page, '/usage');
    const shownBefore = (await readTables(page))['usage-reports'].rows.some((r) => r.some((c) => c.text === victim));
    assert.ok(shownBefore, `${victim} is in usage-reports before the delete`);

    const del = await collector.http(`/api/instances/${encodeURIComponent(victim)}`, { method: 'DELETE', headers: bearer });
    assert.equal(del.status, 200, `DELETE: ${del.status} ${del.text}`);
    const deleted = del.json();
    assert.equal(deleted.deleted, events.length, `deleted ${JSON.stringify(deleted)}, it had ${events.length} events`);

    const afterStats = await allStats();
    // ids: one install fewer in the range, and on each day it was active.
    assert.equal(afterStats.ids.active_in_range, before.ids.active_in_range - 1, 'active in range drops by one');
    const victimDays = new Set(events.map((e) => e.timestamp.slice(0, 10)));
    for (const d of before.ids.daily) {
      const a = afterStats.ids.daily.find((x) => x.day === d.day)?.active ?? 0;
      assert.equal(a, d.active - (victimDays.has(d.day) ? 1 : 0), `active on ${d.day}`);
    }
    // events: each name drops by its events and occurrences.
    const mine = new Map();
    for (const e of events) {
      const m = mine.get(e.event) ?? { events: 0, occurrences: 0 };
      m.events += 1;
      m.occurrences += Number.isInteger(e.properties?.batch_size) ? e.properties.batch_size : 1;
      mine.set(e.event, m);
    }
    for (const t of before.events.totals) {
      const a = afterStats.events.totals.find((x) => x.event === t.event) ?? { events: 0, occurrences: 0 };
      const m = mine.get(t.event) ?? { events: 0, occurrences: 0 };
      assert.equal(a.events, t.events - m.events, `${t.event}: events`);
      assert.equal(a.occurrences, t.occurrences - m.occurrences, `${t.event}: occurrences`);
    }
    // versions: its newest version's installs drop by one.
    const newest = [...events].sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1)).at(-1).properties;
    const vKey = key(newest.product, newest.product_version);
    const vBefore = before.versions.now.find((r) => key(r.product, r.version) === vKey);
    const vAfter = afterStats.versions.now.find((r) => key(r.product, r.version) === vKey)?.installs ?? 0;
    assert.ok(vBefore, `versions-now has ${vKey}`);
    assert.equal(vAfter, vBefore.installs - 1, `installs on ${vKey}`);
    // environment: one install fewer, and one fewer on its OS.
    assert.equal(afterStats.environment.installs, before.environment.installs - 1, 'environment installs');
    const osBefore = before.environment.os.find((r) => r.value === newest.os);
    const osAfter = afterStats.environment.os.find((r) => r.value === newest.os)?.installs ?? 0;
    assert.ok(osBefore, `env-os has ${newest.os}`);
    assert.equal(osAfter, osBefore.installs - 1, `installs on ${newest.os}`);
    // usage: its report is gone.
    assert.equal(afterStats.usage.reports.length, before.usage.reports.length - 1, 'one usage report fewer');
    assert.ok(!afterStats.usage.reports.some((r) => r.distinct_id === victim));
    // crashes: its error reports are gone from the groups' counts.
    const crashes = events.filter((e) => e.event === '$exception');
    const countBefore = before.crashes.groups.reduce((n, g) => n + g.count, 0);
    const countAfter = afterStats.crashes.groups.reduce((n, g) => n + g.count, 0);
    assert.equal(countAfter, countBefore - crashes.length, 'crash counts drop by its error reports');
    assert.equal(afterStats.crashes.reports, before.crashes.reports - crashes.length, 'crash reports');

    // Every page now matches the API after, and shows the install nowhere.
    for (const view of VIEWS) {
      await visit(page, view.path);
      const { data } = await fetchViewJson(page, view.name);
      assert.deepEqual(data, afterStats[view.name], `${view.path}: its JSON link vs the Bearer API`);
      const problems = await comparePage(page, view, data);
      assert.deepEqual(problems, [], `${view.path} after the delete:\n  ${problems.join('\n  ')}`);
      assert.ok(!(await page.content()).includes(victim), `${view.path} still shows ${victim}`);
    }
    await visit(page, '/');
    const fig = page.locator('[data-figure="active-in-range"]');
    const shown = (await fig.getAttribute('data-value')) ?? (await fig.textContent()).replace(/[^\d]/g, '');
    assert.equal(Number(shown), before.ids.active_in_range - 1, 'the page figure dropped by one');
  });
});

// The dashboard over an empty database: every view (and every range and product filter)
// answers 200 with its empty state (<p data-empty>) and no table rows; the JSON and CSV
// answer 200 with nothing in them.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiGet, launch, openPage, screenshotDir, visit } from './lib/browser.mjs';
import { Collector, collectorBin, tempDir } from './lib/collector.mjs';
import { parseCsv, PROPERTIES, readLinks, readTables, STATS_APIS, VIEWS } from './lib/dashboard.mjs';

collectorBin();

let tmp;
let collector;
let browser;
let context;
let page;

before(async () => {
  tmp = tempDir();
  collector = await Collector.start(join(tmp.dir, 'empty.db'));
  browser = await launch();
  ({ context, page } = await openPage(browser, collector.url));
});

after(async () => {
  await context?.close();
  await browser?.close();
  await collector?.stop();
  tmp?.remove();
});

describe('an empty database', () => {
  test('every view renders its empty state, for several ranges and a product', async () => {
    const shots = screenshotDir();
    for (const query of ['', '?range=7', '?range=365', '?range=90&product=chromadb', '?from=2020-01-01&to=2020-01-31', '?event=collection_add&property=add_amount']) {
      for (const view of VIEWS) {
        const where = `${view.path}${query}`;
        await visit(page, where);
        const empties = await page.locator('[data-empty]').count();
        assert.ok(empties >= 1, `${where}: no [data-empty]`);
        const paragraphs = await page.locator('p[data-empty]').count();
        assert.equal(paragraphs, empties, `${where}: the empty state is not a <p data-empty>`);
        const tables = await readTables(page);
        for (const [name, t] of Object.entries(tables)) assert.equal(t.rows.length, 0, `${where}: table ${name} has rows`);
        const points = await page.locator('figure[data-chart] [data-x][data-y]').count();
        assert.equal(points, 0, `${where}: chart points on an empty database`);
        assert.equal(await page.locator('nav a').count() >= VIEWS.length, true, `${where}: <nav> is there`);
        assert.equal(await page.locator('form[data-filter]').count(), 1, `${where}: the filter form is there`);
        if (view.name === 'ids') {
          const fig = page.locator('[data-figure="active-in-range"]');
          if (await fig.count()) {
            const value = (await fig.getAttribute('data-value')) ?? (await fig.textContent()).trim();
            assert.equal(Number(value), 0, `${where}: active-in-range is ${value}`);
          }
        }
        if (query === '') await page.screenshot({ path: join(shots, `empty-${view.name}.png`), fullPage: true });
        const { json } = await readLinks(page);
        for (const href of Object.values(json)) {
          const res = await apiGet(page, href);
          assert.equal(res.status, 200, `GET ${href}: ${res.status} ${res.text.slice(0, 200)}`);
        }
      }
    }
  });

  test('every /api/stats answer is empty, every CSV only its header', async () => {
    for (const api of STATS_APIS) {
      const path = api === 'properties' ? '/api/stats/properties?event=collection_add&property=add_amount' : `/api/stats/${api}`;
      const res = await apiGet(page, path);
      assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.text.slice(0, 200)}`);
      const data = res.json();
      if (api === 'products') {
        assert.deepEqual(data, []);
        continue;
      }
      const arrays = Object.entries(data).filter(([, v]) => Array.isArray(v) && !(api === 'properties' && v === data.properties));
      for (const [k, v] of arrays) assert.deepEqual(v, [], `${path}: ${k} is not empty`);
      for (const [k, v] of Object.entries(data)) if (typeof v === 'number') assert.equal(v, 0, `${path}: ${k} = ${v}`);
    }
    // The property tables' CSV links point at events.csv (see the next test for properties.csv).
    const views = [...VIEWS, { ...PROPERTIES, name: 'events', query: '&event=collection_add&property=add_amount' }];
    for (const view of views) {
      for (const [name, spec] of Object.entries(view.tables)) {
        const path = `/api/stats/${view.name}.csv?table=${name}${view.query ?? ''}`;
        const res = await apiGet(page, path);
        assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.text.slice(0, 200)}`);
        // Only the header (whose columns the realistic suite checks against the contract).
        const rows = parseCsv(res.text);
        assert.equal(rows.length, 1, `${path}: ${rows.length} lines, only the header wanted`);
        assert.ok(rows[0].length > 0 && rows[0].every((c) => spec.columns.includes(c)), `${path}: header ${JSON.stringify(rows[0])}`);
      }
    }
  });

  test("the property tables' CSV at /api/stats/properties.csv (the contract's VIEW.csv) answers too", async () => {
    for (const name of Object.keys(PROPERTIES.tables)) {
      const path = `/api/stats/properties.csv?table=${name}&event=collection_add&property=add_amount`;
      const res = await apiGet(page, path);
      assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.text.slice(0, 200)}`);
    }
  });
});

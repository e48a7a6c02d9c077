// The dashboard behind an admin token (--admin-token-file): the views redirect to /login
// without a session; a wrong token gets 401 and a message; the right one a
// telemetry_session cookie (HttpOnly, SameSite=Strict, Path=/) and the page it came from;
// /api/stats works with the cookie or the Bearer header, not without; a DELETE with only the
// cookie is refused (it needs the Bearer header); POST /logout ends the session.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, screenshotDir, visit } from './lib/browser.mjs';
import { Collector, collectorBin, sampleData, tempDir } from './lib/collector.mjs';
import { VIEWS } from './lib/dashboard.mjs';

collectorBin();

const TOKEN = 'dashboard-admin-token-4f7c1e';

let tmp;
let collector;
let browser;
let landedAfterLogin;

before(async () => {
  tmp = tempDir();
  const db = join(tmp.dir, 'events.db');
  await sampleData(db, { events: 2000, seed: 3, days: 20 });
  collector = await Collector.start(db, { adminToken: TOKEN });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await collector?.stop();
  tmp?.remove();
});

const bearer = { authorization: `Bearer ${TOKEN}` };

// Signs in on the login page the browser is on (keeping the view it was sent from), or
// on a fresh /login.
async function logIn(page, token) {
  if (new URL(page.url()).pathname !== '/login') await page.goto('/login');
  const field = page.getByLabel('Admin token');
  assert.equal(await field.getAttribute('type'), 'password', 'the token field is type=password');
  assert.equal(await field.getAttribute('name'), 'token');
  await field.fill(token);
  const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), field.press('Enter')]);
  await page.waitForLoadState('load');
  return res;
}

describe('an admin token', () => {
  test('without a session every view redirects (303) to /login, and /api answers 401', async () => {
    for (const view of VIEWS) {
      const res = await collector.http(`${view.path}?range=7`);
      assert.equal(res.status, 303, `GET ${view.path}: ${res.status}`);
      assert.match(res.headers.get('location') ?? '', /^(http:\/\/127\.0\.0\.1:\d+)?\/login(\?|$)/, `GET ${view.path}: Location ${res.headers.get('location')}`);
    }
    for (const path of ['/api/stats/ids', '/api/stats/products', '/api/stats/ids.csv?table=ids-daily', '/api/events']) {
      const res = await collector.http(path);
      assert.equal(res.status, 401, `GET ${path} without a token: ${res.status}`);
      const withToken = await collector.http(path, { headers: bearer });
      assert.equal(withToken.status, 200, `GET ${path} with the Bearer header: ${withToken.status} ${withToken.text.slice(0, 200)}`);
    }
    const wrongBearer = await collector.http('/api/stats/ids', { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrongBearer.status, 401, 'a wrong Bearer token');
  });

  test('the login form: a wrong token gets 401 and a message, the right one a strict cookie and the page', async () => {
    const { context, page } = await openPage(browser, collector.url);
    try {
      const first = await page.goto('/versions');
      assert.equal(new URL(page.url()).pathname, '/login', `the browser landed on ${page.url()}`);
      assert.equal(first.status(), 200, '/login answers 200');
      assert.ok(first.headers()['content-security-policy'], '/login has a CSP header');
      assert.equal(await page.locator('nav a[href*="/versions"]').count(), 0, 'the login page shows no dashboard');

      const wrong = await logIn(page, 'not-the-token');
      assert.equal(wrong.status(), 401, `a wrong token: ${wrong.status()}`);
      const message = (await page.locator('body').innerText()).trim();
      assert.match(message, /token|wrong|invalid|incorrect/i, `the 401 page says why: ${message.slice(0, 200)}`);
      assert.equal((await context.cookies()).filter((c) => c.name === 'telemetry_session').length, 0, 'no cookie for a wrong token');

      const right = await logIn(page, TOKEN);
      assert.equal(right.status(), 303, `the right token: ${right.status()}`);
      const setCookie = (await right.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
      const session = setCookie.find((c) => c.startsWith('telemetry_session='));
      assert.ok(session, `Set-Cookie: ${JSON.stringify(setCookie)}`);
      const attrs = session.split(';').map((a) => a.trim().toLowerCase());
      assert.ok(attrs.includes('httponly'), `HttpOnly: ${session}`);
      assert.ok(attrs.includes('samesite=strict'), `SameSite=Strict: ${session}`);
      assert.ok(attrs.includes('path=/'), `Path=/: ${session}`);
      assert.ok(!session.includes(TOKEN), 'the cookie is not the token itself');
      const [cookie] = (await context.cookies()).filter((c) => c.name === 'telemetry_session');
      assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `the browser's cookie: ${JSON.stringify(cookie)}`);
      landedAfterLogin = new URL(page.url()).pathname;
      assert.equal(await page.locator('nav').count(), 1, `after login ${page.url()} shows the dashboard`);
      await visit(page, '/versions');
      assert.ok((await page.locator('table[data-table="versions-now"]').count()) === 1, 'the versions page shows');
      await page.screenshot({ path: join(screenshotDir(), 'after-login.png'), fullPage: true });
      assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is invisible to the page');

      // With the cookie: every view, the JSON and the CSV.
      for (const view of VIEWS) await visit(page, view.path);
      const stats = await page.request.get('/api/stats/ids');
      assert.equal(stats.status(), 200, `/api/stats/ids with the cookie: ${stats.status()}`);
      assert.ok('active_in_range' in (await stats.json()));
      const csv = await page.request.get('/api/stats/ids.csv?table=ids-daily');
      assert.equal(csv.status(), 200, `CSV with the cookie: ${csv.status()}`);

      // A DELETE with only the cookie is refused, and deletes nothing.
      const someone = (await collector.http('/api/events?limit=1', { headers: bearer })).json()[0].distinct_id;
      const del = await page.request.delete(`/api/instances/${encodeURIComponent(someone)}`);
      assert.ok([401, 403].includes(del.status()), `DELETE with the cookie only: ${del.status()} ${await del.text()}`);
      const still = (await collector.http(`/api/events?distinct_id=${encodeURIComponent(someone)}&limit=1`, { headers: bearer })).json();
      assert.equal(still.length, 1, 'the refused DELETE deleted nothing');
      // The cookie replayed from outside the browser works for GET (it is a session, not a browser trick).
      const replay = await collector.http('/api/stats/products', { headers: { cookie: `telemetry_session=${cookie.value}` } });
      assert.equal(replay.status, 200, `GET with the cookie from node: ${replay.status}`);
      const replayDelete = await collector.http(`/api/instances/${encodeURIComponent(someone)}`, { method: 'DELETE', headers: { cookie: `telemetry_session=${cookie.value}` } });
      assert.ok([401, 403].includes(replayDelete.status), `DELETE with the cookie from node: ${replayDelete.status}`);

      // Logout: through the page's own logout control when it has one, else POST /logout.
      const logoutButton = page.locator('form[action$="/logout"] button, form[action$="/logout"] input[type=submit]');
      if (await logoutButton.count()) {
        await Promise.all([page.waitForResponse((r) => r.url().endsWith('/logout')), logoutButton.first().click()]);
      } else {
        console.log('note: the page has no logout form (form action=/logout); POSTing /logout directly');
        const out = await page.request.post('/logout');
        assert.ok(out.status() < 400, `POST /logout: ${out.status()}`);
      }
      await page.goto('/');
      assert.equal(new URL(page.url()).pathname, '/login', 'after logout the views redirect to /login again');
      const afterLogout = await collector.http('/api/stats/ids', { headers: { cookie: `telemetry_session=${cookie.value}` } });
      assert.equal(afterLogout.status, 401, `the old session cookie after logout: ${afterLogout.status}`);
      const viewAfter = await collector.http('/', { headers: { cookie: `telemetry_session=${cookie.value}` } });
      assert.equal(viewAfter.status, 303, `a view with the old cookie after logout: ${viewAfter.status}`);
    } finally {
      await context.close();
    }
  });

  test('after login the browser is back on the view it asked for (/versions)', () => {
    assert.ok(landedAfterLogin, 'the login test got that far');
    assert.equal(landedAfterLogin, '/versions', `GET /versions -> /login -> the right token -> ${landedAfterLogin}`);
  });

  test('the login form is keyboard-usable and labelled; logout and login need POST', async () => {
    const { context, page } = await openPage(browser, collector.url);
    try {
      await page.goto('/login');
      let reached = false;
      for (let i = 0; i < 20 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.getAttribute('name') === 'token');
      }
      assert.ok(reached, 'Tab reaches the token field');
      await page.keyboard.type(TOKEN);
      await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.keyboard.press('Enter')]);
      assert.equal(await page.locator('nav').count(), 1, 'logged in by keyboard, on /');
      const getLogout = await collector.http('/logout');
      assert.ok(getLogout.status === 405 || getLogout.status === 404 || getLogout.status === 303, `GET /logout: ${getLogout.status}`);
      assert.deepEqual(page.dialogs, []);
    } finally {
      await context.close();
    }
  });
});

// posthog-js (PostHog's browser SDK) request shapes, sent with node's fetch byte for byte
// as the browser SDK sends them. posthog-js needs a browser, so it is not installed here;
// the shapes follow its request code (src/request.ts, posthog-core.ts, request-queue.ts):
//
// - Every capture is POSTed to {api_host}/e/ (remote config may move it to /i/v0/e/).
// - gzip-js, the default compression: the JSON text gzipped (fflate's gzipSync, or the
//   browser's CompressionStream), sent with Content-Type: text/plain (a CORS-simple type,
//   so no preflight) and no Content-Encoding. posthog-js up to the 1.2xx releases put
//   `?compression=gzip-js&ver=<version>&_=<ms>` on the URL and sent the batched events as a
//   bare JSON array (one object when unbatched). Current releases (1.449.2 read for this)
//   drop the compression parameter for gzip-js and wrap the events as
//   {"api_key", "batch": [...], "sent_at"}: only the gzip magic bytes say it is gzip.
// - sendBeacon on page unload, gzip-js: the gzip bytes as an ArrayBuffer, so no Content-Type
//   at all, to /e/?beacon=1.
// - base64, the fallback for sendBeacon on page unload and for old servers:
//   `?compression=base64` (and `beacon=1` for a beacon), Content-Type
//   application/x-www-form-urlencoded, body `data=` + encodeURIComponent(base64(UTF-8 JSON)).
// - uncompressed (`disable_compression: true`): application/json, which makes the browser
//   send a CORS preflight first: OPTIONS with Origin and Access-Control-Request-Method: POST.
// - An event: {"uuid", "event", "properties": {"token", "distinct_id", "$lib": "web",
//   "$lib_version", ...}, "timestamp", "$set_once"?}; the api key and the distinct id live in
//   the properties, not at the top.
// - /track/ is the old Mixpanel-style path that PostHog still accepts like /e/.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Collector, collectorBin } from './collector.mjs';

collectorBin(); // fails the file at once, saying why, when TELEMETRY_COLLECTOR_BIN is unset or wrong

const TOKEN = 'phc_sender_test_js';
const JS_VERSION = '1.449.2';
const ORIGIN = 'http://localhost:5173';

// An event as posthog-js builds it in the browser.
function jsEvent(event, custom = {}, distinctId = '0190b7d4-aaaa-7bbb-8ccc-0123456789ab') {
  return {
    uuid: randomUUID(),
    event,
    properties: {
      $os: 'Mac OS X',
      $browser: 'Chrome',
      $device_type: 'Desktop',
      $current_url: `${ORIGIN}/settings?tab=ü`,
      $host: 'localhost:5173',
      $pathname: '/settings',
      $screen_height: 1117,
      $screen_width: 1728,
      $lib: 'web',
      $lib_version: JS_VERSION,
      $insert_id: Math.random().toString(36).slice(2),
      $time: Date.now() / 1000,
      distinct_id: distinctId,
      $device_id: distinctId,
      $session_id: '0190b7d4-bbbb-7ccc-8ddd-0123456789ab',
      $window_id: '0190b7d4-cccc-7ddd-8eee-0123456789ab',
      token: TOKEN,
      ...custom,
    },
    timestamp: new Date().toISOString(),
    $set_once: { $initial_pathname: '/settings' },
  };
}

// What posthog-js's _base64Encode does: UTF-8 bytes, then base64.
const base64 = (text) => Buffer.from(text, 'utf8').toString('base64');
// posthog-js's encodeToDataString.
const formBody = (json) => 'data=' + encodeURIComponent(base64(json));
const legacyQuery = (compression) => `?compression=${compression}&ver=${JS_VERSION}&_=${Date.now()}`;
// The body current posthog-js sends for events (addSentAtToCaptureBody).
const captureBody = (events) => ({ api_key: TOKEN, batch: events, sent_at: new Date().toISOString() });

describe('posthog-js request shapes', () => {
  let collector;
  before(async () => {
    collector = await Collector.start();
  });
  after(async () => {
    await collector?.close();
  });

  async function post(path, { contentType, body, headers = {} }) {
    const res = await fetch(collector.url + path, {
      method: 'POST',
      headers: { 'Content-Type': contentType, ...headers },
      body,
    });
    const text = await res.text();
    return { res, text };
  }

  // POSTs, expects 200, and finds each event stored once and intact.
  async function sendAndCheck(path, request, events) {
    const { res, text } = await post(path, request);
    assert.equal(res.status, 200, `POST ${path} (${request.contentType}): ${res.status} ${text}\n${collector.logTail(10)}`);
    assert.deepEqual(JSON.parse(text), { status: 1 }, `POST ${path} answer`);
    const stored = await collector.events();
    for (const sent of events) {
      const copies = stored.filter((e) => e.uuid === sent.uuid);
      assert.equal(copies.length, 1, `${sent.event} (${sent.uuid}) stored once`);
      const [e] = copies;
      assert.equal(e.event, sent.event);
      assert.equal(e.distinct_id, sent.properties.distinct_id, `${sent.event}: distinct_id from properties.distinct_id`);
      assert.equal(new Date(e.timestamp).getTime(), new Date(sent.timestamp).getTime(), `${sent.event}: timestamp`);
      for (const [key, value] of Object.entries(sent.properties)) {
        if (key === 'token' || key === 'distinct_id') continue; // routing fields; kept or not
        assert.deepEqual(e.properties[key], value, `${sent.event}: property ${key}`);
      }
    }
  }

  test('gzip-js, current posthog-js: text/plain gzip of {api_key, batch, sent_at} to /e/, no query', async () => {
    const events = [
      jsEvent('$pageview', { title: 'Réglages — 設定 🚀' }),
      jsEvent('clicked_save', { nested: { form: { fields: ['name', 'e-mail'], valid: true, count: 2 } } }),
    ];
    const body = gzipSync(JSON.stringify(captureBody(events)));
    await sendAndCheck('/e/', { contentType: 'text/plain', body }, events);
  });

  test('gzip-js, legacy posthog-js: ?compression=gzip-js with a gzipped bare array to /e/', async () => {
    const events = [jsEvent('legacy_array_1', { n: 1 }), jsEvent('legacy_array_2', { n: 2.5 })];
    const body = gzipSync(JSON.stringify(events));
    await sendAndCheck(`/e/${legacyQuery('gzip-js')}`, { contentType: 'text/plain', body }, events);
  });

  test('gzip-js, legacy posthog-js unbatched: one gzipped event object to /e/', async () => {
    const event = jsEvent('legacy_single', { unicode: 'naïve 日本語' });
    const body = gzipSync(JSON.stringify(event));
    await sendAndCheck(`/e/${legacyQuery('gzip-js')}`, { contentType: 'text/plain', body }, [event]);
  });

  test('gzip-js to /i/v0/e/ (the endpoint remote config can select)', async () => {
    const events = [jsEvent('ingestion_v0', { where: 'i/v0' })];
    const body = gzipSync(JSON.stringify(captureBody(events)));
    await sendAndCheck(`/i/v0/e/${legacyQuery('gzip-js')}`, { contentType: 'text/plain', body }, events);
  });

  test('gzip-js to /batch/', async () => {
    const events = [jsEvent('batch_gzip_js_1'), jsEvent('batch_gzip_js_2', { list: [1, 'two', null] })];
    const body = gzipSync(JSON.stringify(captureBody(events)));
    await sendAndCheck(`/batch/${legacyQuery('gzip-js')}`, { contentType: 'text/plain', body }, events);
  });

  test('gzip-js by sendBeacon on page unload: gzip bytes with no Content-Type to /e/?beacon=1', async () => {
    const events = [jsEvent('$pageleave', { via: 'beacon' })];
    const body = gzipSync(JSON.stringify(captureBody(events)));
    const res = await fetch(`${collector.url}/e/?beacon=1`, { method: 'POST', body }); // a Uint8Array: no Content-Type
    const text = await res.text();
    assert.equal(res.status, 200, `${res.status} ${text}`);
    assert.equal((await collector.events()).filter((e) => e.uuid === events[0].uuid).length, 1);
  });

  test('base64 form body (sendBeacon fallback): data=<base64 JSON> to /e/?compression=base64&beacon=1', async () => {
    const events = [jsEvent('$pageleave', { text: 'ünïcødé ✓ + / = signs' }), jsEvent('beacon_2')];
    const body = formBody(JSON.stringify(captureBody(events)));
    await sendAndCheck(
      `/e/?compression=base64&beacon=1`,
      { contentType: 'application/x-www-form-urlencoded', body },
      events,
    );
  });

  test('base64 form body, legacy: one event as data=<base64 JSON> with ver and _', async () => {
    const event = jsEvent('legacy_form', { emoji: '🎉', quote: '"q" & <a>' });
    const body = formBody(JSON.stringify(event));
    await sendAndCheck(`/e/${legacyQuery('base64')}`, { contentType: 'application/x-www-form-urlencoded', body }, [event]);
  });

  test('base64 form body without a compression parameter (known by its Content-Type)', async () => {
    const events = [jsEvent('form_no_query', { n: 3 })];
    const body = formBody(JSON.stringify(events));
    await sendAndCheck('/e/', { contentType: 'application/x-www-form-urlencoded', body }, events);
  });

  test('/track/ with gzip-js', async () => {
    const events = [jsEvent('track_gzip', { path: 'track' })];
    const body = gzipSync(JSON.stringify(events));
    await sendAndCheck(`/track/${legacyQuery('gzip-js')}`, { contentType: 'text/plain', body }, events);
  });

  test('/track/ with a base64 form body', async () => {
    const event = jsEvent('track_form', { path: 'track' });
    const body = formBody(JSON.stringify(event));
    await sendAndCheck(`/track/${legacyQuery('base64')}`, { contentType: 'application/x-www-form-urlencoded', body }, [event]);
  });

  test('uncompressed JSON from a browser: the POST answer carries Access-Control-Allow-Origin', async () => {
    const events = [jsEvent('uncompressed_json', { compressed: false })];
    const request = {
      contentType: 'application/json',
      body: JSON.stringify(captureBody(events)),
      headers: { Origin: ORIGIN },
    };
    const { res, text } = await post('/e/', request);
    assert.equal(res.status, 200, text);
    const allowed = res.headers.get('access-control-allow-origin');
    assert.ok(allowed === ORIGIN || allowed === '*', `Access-Control-Allow-Origin: ${allowed}`);
    assert.equal((await collector.events()).filter((e) => e.uuid === events[0].uuid).length, 1);
  });

  for (const path of ['/e/', '/i/v0/e/', '/batch/']) {
    test(`CORS preflight: OPTIONS ${path} with Origin and Access-Control-Request-Method: POST`, async () => {
      const res = await fetch(collector.url + path, {
        method: 'OPTIONS',
        headers: {
          Origin: ORIGIN,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type',
        },
      });
      await res.arrayBuffer();
      assert.ok(res.status === 200 || res.status === 204, `OPTIONS ${path}: ${res.status}`);
      const allowed = res.headers.get('access-control-allow-origin');
      assert.ok(allowed === ORIGIN || allowed === '*', `Access-Control-Allow-Origin: ${allowed}`);
      const methods = res.headers.get('access-control-allow-methods');
      if (methods !== null) {
        assert.ok(methods === '*' || /\bPOST\b/i.test(methods), `Access-Control-Allow-Methods: ${methods}`);
      }
      const headers = res.headers.get('access-control-allow-headers');
      assert.ok(headers !== null && (headers === '*' || /\bcontent-type\b/i.test(headers)), `Access-Control-Allow-Headers: ${headers}`);
    });
  }
});

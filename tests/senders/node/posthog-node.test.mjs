// PostHog's official Node SDK (posthog-node, from npm) sending to the real collector.
//
// What posthog-node 5.70.0 sends (@posthog/core's sendBatch, posthog-node's client.js):
// POST {host}/batch/ with Content-Type: application/json, Content-Encoding: gzip (node:zlib;
// `disableCompression: true` sends plain JSON), User-Agent posthog-node/<version>, body
// {"api_key", "batch": [...], "sent_at"}; each item is {"distinct_id", "event", "properties",
// "timestamp", "uuid"} with a UUIDv7 made by the SDK unless the caller gives one, and
// properties gaining "$lib": "posthog-node", "$lib_version", "$is_server": true, "$geoip_disable"
// (the default disableGeoip) and "$groups" when groups are given. Network errors, 408, 429 and
// 5xx are retried (fetchRetryCount times, fetchRetryDelay apart) with the same body; other
// statuses drop the batch and emit 'error'. Events marked as AI events (captureAi) would go to
// /i/v0/ai/batch/ instead: not used here. The test records each request through the SDK's
// `fetch` option and prints what it saw, so a later SDK that changes any of this shows it.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostHog } from 'posthog-node';
import { Collector, UUID, collectorBin, countBy } from './collector.mjs';

collectorBin(); // fails the file at once, saying why, when TELEMETRY_COLLECTOR_BIN is unset or wrong

const API_KEY = 'phc_sender_test_node';
const SDK_VERSION = JSON.parse(readFileSync(new URL('./node_modules/posthog-node/package.json', import.meta.url))).version;

// A fetch for the SDK's `fetch` option: the real global fetch, with each request noted.
function recordingFetch(seen) {
  return async (url, options) => {
    const headers = new Headers(options.headers);
    seen.push({
      path: new URL(url).pathname + new URL(url).search,
      contentType: headers.get('content-type'),
      contentEncoding: headers.get('content-encoding'),
      userAgent: headers.get('user-agent'),
    });
    return fetch(url, options);
  };
}

function newClient(host, extra = {}) {
  const seen = [];
  const errors = [];
  const captured = []; // the messages as the SDK queued them (with its uuids)
  const client = new PostHog(API_KEY, {
    host,
    flushAt: 3,
    flushInterval: 0,
    fetchRetryCount: 3,
    fetchRetryDelay: 100,
    requestTimeout: 5000,
    fetch: recordingFetch(seen),
    ...extra,
  });
  client.on('error', (err) => errors.push(err));
  client.on('capture', (message) => captured.push(message));
  return { client, seen, errors, captured };
}

// Deep-equal for each property sent, plus what posthog-node adds.
function checkProperties(stored, sent, name) {
  for (const [key, value] of Object.entries(sent)) {
    assert.ok(key in stored.properties, `${name}: property ${key} missing in ${JSON.stringify(stored.properties)}`);
    assert.deepEqual(stored.properties[key], JSON.parse(JSON.stringify(value)), `${name}: property ${key}`);
  }
  assert.equal(stored.properties.$lib, 'posthog-node', `${name}: $lib`);
  assert.equal(stored.properties.$lib_version, SDK_VERSION, `${name}: $lib_version`);
}

describe('posthog-node', () => {
  let collector;
  before(async () => {
    collector = await Collector.start();
  });
  after(async () => {
    await collector?.close();
  });

  test('capture: every event stored once with its properties', async (t) => {
    const before = (await collector.events()).length;
    const { client, seen, errors, captured } = newClient(collector.url);
    const explicitUuid = randomUUID();
    const explicitTime = new Date('2024-05-01T10:00:00.123Z');
    const sent = [
      {
        event: 'server_start',
        distinctId: 'install-node-1',
        properties: { product: 'chroma', product_version: '0.5.0', os: 'linux', count: 42, negative: -7, ratio: 0.125, big: 9007199254740991, zero: 0, enabled: true, missing: null },
      },
      { event: 'collection_add', distinctId: 'install-node-1', properties: { batch_size: 100, collection: 'my_collection' } },
      {
        event: 'unicode_ünïcødé_事件',
        distinctId: 'install-node-2 ünï 🚀',
        properties: { text: 'naïve café — 日本語 — שלום — 🚀🎉', escapes: 'line1\nline2\t"quoted" \\ back / slash', ключ: 'значение' },
      },
      {
        event: 'nested_objects',
        distinctId: 'install-node-1',
        properties: {
          config: { hnsw: { m: 16, ef: 100.5, space: 'cosine' }, list: [1, 'two', 3.25, true, null, { deep: [] }], none: {} },
          tags: ['a', 'b', 'ç'],
        },
      },
      { event: 'with_uuid', distinctId: 'install-node-1', uuid: explicitUuid, properties: { given: 'uuid' } },
      { event: 'with_timestamp', distinctId: 'install-node-1', timestamp: explicitTime, properties: { when: 'explicit' } },
      { event: 'with_groups', distinctId: 'install-node-1', groups: { company: 'acme' }, properties: { plan: 'free' } },
      { event: 'no_properties', distinctId: 'install-node-3' },
    ];
    for (const e of sent) client.capture(e);
    await client.captureImmediate({ event: 'captured_immediately', distinctId: 'install-node-1', properties: { immediate: true } });
    await client.shutdown();
    t.diagnostic(`posthog-node ${SDK_VERSION} requests: ${JSON.stringify(seen)}`);

    assert.deepEqual(errors, [], 'posthog-node emitted errors');
    // captureImmediate sends at once and emits no 'capture' event: found by name below.
    assert.equal(captured.length, sent.length, 'the SDK queued every capture');
    const events = (await collector.events()).slice(before);
    assert.equal(events.length, sent.length + 1, `stored ${events.length} events:\n${collector.logTail()}`);
    const counts = countBy(events);
    for (const message of captured) {
      assert.match(message.uuid, UUID);
      assert.equal(counts.get(message.uuid), 1, `${message.event} (uuid ${message.uuid}) stored once`);
    }
    const byName = new Map(events.map((e) => [e.event, e]));
    for (const e of sent) {
      const stored = byName.get(e.event);
      assert.ok(stored, `${e.event} stored`);
      assert.equal(stored.distinct_id, e.distinctId, `${e.event}: distinct_id`);
      checkProperties(stored, e.properties ?? {}, e.event);
    }
    assert.equal(byName.get('with_uuid').uuid, explicitUuid);
    assert.equal(new Date(byName.get('with_timestamp').timestamp).getTime(), explicitTime.getTime());
    assert.deepEqual(byName.get('with_groups').properties.$groups, { company: 'acme' });
    checkProperties(byName.get('captured_immediately'), { immediate: true }, 'captured_immediately');
    for (const request of seen) {
      assert.ok(['/batch/', '/i/v0/e/', '/e/', '/capture/'].includes(request.path.split('?')[0]), `posted to ${request.path}`);
    }
  });

  test('capture without compression (disableCompression: true)', async (t) => {
    const before = (await collector.events()).length;
    const { client, seen, errors, captured } = newClient(collector.url, { disableCompression: true });
    for (const i of [1, 2, 3, 4]) client.capture({ event: `plain_${i}`, distinctId: 'install-node-plain', properties: { i, text: 'ü' } });
    await client.shutdown();
    t.diagnostic(`requests: ${JSON.stringify(seen)}`);
    assert.deepEqual(errors, []);
    assert.ok(seen.every((r) => r.contentEncoding === null), 'no Content-Encoding');
    const events = (await collector.events()).slice(before);
    const counts = countBy(events);
    assert.equal(events.length, 4);
    for (const m of captured) assert.equal(counts.get(m.uuid), 1, `${m.event} stored once`);
  });

  test('retries across a collector restart store every event once', async () => {
    const c = await Collector.start();
    try {
      const { client, seen, errors, captured } = newClient(c.url, { flushAt: 2, fetchRetryCount: 20, fetchRetryDelay: 150 });
      client.capture({ event: 'before_1', distinctId: 'install-node-restart' });
      client.capture({ event: 'before_2', distinctId: 'install-node-restart' });
      await client.flush();
      assert.equal((await c.waitForEvents(2)).length, 2, 'stored before the restart');

      await c.stop();
      client.capture({ event: 'during_1', distinctId: 'install-node-restart', properties: { n: 1 } });
      client.capture({ event: 'during_2', distinctId: 'install-node-restart', properties: { n: 2 } });
      client.capture({ event: 'during_3', distinctId: 'install-node-restart', properties: { n: 3 } });
      const flushing = client.flush().catch((err) => errors.push(err));
      await sleep(500); // a few attempts fail with connection refused
      const attemptsWhileDown = seen.length - 1;
      await c.start(c.addr);
      await flushing;
      assert.ok(attemptsWhileDown >= 2, `${attemptsWhileDown} attempts while the collector was down`);
      await client.shutdown();

      assert.deepEqual(errors, [], 'posthog-node gave up on a batch');
      const events = await c.events();
      const counts = countBy(events);
      assert.equal(captured.length, 5);
      for (const m of captured) assert.equal(counts.get(m.uuid), 1, `${m.event} stored once`);
      assert.equal(events.length, 5);
    } finally {
      await c.close();
    }
  });

  test('a lost answer makes the SDK resend the batch; the collector stores it once', async () => {
    const before = (await collector.events()).length;
    // Forwards to the collector, then for the first two stored batches closes the
    // connection instead of answering: the SDK sees a network error and retries.
    let toDrop = 2;
    let requests = 0;
    const proxy = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const headers = { ...req.headers };
      delete headers.host;
      delete headers['content-length'];
      const answer = await fetch(collector.url + req.url, { method: req.method, headers, body: Buffer.concat(chunks) });
      const text = await answer.text();
      requests++;
      if (answer.status === 200 && toDrop > 0) {
        toDrop--;
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { client, errors, captured } = newClient(`http://127.0.0.1:${proxy.address().port}`, { flushAt: 2 });
      for (const i of [1, 2, 3, 4]) client.capture({ event: `lost_${i}`, distinctId: 'install-node-lost' });
      await client.shutdown();
      assert.deepEqual(errors, []);
      assert.equal(toDrop, 0, 'two answers were dropped');
      assert.ok(requests >= 3, `the proxy saw ${requests} requests: two dropped, then answered`);
      const events = (await collector.events()).slice(before);
      const counts = countBy(events);
      for (const m of captured) assert.equal(counts.get(m.uuid), 1, `${m.event} stored once`);
      assert.equal(events.length, 4);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

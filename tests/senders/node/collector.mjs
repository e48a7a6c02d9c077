// The real collector as a child process, and its read API. The binary comes from
// TELEMETRY_COLLECTOR_BIN (`make test-senders` sets it to target/debug/telemetry-collector).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

export function collectorBin() {
  const bin = process.env.TELEMETRY_COLLECTOR_BIN;
  if (!bin) {
    throw new Error(
      'TELEMETRY_COLLECTOR_BIN is not set: run `make test-senders`, or point it at ' +
        'target/debug/telemetry-collector (cargo build -p telemetry-collector)',
    );
  }
  if (!existsSync(bin) || !statSync(bin).isFile()) {
    throw new Error(`TELEMETRY_COLLECTOR_BIN=${bin} is not a file: build it with \`cargo build -p telemetry-collector\``);
  }
  return bin;
}

// One collector database, served by one process at a time: stop() then start(addr) on the
// same address and database simulates a restart.
export class Collector {
  constructor() {
    this.bin = collectorBin();
    this.dir = mkdtempSync(join(tmpdir(), 'senders-node-'));
    this.db = join(this.dir, 'events.db');
    this.logs = ''; // stderr of every run (RUST_LOG=debug: one line per request)
    this.child = null;
    this.url = null;
    this.addr = null;
  }

  static async start() {
    const c = new Collector();
    await c.start('127.0.0.1:0');
    return c;
  }

  // Starts on listen; a restart may find the port held for a moment by the previous run.
  async start(listen) {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await this.#tryStart(listen);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`collector did not start on ${listen}: ${err.message}\n${this.logs}`);
        await sleep(100);
      }
    }
  }

  #tryStart(listen) {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, ['serve', '--listen', listen, '--db', this.db], {
        env: { ...process.env, RUST_LOG: 'debug' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk) => {
        this.logs += chunk;
      });
      const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('no `listening on` line within 10 s'));
      }, 10000);
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^listening on (http:\/\/(.+))$/.exec(line.trim());
        if (!m) {
          child.kill('SIGKILL');
          reject(new Error(`unexpected first stdout line ${JSON.stringify(line)}`));
          return;
        }
        this.child = child;
        this.exited = exited;
        this.url = m[1];
        this.addr = m[2];
        resolve();
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the collector exited (code ${code}, signal ${signal}) before listening`));
      });
      child.once('error', reject);
    });
  }

  // SIGTERM: the collector answers what is in flight, closes the database, exits 0.
  async stop() {
    if (!this.child) return;
    const child = this.child;
    this.child = null;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    const { code, signal } = await this.exited;
    clearTimeout(killer);
    if (code !== 0) throw new Error(`the collector exited with code ${code} (signal ${signal}) after SIGTERM\n${this.logs}`);
  }

  async close() {
    try {
      await this.stop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  // Every stored event, oldest first.
  async events() {
    const res = await fetch(`${this.url}/api/events?limit=10000`);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /api/events: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  async waitForEvents(n, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const events = await this.events();
      if (events.length >= n || Date.now() > deadline) return events;
      await sleep(50);
    }
  }

  // The collector's log, for a failure message.
  logTail(lines = 40) {
    return this.logs.split('\n').slice(-lines).join('\n');
  }
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Counts stored events by a key (uuid by default).
export function countBy(events, key = (e) => e.uuid) {
  const counts = new Map();
  for (const e of events) counts.set(key(e), (counts.get(key(e)) ?? 0) + 1);
  return counts;
}

// The real collector binary as a child process: `serve` on 127.0.0.1:0 and `sample-data`.
// The binary comes from TELEMETRY_COLLECTOR_BIN (`make test-dashboard` sets it to
// target/debug/telemetry-collector, `make bench-dashboard` to the release build).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export function collectorBin() {
  const bin = process.env.TELEMETRY_COLLECTOR_BIN;
  if (!bin) {
    throw new Error(
      'TELEMETRY_COLLECTOR_BIN is not set: run `make test-dashboard`, or point it at ' +
        'target/debug/telemetry-collector (cargo build -p telemetry-collector)',
    );
  }
  if (!existsSync(bin) || !statSync(bin).isFile()) {
    throw new Error(`TELEMETRY_COLLECTOR_BIN=${bin} is not a file: build it with \`cargo build -p telemetry-collector\``);
  }
  return bin;
}

// A directory of the test's own, removed by the returned function.
export function tempDir(prefix = 'dashboard-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// `telemetry-collector sample-data`: returns { summary (its JSON line), ms }.
export async function sampleData(db, { events, seed = 7, days = 30, end = todayUtc() } = {}) {
  const args = ['sample-data', '--db', db, '--events', String(events), '--seed', String(seed), '--days', String(days), '--end', end];
  const started = performance.now();
  const { code, stdout, stderr } = await run(collectorBin(), args);
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`telemetry-collector ${args.join(' ')} exited ${code}\n${stderr}`);
  const lines = stdout.trim().split('\n').filter(Boolean);
  if (lines.length !== 1) throw new Error(`sample-data printed ${lines.length} stdout lines, not one JSON line:\n${stdout}`);
  let summary;
  try {
    summary = JSON.parse(lines[0]);
  } catch (err) {
    throw new Error(`sample-data's line is not JSON (${err.message}): ${lines[0]}`);
  }
  return { summary, ms };
}

export function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}

// `day` plus n days, YYYY-MM-DD (UTC).
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function run(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? signal, stdout, stderr }));
  });
}

// One `telemetry-collector serve` process on 127.0.0.1:0 over `db` (a SQLite path or a
// postgres:// URL). adminToken: written to a file passed as --admin-token-file.
export class Collector {
  static async start(db, { adminToken, extraArgs = [] } = {}) {
    const c = new Collector(db);
    await c.#start(adminToken, extraArgs);
    return c;
  }

  constructor(db) {
    this.bin = collectorBin();
    this.db = db;
    this.logs = '';
    this.child = null;
    this.url = null;
    this.tmp = null;
  }

  #start(adminToken, extraArgs) {
    // --retention-days 0: the background retention must not delete a data set whose
    // days lie in the past while a test reads it.
    const args = ['serve', '--listen', '127.0.0.1:0', '--db', this.db, '--retention-days', '0', ...extraArgs];
    if (adminToken !== undefined) {
      this.tmp = tempDir('dashboard-token-');
      const file = join(this.tmp.dir, 'admin-token');
      writeFileSync(file, `${adminToken}\n`, { mode: 0o600 });
      args.push('--admin-token-file', file);
    }
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr.setEncoding('utf8').on('data', (chunk) => {
        this.logs += chunk;
      });
      this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no \`listening on\` line within 30 s\n${this.logs}`));
      }, 30000);
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line.trim());
        if (!m) {
          child.kill('SIGKILL');
          reject(new Error(`unexpected first stdout line ${JSON.stringify(line)}`));
          return;
        }
        this.child = child;
        this.url = m[1];
        resolve();
      });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the collector exited (code ${code}, signal ${signal}) before listening\n${this.logs}`));
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
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    const { code, signal } = await this.exited;
    clearTimeout(killer);
    this.tmp?.remove();
    if (code !== 0) throw new Error(`the collector exited with code ${code} (signal ${signal}) after SIGTERM\n${this.logTail()}`);
  }

  logTail(lines = 30) {
    return this.logs.split('\n').slice(-lines).join('\n');
  }

  // GET/POST with node's fetch (not the browser): { status, headers, text, json() }.
  async http(path, { method = 'GET', headers = {}, body, redirect = 'manual' } = {}) {
    const res = await fetch(this.url + path, { method, headers, body, redirect });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      json: () => JSON.parse(text),
    };
  }

  // Events posted as PostHog's SDKs do (POST /batch/), every one now unless given.
  async postBatch(events, apiKey = 'phc_dashboard_test') {
    const res = await this.http('/batch/', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ api_key: apiKey, batch: events }),
    });
    if (res.status !== 200) throw new Error(`POST /batch/: ${res.status} ${res.text}`);
  }
}

// Headless Chromium from Debian's package (/usr/bin/chromium): playwright-core drives it and
// downloads no browser of its own. Every request a page makes is recorded, so a test can
// check that none left 127.0.0.1; every dialog is recorded and dismissed.

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.DASHBOARD_CHROMIUM ?? '/usr/bin/chromium';

export async function launch() {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
  } catch (err) {
    throw new Error(`${CHROMIUM} did not start (install Debian's chromium: \`make deps-system\`): ${err.message}`);
  }
}

// A fresh context and page on the collector's origin; page.requests and page.dialogs fill
// as it goes.
export async function openPage(browser, baseURL, options = {}) {
  const context = await browser.newContext({ baseURL, acceptDownloads: true, viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.requests = [];
  page.dialogs = [];
  page.consoleErrors = [];
  page.failedResponses = [];
  page.on('request', (r) => page.requests.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) page.failedResponses.push(`${r.status()} ${r.url()}`);
  });
  page.on('dialog', (d) => {
    page.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (m) => {
    if (m.type() === 'error') page.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => page.consoleErrors.push(`pageerror: ${e.message}`));
  return { context, page };
}

// Where screenshots go: $CARGO_TARGET_DIR/dashboard-test (make exports it), else the
// repository's target/dashboard-test.
export function screenshotDir(sub = 'dashboard-test') {
  const here = dirname(fileURLToPath(import.meta.url));
  const target = process.env.CARGO_TARGET_DIR ?? resolve(here, '..', '..', '..', 'target');
  const dir = join(target, sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// Navigates and fails on any status but 200 (after redirects).
export async function visit(page, path) {
  const res = await page.goto(path, { waitUntil: 'load' });
  if (!res) throw new Error(`no response for ${path}`);
  if (res.status() !== 200) throw new Error(`GET ${path}: ${res.status()} ${(await res.text()).slice(0, 300)}`);
  return res;
}

// GET through the page's context (its cookies): { status, headers, text, json }.
export async function apiGet(page, path) {
  const res = await page.request.get(path);
  const text = await res.text();
  return { status: res.status(), headers: res.headers(), text, json: () => JSON.parse(text) };
}

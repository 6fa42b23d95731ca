// Shared by the dashboard's browser scripts (dashboard.mjs, phone.mjs): environment, failures,
// launching Debian's Chromium off the network, collecting what the page reports, logging in,
// and the phone-width checks.
//
// Chromium is the system's (/usr/bin/chromium, or CHROMIUM): Playwright's own browser
// download is not available here, and the flags keep it off the (closed) network.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export function env(name) {
  const v = process.env[name];
  if (!v) {
    // Read before anything is started, so exiting at once leaves nothing behind.
    console.error(`${process.argv[1]}: FAIL: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

// Thrown for an expected failure: reported as one line, without a stack.
export class Failure extends Error {}

export function fail(message) {
  throw new Failure(message);
}

export async function text(locator) {
  return ((await locator.textContent()) || '').trim();
}

// Runs `body(page, problems)` in a fresh headless Chromium whose clock is in `timeZone`;
// `problems` collects what the page reports (script errors, CSP violations, failed requests).
// Sets the exit code and cleans up; a failure is printed as one line.
export async function withPage(timeZone, body) {
  const profile = mkdtempSync(join(tmpdir(), 'clarity-chromium-'));
  let context;
  try {
    // A persistent context is how Playwright takes a --user-data-dir: a fresh, empty one.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 900 },
      // The viewer may be elsewhere than the data: the page must not use the browser's zone.
      timezoneId: timeZone,
      locale: 'en-US',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // Chromium reports CSP violations as console errors; the page logs nothing itself.
      // Failed loads are judged from the responses below, which carry the URL.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
        problems.push(`console error: ${m.text()}`);
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.request().method()} ${new URL(r.url()).pathname}: ${r.status()}`);
    });
    page.on('requestfailed', (r) => problems.push(`${new URL(r.url()).pathname}: ${r.failure()?.errorText}`));
    await body(page, problems);
  } catch (e) {
    const message = e instanceof Failure ? e.message : (e && e.stack) || String(e);
    console.error(`${process.argv[1]}: FAIL: ${message}`);
    process.exitCode = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

// Opens /dashboard and logs in through the form.
export async function logIn(page, baseUrl, email, password) {
  const resp = await page.goto(`${baseUrl}/dashboard`);
  if (!resp || resp.status() !== 200) fail(`GET /dashboard answered ${resp && resp.status()}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByTestId('login-submit').click();
}

// Nothing scrolls sideways at the viewport's width.
export async function checkNoSideScroll(page) {
  const w = await page.evaluate(() => ({
    scroll: document.scrollingElement.scrollWidth, doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth, inner: window.innerWidth,
  }));
  if (w.scroll > w.inner || w.doc > w.inner || w.body > w.inner) {
    fail(`the page scrolls sideways at ${w.inner} px: ${JSON.stringify(w)}`);
  }
}

// The text of each SVG under `selector` is readable (at least 10 px high) and no two texts of
// one SVG overlap. Returns how many texts were checked.
export async function checkSvgText(page, selector) {
  const svgs = await page.locator(selector).evaluateAll((nodes) => nodes.map((s) => [...s.querySelectorAll('text')]
    .map((t) => { const r = t.getBoundingClientRect(); return { t: t.textContent, l: r.left, r: r.right, top: r.top, b: r.bottom }; })));
  let n = 0;
  for (const texts of svgs) {
    for (const [i, a] of texts.entries()) {
      n += 1;
      if (a.b - a.top < 10) fail(`"${a.t}" in ${selector} is ${a.b - a.top} px high: too small to read`);
      for (const b of texts.slice(i + 1)) {
        if (a.l < b.r && b.l < a.r && a.top < b.b && b.top < a.b) {
          fail(`texts "${a.t}" and "${b.t}" overlap in ${selector} at ${await page.evaluate(() => window.innerWidth)} px`);
        }
      }
    }
  }
  return n;
}

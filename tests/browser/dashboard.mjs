// Drives /dashboard in Debian's headless Chromium: logs in as the viewer, picks the owner who
// shared with them, waits until the page is subscribed, prints READY (the Rust test then makes
// the owner's data and insight), waits for the insight to appear live, saves a screenshot and
// prints SEEN. Exits non-zero with a message on any failure.
//
// Run by tests/api/browser.rs; by hand:
//   BASE_URL=http://127.0.0.1:8080 VIEWER_EMAIL=... VIEWER_PASSWORD=... OWNER_ID=... \
//   OWNER_EMAIL=... SCREENSHOT=/tmp/dashboard.png node tests/browser/dashboard.mjs
//
// Chromium is the system's (/usr/bin/chromium, or CHROMIUM): Playwright's own browser
// download is not available here, and the flags keep it off the (closed) network.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const READY_TIMEOUT_MS = 30_000;
const INSIGHT_TIMEOUT_MS = 60_000;

function env(name) {
  const v = process.env[name];
  if (!v) {
    // Read before anything is started, so exiting at once leaves nothing behind.
    console.error(`dashboard.mjs: FAIL: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

// Thrown for an expected failure: reported as one line, without a stack.
class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

const baseUrl = env('BASE_URL');
const viewerEmail = env('VIEWER_EMAIL');
const viewerPassword = env('VIEWER_PASSWORD');
const ownerId = env('OWNER_ID');
const ownerEmail = env('OWNER_EMAIL');
const screenshot = env('SCREENSHOT');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const profile = mkdtempSync(join(tmpdir(), 'clarity-chromium-'));
let context;
// Problems the page itself reports: script errors, CSP violations, failed requests.
const pageProblems = [];

async function run() {
  // A persistent context is how Playwright takes a --user-data-dir: a fresh, empty one.
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1100, height: 1000 },
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
  page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Chromium reports CSP violations as console errors; the page logs nothing itself.
    // Failed loads are judged from the responses below, which carry the URL.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      pageProblems.push(`console error: ${m.text()}`);
    }
  });
  page.on('response', (r) => {
    // The browser asks for /favicon.ico on its own; the page has none.
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') {
      pageProblems.push(`${r.request().method()} ${new URL(r.url()).pathname}: ${r.status()}`);
    }
  });
  page.on('requestfailed', (r) => pageProblems.push(`${new URL(r.url()).pathname}: ${r.failure()?.errorText}`));

  const resp = await page.goto(`${baseUrl}/dashboard`);
  if (!resp || resp.status() !== 200) fail(`GET /dashboard answered ${resp && resp.status()}`);

  await page.getByLabel('Email').fill(viewerEmail);
  await page.getByLabel('Password').fill(viewerPassword);
  await page.getByTestId('login-submit').click();

  const select = page.getByTestId('user-select');
  await select.waitFor({ state: 'visible', timeout: READY_TIMEOUT_MS });
  const option = select.locator(`option[value="${ownerId}"]`);
  try {
    await option.waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
  } catch {
    const offered = await select.locator('option').allTextContents();
    fail(`the owner ${ownerId} is not offered; options: ${JSON.stringify(offered)}`);
  }
  const label = (await option.textContent()) || '';
  if (!label.includes(ownerEmail)) fail(`the owner's option reads ${JSON.stringify(label)}, not ${ownerEmail}`);
  await select.selectOption(ownerId);

  const live = page.locator(`#ws-status[data-state="subscribed"][data-user-id="${ownerId}"]`);
  try {
    await live.waitFor({ state: 'attached', timeout: READY_TIMEOUT_MS });
  } catch {
    const status = await page.getByTestId('ws-status').evaluate((n) => `${n.dataset.state} (${n.textContent})`);
    const notice = await page.getByTestId('notice').textContent();
    fail(`not subscribed to the owner's streams within ${READY_TIMEOUT_MS} ms: status ${status}, notice ${JSON.stringify(notice)}`);
  }
  if (pageProblems.length) fail(`the page reported problems before READY:\n  ${pageProblems.join('\n  ')}`);
  console.log('READY');

  const insight = page.getByTestId('insight').first();
  try {
    await insight.waitFor({ state: 'visible', timeout: INSIGHT_TIMEOUT_MS });
  } catch {
    const notice = await page.getByTestId('notice').textContent();
    fail(`no insight appeared within ${INSIGHT_TIMEOUT_MS} ms (notice ${JSON.stringify(notice)})`);
  }
  const insightId = await insight.getAttribute('data-insight-id');
  const summary = ((await insight.getByTestId('insight-summary').textContent()) || '').trim();
  if (!insightId) fail('the insight item carries no data-insight-id');
  if (summary.length < 10) fail(`the insight's summary is ${JSON.stringify(summary)}`);
  const text = (await insight.textContent()) || '';
  if (!text.includes('Recommendations') && !text.includes('Key points')) {
    fail(`the insight shows neither key points nor recommendations: ${JSON.stringify(text)}`);
  }
  const liveRegion = await page.getByTestId('insights').getAttribute('aria-live');
  if (liveRegion !== 'polite') fail(`the insight list's aria-live is ${liveRegion}`);

  // The analysis precedes its insight: by now the chart is drawn.
  const bars = page.locator('#chart svg rect.bar-rect');
  try {
    await bars.first().waitFor({ state: 'attached', timeout: 10_000 });
  } catch {
    fail(`no activity bars in the chart: ${await page.getByTestId('chart-caption').textContent()}`);
  }
  const barCount = await bars.count();
  const sleepBands = await page.locator('#chart svg rect.sleep-band').count();

  await page.screenshot({ path: screenshot, fullPage: true });
  if (pageProblems.length) fail(`the page reported problems:\n  ${pageProblems.join('\n  ')}`);
  console.log(`INSIGHT ${JSON.stringify({ insight_id: insightId, summary, bars: barCount, sleep_bands: sleepBands })}`);
  console.log('SEEN');
}

try {
  await run();
} catch (e) {
  const message = e instanceof Failure ? e.message : (e && e.stack) || String(e);
  console.error(`dashboard.mjs: FAIL: ${message}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

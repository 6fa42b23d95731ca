// Drives /dashboard in Debian's headless Chromium: logs in as the viewer, picks the owner who
// shared with them, waits until the page is subscribed, prints READY (the Rust test then makes
// the owner's data and insight), waits for the insight to appear live, checks what a user
// would read (dates and hours on the owner's clock although the browser runs in TIME_ZONE;
// captions and legend naming activity counts; a favicon; no horizontal scrolling at 390 px), saves
// screenshots at 1280 and 390 px and prints SEEN. Exits non-zero with a message on any failure.
//
// Run by tests/api/browser.rs; by hand:
//   BASE_URL=http://127.0.0.1:8080 VIEWER_EMAIL=... VIEWER_PASSWORD=... OWNER_ID=... \
//   OWNER_EMAIL=... SCREENSHOT=/tmp/wide.png SCREENSHOT_NARROW=/tmp/narrow.png \
//   TIME_ZONE=America/Los_Angeles DATA_OFFSET_MINUTES=540 DATA_END_MS=... DATA_DAYS=3 \
//   node tests/browser/dashboard.mjs
import { env, fail, logIn, text, withPage } from './common.mjs';

const READY_TIMEOUT_MS = 30_000;
const INSIGHT_TIMEOUT_MS = 60_000;

const baseUrl = env('BASE_URL');
const viewerEmail = env('VIEWER_EMAIL');
const viewerPassword = env('VIEWER_PASSWORD');
const ownerId = env('OWNER_ID');
const ownerEmail = env('OWNER_EMAIL');
const screenshot = env('SCREENSHOT');
const screenshotNarrow = env('SCREENSHOT_NARROW');
const timeZone = env('TIME_ZONE');
const dataOffsetMin = Number(env('DATA_OFFSET_MINUTES'));
const dataEndMs = Number(env('DATA_END_MS'));
const dataDays = Number(env('DATA_DAYS'));

async function run(page, pageProblems) {
  await logIn(page, baseUrl, viewerEmail, viewerPassword);

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
  const itemText = (await insight.textContent()) || '';
  if (!itemText.includes('Recommendations') && !itemText.includes('Key points')) {
    fail(`the insight shows neither key points nor recommendations: ${JSON.stringify(itemText)}`);
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

  await checkClockAndWords(page);
  await checkFavicon(page);
  await page.screenshot({ path: screenshot, fullPage: true });
  await checkNarrow(page);
  await page.screenshot({ path: screenshotNarrow, fullPage: true });
  if (pageProblems.length) fail(`the page reported problems:\n  ${pageProblems.join('\n  ')}`);
  console.log(`INSIGHT ${JSON.stringify({ insight_id: insightId, summary, bars: barCount, sleep_bands: sleepBands })}`);
  console.log('SEEN');
}

// ---- what a user reads ---------------------------------------------------------------------

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_MS = 86_400_000;
const pad2 = (n) => String(n).padStart(2, '0');
// `ms` on the data's clock, read through the UTC getters.
const onDataClock = (ms) => new Date(ms + dataOffsetMin * 60_000);
const offsetLabel = `UTC${dataOffsetMin < 0 ? '-' : '+'}${Math.floor(Math.abs(dataOffsetMin) / 60)}`
  + `${Math.abs(dataOffsetMin) % 60 ? `:${pad2(Math.abs(dataOffsetMin) % 60)}` : ''}`;
const dayText = (ms) => {
  const d = onDataClock(ms);
  return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
};
const clockText = (ms) => {
  const d = onDataClock(ms);
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
};

// Dates and hours on the data's clock; the chart's words say activity, as drawn.
async function checkClockAndWords(page) {
  const caption = page.getByTestId('chart-caption');
  // The analysis asked for last ends at the data's end: the chart shows it once it arrived.
  const endText = `${dayText(dataEndMs)} ${onDataClock(dataEndMs).getUTCFullYear()}, ${clockText(dataEndMs)} (${offsetLabel})`;
  try {
    await page.waitForFunction((want) => (document.getElementById('chart-caption').textContent || '').includes(want),
      endText, { timeout: 30_000 });
  } catch {
    fail(`the chart caption does not give the data's end on its own clock (${endText}; the browser is in ${timeZone}): ${JSON.stringify(await text(caption))}`);
  }
  const captionText = await text(caption);
  if (!captionText.includes(`Last ${dataDays} days to`)) fail(`the caption does not give the window's length: ${captionText}`);

  // Activity counts were uploaded (a research actigraph, so that actigraphy sleep periods are
  // scored): title, caption, legend and the chart's own title say activity, never steps.
  const title = await text(page.locator('#chart-title'));
  const legend = await text(page.getByTestId('legend-bars'));
  const svgTitle = await text(page.locator('#chart svg > title'));
  for (const [what, t] of [['chart title', title], ['caption', captionText], ['legend', legend], ['chart svg title', svgTitle]]) {
    if (!/activity/i.test(t) || /steps/i.test(t)) fail(`the ${what} does not say activity (the data is activity counts): ${JSON.stringify(t)}`);
  }
  const bands = await page.locator('#chart svg rect.sleep-band').count();
  const sleepLegend = await page.getByTestId('legend-sleep').isVisible();
  if (sleepLegend !== bands > 0) fail(`the legend ${sleepLegend ? 'shows' : 'hides'} sleep periods while ${bands} are drawn`);
  if (!bands) fail('no sleep period drawn although the nights were still');

  // Every midnight label is a date of the data's clock within the window.
  const midnights = new Map();
  const first = Math.ceil((dataEndMs - dataDays * DAY_MS - 3_600_000 + dataOffsetMin * 60_000) / DAY_MS) * DAY_MS
    - dataOffsetMin * 60_000;
  for (let m = first; m < dataEndMs; m += DAY_MS) {
    const d = onDataClock(m);
    midnights.set(`${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()}`, m);
  }
  const dayLabels = await page.locator('#chart svg text.day-label').allTextContents();
  if (dayLabels.length < dataDays - 1 || dayLabels.some((l) => !midnights.has(l))) {
    fail(`day labels ${JSON.stringify(dayLabels)} are not the midnights of the data's clock ${JSON.stringify([...midnights.keys()])}`);
  }
  // Hour labels: whole hours of the data's clock, ascending within each day.
  const hourLabels = await page.locator('#chart svg text.hour-label').allTextContents();
  if (hourLabels.length < dataDays * 3 || hourLabels.some((h) => !/^\d\d$/.test(h) || Number(h) % 3 || Number(h) === 0)) {
    fail(`hour labels ${JSON.stringify(hourLabels)}`);
  }
  // The nights were still from 23:00 to 07:00 on the data's clock: sleep is shown there. The
  // data ends now and starts whole days before, at the same time of day, so when the test
  // runs at night on the data's clock the first period may begin where the data does and the
  // last end where it does (nights cut by the window), within a minute.
  const inBed = await page.locator('#chart svg rect.sleep-band > title').allTextContents();
  const dataEnd = onDataClock(dataEndMs);
  const endMinute = dataEnd.getUTCHours() * 60 + dataEnd.getUTCMinutes();
  const atDataEdge = (minute) => Math.min((minute - endMinute + 1440) % 1440, (endMinute - minute + 1440) % 1440) <= 1;
  for (const t of inBed) {
    const m = /^In bed (\d\d):(\d\d) – (\d\d):(\d\d)/.exec(t);
    const [from, to] = m ? [Number(m[1]), Number(m[3])] : [NaN, NaN];
    const fromMinute = m ? from * 60 + Number(m[2]) : NaN;
    const toMinute = m ? to * 60 + Number(m[4]) : NaN;
    if (!m || !(from >= 21 || from <= 1 || atDataEdge(fromMinute)) || !((to >= 5 && to <= 8) || atDataEdge(toMinute))) {
      fail(`a sleep period reads ${JSON.stringify(t)}: not the night on the data's clock`);
    }
  }
  // Insights carry their dates on the same clock, and the offset is named.
  // The insight of the analysis asked for last follows that analysis on its own stream: wait
  // for it rather than read the list at the moment the chart shows the analysis.
  const lastDay = dayText(dataEndMs - 60_000);
  try {
    await page.waitForFunction((want) => [...document.querySelectorAll('[data-testid="insight-meta"]')]
      .some((n) => (n.textContent || '').includes(want)), `– ${lastDay}`, { timeout: 10_000 });
  } catch {
    // Reported below with what the page shows.
  }
  const metas = await page.getByTestId('insight-meta').allTextContents();
  if (!metas.length || metas.some((m) => !m.includes(`(${offsetLabel})`))) fail(`insight dates ${JSON.stringify(metas)} are not on ${offsetLabel}`);
  if (!metas.some((m) => m.includes(`– ${lastDay}`))) fail(`no insight's data ends on ${lastDay}: ${JSON.stringify(metas)}`);
}

async function checkFavicon(page) {
  const icon = await page.evaluate(async () => {
    const link = document.querySelector('link[rel="icon"]');
    if (!link) return null;
    const r = await fetch(link.href);
    return { href: link.getAttribute('href'), status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  });
  if (!icon) fail('the page links no favicon');
  if (icon.status !== 200 || !String(icon.type).startsWith('image/svg+xml') || !icon.body.startsWith('<svg')) {
    fail(`the favicon ${icon.href} answers ${icon.status} ${icon.type}`);
  }
}

// At a phone's width nothing scrolls sideways and the chart is redrawn with readable labels.
async function checkNarrow(page) {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.waitForFunction(() => {
      const s = document.querySelector('#chart svg');
      return s && s.viewBox.baseVal.width <= 390;
    }, null, { timeout: 10_000 });
  } catch {
    fail('the chart was not redrawn for 390 px');
  }
  const widths = await page.evaluate(() => ({
    doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
  }));
  if (widths.doc > 390 || widths.body > 390) fail(`the page scrolls sideways at 390 px: ${JSON.stringify(widths)}`);
  const labels = await page.locator('#chart svg text.day-label, #chart svg text.hour-label').evaluateAll(
    (ns) => ns.map((n) => { const r = n.getBoundingClientRect(); return { t: n.textContent, left: r.left, right: r.right, top: r.top, h: r.height }; }),
  );
  if (!labels.length) fail('no chart labels at 390 px');
  const small = labels.filter((l) => l.h < 10);
  if (small.length) fail(`chart labels too small to read at 390 px: ${JSON.stringify(small)}`);
  // Labels of one row do not overlap.
  const rows = new Map();
  for (const l of labels) rows.set(Math.round(l.top), [...(rows.get(Math.round(l.top)) || []), l]);
  for (const row of rows.values()) {
    row.sort((a, b) => a.left - b.left);
    for (let i = 1; i < row.length; i += 1) {
      if (row[i].left < row[i - 1].right) fail(`chart labels overlap at 390 px: ${row[i - 1].t} and ${row[i].t}`);
    }
  }
}

await withPage(timeZone, run);

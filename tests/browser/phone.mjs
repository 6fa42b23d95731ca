// Drives /dashboard in Debian's headless Chromium for a user with phone-shaped data (steps while
// walking, heart rate every 5 minutes, sleep stages from a watch and a phone, a UTC offset that
// changes from -05:00 to -04:00 during a night) while the browser runs in another zone. Checks
// what a user reads: steps per hour, the heart-rate line with the resting rate per day (or
// "not available"), one hypnogram per night with its first and last times, all on the data's
// clock with the zone named, the sources with their device, app and recording method; at 1280 and 390 px no text overlaps and nothing scrolls sideways.
// Saves screenshots at both widths and prints DONE. Exits non-zero with a message on failure.
//
// Run by tests/api/browser_phone.rs, which seeds the data and passes what must be seen (EXPECT,
// JSON) computed from the fixture itself; by hand:
//   BASE_URL=http://127.0.0.1:8080 EMAIL=... PASSWORD=... USER_ID=... TIME_ZONE=Asia/Tokyo \
//   SCREENSHOT=/tmp/wide.png SCREENSHOT_NARROW=/tmp/narrow.png EXPECT='{...}' node phone.mjs
import { checkNoSideScroll, checkSvgText, env, fail, logIn, text, withPage } from './common.mjs';

const TIMEOUT_MS = 30_000;
const baseUrl = env('BASE_URL');
const email = env('EMAIL');
const password = env('PASSWORD');
const userId = env('USER_ID');
const timeZone = env('TIME_ZONE');
const screenshot = env('SCREENSHOT');
const screenshotNarrow = env('SCREENSHOT_NARROW');
const expect = JSON.parse(env('EXPECT'));
const CHARTS = ['#chart svg', '#hr-chart svg', '#hypnogram svg'];

function same(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

function contains(what, got, want) {
  if (!got.includes(want)) fail(`${what} does not say ${JSON.stringify(want)}: ${JSON.stringify(got)}`);
}

await withPage(timeZone, async (page, problems) => {
  await logIn(page, baseUrl, email, password);
  const live = page.locator(`#ws-status[data-state="subscribed"][data-user-id="${userId}"]`);
  await live.waitFor({ state: 'attached', timeout: TIMEOUT_MS }).catch(async () => {
    fail(`not subscribed to the user's own streams: notice ${JSON.stringify(await text(page.getByTestId('notice')))}`);
  });
  // Drawn from the samples and from the analysis the test made.
  await page.waitForFunction((id) => {
    const hr = document.getElementById('hr-chart');
    return hr.dataset.analysisId === id && hr.dataset.readings && document.querySelector('#hypnogram figure svg');
  }, expect.analysis_id, { timeout: TIMEOUT_MS }).catch(async () => {
    const caption = async (id) => ((await page.getByTestId(id).count()) ? JSON.stringify(await text(page.getByTestId(id))) : `no ${id}`);
    fail(`the heart-rate chart and hypnogram were not drawn with analysis ${expect.analysis_id}: `
      + `${await caption('hr-caption')}, ${await caption('sleep-caption')}`);
  });

  await checkActivity(page);
  await checkHeart(page);
  await checkNights(page);
  await checkSources(page);
  for (const c of CHARTS) await checkSvgText(page, c);
  await page.screenshot({ path: screenshot, fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction((sel) => sel.every((s) => [...document.querySelectorAll(s)]
    .every((n) => n.viewBox.baseVal.width <= 390)), CHARTS, { timeout: 10_000 })
    .catch(() => fail('the charts were not redrawn for 390 px'));
  await checkNoSideScroll(page);
  let texts = 0;
  for (const c of CHARTS) texts += await checkSvgText(page, c);
  // Narrower, not poorer: the same bars, readings and nights, each night still with its times.
  same('step bars at 390 px', await page.locator('#chart svg rect.bar-rect').count(), expect.step_hours);
  same('nights at 390 px', await page.getByTestId('night').count(), expect.nights.length);
  same('first and last times of each night at 390 px',
    await page.locator('#hypnogram svg text.hyp-start, #hypnogram svg text.hyp-end').allTextContents(),
    expect.nights.flatMap((n) => [n.start, n.end]));
  await page.screenshot({ path: screenshotNarrow, fullPage: true });
  if (problems.length) fail(`the page reported problems:\n  ${problems.join('\n  ')}`);
  console.log(`DONE ${JSON.stringify({ texts_at_390: texts })}`);
});

// Steps per local hour: the bars, their first hour and the total are the fixture's.
async function checkActivity(page) {
  same('activity chart title', await text(page.locator('#chart-title')), 'Steps per hour');
  same('activity chart svg title', await text(page.locator('#chart svg > title')), 'Steps per hour');
  contains('the activity legend', await text(page.getByTestId('legend-bars')), 'steps per hour (count)');
  contains('the activity caption', await text(page.getByTestId('chart-caption')), expect.zone);
  same('step bars', await page.locator('#chart svg rect.bar-rect').count(), expect.step_hours);
  same('the first step bar', await text(page.locator('#chart svg rect.bar-rect > title').first()), expect.first_step_bar);
  same('steps in total', await page.locator('#chart').getAttribute('data-steps'), String(expect.steps_total));
  same('activity day labels', await page.locator('#chart svg text.day-label').allTextContents(), expect.day_labels);
  same('nights shaded', await page.locator('#chart svg rect.sleep-band').count(), expect.nights.length);
}

// Every reading drawn, the resting rate per day from the analysis or "not available".
async function checkHeart(page) {
  const box = page.locator('#hr-chart');
  same('heart-rate readings', await box.getAttribute('data-readings'), String(expect.hr_readings));
  const drawn = await box.locator('svg polyline.hr-line').evaluateAll((ns) => ns.reduce((n, p) => n + Number(p.dataset.readings), 0))
    + await box.locator('svg circle.hr-dot').count();
  same('heart-rate readings on the line', drawn, expect.hr_readings);
  same('heart-rate day labels', await box.locator('svg text.day-label').allTextContents(), expect.day_labels);
  const caption = await text(page.getByTestId('hr-caption'));
  contains('the heart-rate caption', caption, expect.zone);
  contains('the heart-rate legend', await text(page.getByTestId('legend-hr')), 'beats per minute, bpm');
  const resting = await box.locator('svg line.resting-hr > title').allTextContents();
  const legend = await text(page.getByTestId('legend-resting'));
  if (expect.resting.length) {
    same('resting heart rate lines', resting.length, expect.resting.length);
    expect.resting.forEach((want, i) => {
      if (!resting[i].startsWith(want)) fail(`resting heart rate ${i} reads ${JSON.stringify(resting[i])}, expected ${JSON.stringify(want)}…`);
    });
    same('the resting legend', legend, 'resting heart rate per day (bpm)');
  } else {
    same('resting heart rate lines', resting.length, 0);
    same('the resting legend', legend, 'resting heart rate: not available');
    contains('the heart-rate caption', caption, 'Resting heart rate: not available');
  }
}

// The sources table shows what the phone said about the watch's heart-rate readings: device,
// app and how they were recorded (provenance), with their count.
async function checkSources(page) {
  const want = expect.source_row;
  const rows = page.locator(`[data-testid="source-row"][data-source="${want.source}"]`);
  const cells = [];
  for (let i = 0; i < await rows.count(); i++) cells.push(await rows.nth(i).locator('td').allTextContents());
  if (!cells.some((c) => JSON.stringify(c) === JSON.stringify(want.cells))) {
    fail(`no sources row ${JSON.stringify(want.cells)}: ${JSON.stringify(cells)}`);
  }
  const tip = await rows.first().getAttribute('title');
  if (!cells.length || !tip) fail('the sources rows have no provenance tooltip');
}

// One hypnogram per night, dated by its morning, from the winning source, on the data's clock.
async function checkNights(page) {
  const caption = await text(page.getByTestId('sleep-caption'));
  contains('the sleep caption', caption, expect.zone);
  contains('the sleep caption', caption, `${expect.nights.length} nights`);
  const legend = await text(page.getByTestId('sleep-legend'));
  for (const w of ['in bed', 'awake', 'REM sleep', 'light sleep', 'deep sleep', 'asleep, stage not recorded']) contains('the sleep legend', legend, w);
  const figures = page.getByTestId('night');
  same('nights', await figures.count(), expect.nights.length);
  for (const [i, want] of expect.nights.entries()) {
    const fig = figures.nth(i);
    const what = `night ${i} (${want.date})`;
    same(`${what}: date`, await fig.getAttribute('data-date'), want.date);
    same(`${what}: source`, await fig.getAttribute('data-source'), want.source);
    same(`${what}: first time`, await text(fig.locator('svg text.hyp-start')), want.start);
    same(`${what}: last time`, await text(fig.locator('svg text.hyp-end')), want.end);
    same(`${what}: stage bars`, await fig.locator('svg rect.stage').count(), want.bars);
    const first = await text(fig.locator('svg rect.stage:not(.stage-in_bed) > title').first());
    if (!first.startsWith(want.first_stage)) fail(`${what}: the first stage reads ${JSON.stringify(first)}, expected ${JSON.stringify(want.first_stage)}…`);
    const figcaption = await text(fig.getByTestId('night-caption'));
    contains(`${what}: caption`, figcaption, `${want.start} – ${want.end}`);
    if (want.shift) contains(`${what}: caption`, figcaption, want.shift);
    if (want.over) contains(`${what}: caption`, figcaption, `over ${want.over}`);
  }
}

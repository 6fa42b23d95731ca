// Clarity dashboard: the three chart cards (activity, heart rate, sleep stages) with their
// captions and legends, from the latest analysis and, for the caller's own data, raw samples;
// and the sources of those samples with their provenance (device, app, how recorded).
//
// Rules:
// - Titles, captions and legends name what is drawn and its unit (steps or activity counts,
//   beats per minute, stages); a part that cannot be drawn says why (not available in the
//   analysis, not shared, no samples) instead of drawing nothing silently.
// - Every caption names the clock: the offsets of the samples drawn (or of the analysis'
//   window), with each change inside the range.
// - The activity and heart-rate charts of one's own data share one time range (the samples'
//   span, the last week at most), so their hours line up.
// - A share grantee never gets raw samples (the API does not share them): their charts come
//   from the analysis alone (hourly means, resting heart rate, per-night stage minutes).
'use strict';

(() => {
  const { HOUR_MS, DAY_MS, hhmm, fmtDay, fmtDateTime, fmtMinutes, fmtOffset, offsetOfDoc, Timeline } = window.Clarity.clock;
  const S = window.Clarity.samples;
  const G = window.Clarity.charts;
  const WEEK_HOURS = 7 * 24;
  const MAX_NIGHTS = 7;
  // Readings further apart than this are not joined by the heart-rate line.
  const HR_GAP_MS = 20 * 60000;
  const RESTING_METHODS = {
    asleep_lowest_30min: 'lowest 30-minute mean while asleep',
    day_lowest_30min: 'lowest 30-minute mean of the day',
    device: 'as the device reported it',
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  const widthOf = (box) => Math.max(Math.round(box.clientWidth) || 840, 240);
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  // "Sat 5 Dec 07:00" on the clock of that instant.
  const at = (tl, ms) => `${fmtDay(ms, tl.at(ms))} ${hhmm(ms, tl.at(ms))}`;

  // "3 days" / "27 hours": the length of a window.
  function fmtLength(ms) {
    const hours = Math.round(ms / HOUR_MS);
    if (hours < 48) return plural(hours, 'hour');
    return `${+(hours / 24).toFixed(1)} days`;
  }

  // What an analysis' hourly bars are: steps when it used step counts.
  function activityWords(a) {
    return (a.activity && a.activity.kind) === 'step_count'
      ? { noun: 'steps', title: 'Steps per hour' }
      : { noun: 'activity counts', title: 'Activity per hour' };
  }

  // The span of one's own samples (the last week at most) on their clock, whole local hours.
  function ownRange(samples) {
    const all = [...samples.hr, ...samples.steps, ...samples.stages];
    if (!all.length) return null;
    const tl = S.timelineOf(all);
    const last = all.reduce((m, s) => Math.max(m, s.to), -Infinity);
    const first = Math.max(all.reduce((m, s) => Math.min(m, s.from), Infinity), last - 7 * DAY_MS);
    const t0 = tl.hourStarts(first, first + 1)[0];
    const t1 = tl.hourStarts(last - 1, last)[0] + HOUR_MS;
    return { tl, t0, t1 };
  }

  function draw(ctx) {
    drawActivity(ctx);
    drawHeart(ctx);
    drawSleep(ctx);
    drawSources(ctx);
  }

  // ---- sources -----------------------------------------------------------------------------

  // One row per source of the drawn samples: its device, app and how it was recorded, as the
  // phone reported them (provenance); manual entries say that they win the minutes they cover.
  function drawSources({ samples, whose }) {
    const box = $('sources');
    const caption = $('sources-caption');
    box.replaceChildren();
    if (!samples) {
      caption.textContent = whose === 'your'
        ? 'Loading your sources…'
        : 'Sources are read from raw samples, which only their owner sees.';
      return;
    }
    const rows = S.sourcesOf([...samples.hr, ...samples.steps, ...samples.stages]);
    if (!rows.length) {
      caption.textContent = `No samples in ${whose} last 7 days.`;
      return;
    }
    caption.textContent = `Where ${whose} heart-rate, step and sleep samples of the last 7 days came from, `
      + 'as the phone reported it (a dash: not reported). Entries made by hand win the minutes they cover '
      + 'over recorded data in the analysis.';
    const head = el('tr', {}, ...['Source', 'Device', 'App', 'Recorded', 'Samples'].map((h) => el('th', { scope: 'col' }, h)));
    const body = rows.map((r) => {
      const tip = [r.device && `device ${r.device}`, r.app && `app ${r.app}`, r.method].filter(Boolean).join('; ');
      return el('tr', { 'data-testid': 'source-row', 'data-source': r.source, 'data-manual': String(r.manual), title: tip || 'no provenance reported' },
        el('td', {}, r.source), el('td', {}, r.device || '–'), el('td', {}, r.app || '–'),
        el('td', {}, r.method || '–'), el('td', { class: 'num' }, String(r.count)));
    });
    box.append(el('table', { class: 'sources' }, el('thead', {}, head), el('tbody', {}, ...body)));
  }

  // ---- activity ----------------------------------------------------------------------------

  function drawActivity(ctx) {
    const box = $('chart');
    box.replaceChildren();
    box.dataset.analysisId = (ctx.analysis && ctx.analysis.analysis_id) || '';
    $('chart-legend').hidden = true;
    if (ctx.samples && ctx.samples.steps.length) return drawSteps(box, ctx);
    if (ctx.analysis) return drawHourly(box, ctx.analysis, ctx.whose);
    $('chart-title').textContent = 'Activity per hour';
    $('chart-caption').textContent = ctx.analysesShared ? 'No analysis yet.' : 'Analyses are not shared with you.';
    return undefined;
  }

  function legend(bars, sleep) {
    $('legend-bars-text').textContent = bars;
    $('legend-sleep-text').textContent = sleep || '';
    $('legend-sleep').hidden = !sleep;
    $('chart-legend').hidden = false;
  }

  // Steps per local hour from the caller's step samples, nights in bed shaded.
  function drawSteps(box, { samples, analysis, whose }) {
    const { tl, t0, t1 } = ownRange(samples);
    const bins = S.stepsPerHour(samples.steps, tl, t0, t1);
    const bars = bins.map((b) => ({
      from: b.from, to: b.to, value: b.steps,
      title: `${at(tl, b.from)}–${hhmm(b.to, tl.at(b.to))}: ${Math.round(b.steps)} steps`,
    }));
    const nights = S.nights(samples.stages, S.analysedNightSources(analysis), tl).map((n) => ({
      from: n.from, to: n.to,
      title: `In bed ${hhmm(n.from, n.offsetFrom)} – ${hhmm(n.to, n.offsetTo)}, ${fmtMinutes(n.asleepMinutes)} asleep`,
    }));
    const total = Math.round(bins.reduce((s, b) => s + b.steps, 0));
    const max = Math.round(bins.reduce((m, b) => Math.max(m, b.steps), 0));
    const desc = `${total} steps in ${plural(bars.length, 'hour')} with steps, at most ${max} in one hour; `
      + `${plural(nights.filter((n) => n.to > t0 && n.from < t1).length, 'night')} in bed shaded.`;
    const chart = G.barChart({ W: widthOf(box), t0, t1, tl, id: 'chart-svg', title: 'Steps per hour', desc, bars, nights });
    box.append(chart.root);
    box.dataset.steps = String(total);
    $('chart-title').textContent = 'Steps per hour';
    $('chart-caption').textContent = `${at(tl, t0)} – ${at(tl, t1)}: steps per hour from ${whose} `
      + `${plural(samples.steps.length, 'step sample')}, ${tl.zoneText(t0, t1, whose)}. ${desc} `
      + 'An hour without a bar had no step sample: a phone counts steps only while walking.';
    legend('steps per hour (count)', chart.shaded ? 'night in bed, from sleep stages' : '');
  }

  // Mean activity (or steps) per hour from the analysis, sleep periods shaded.
  function drawHourly(box, a, whose) {
    const words = activityWords(a);
    $('chart-title').textContent = words.title;
    const hourly = a.activity && a.activity.hourly;
    const start = hourly ? Date.parse(hourly.start) : NaN;
    if (!hourly || !Array.isArray(hourly.means) || !hourly.means.length || Number.isNaN(start)) {
      $('chart-caption').textContent = `The latest analysis has no hourly ${words.noun}.`;
      return;
    }
    // The last week only, should the analysis ever carry more.
    const skip = Math.max(0, hourly.means.length - WEEK_HOURS);
    const means = hourly.means.slice(skip);
    const t0 = start + skip * HOUR_MS;
    const t1 = t0 + means.length * HOUR_MS;
    const tl = Timeline.fixed(offsetOfDoc(a));
    const bars = [];
    means.forEach((v, i) => {
      // A missing hour (null) stays a gap.
      if (typeof v === 'number' && Number.isFinite(v)) bars.push({ from: t0 + i * HOUR_MS, to: t0 + (i + 1) * HOUR_MS, value: v });
    });
    const max = bars.reduce((m, b) => Math.max(m, b.value), 0);
    const sleep = a.sleep || {};
    const periods = (sleep.periods || []).map((p) => ({ from: Date.parse(p.in_bed), to: Date.parse(p.out_bed), mins: p.total_sleep_minutes }))
      .concat((sleep.nights || []).filter((n) => n && n.method === 'stages')
        .map((n) => ({ from: Date.parse(n.bed_start), to: Date.parse(n.bed_end), mins: n.asleep_minutes })))
      .filter((p) => !Number.isNaN(p.from) && !Number.isNaN(p.to) && p.to > t0 && p.from < t1)
      .map((p) => ({
        from: p.from, to: p.to,
        title: `In bed ${hhmm(p.from, tl.at(p.from))} – ${hhmm(p.to, tl.at(p.to))}${Number.isFinite(p.mins) ? `, ${p.mins} min asleep` : ''}`,
      }));
    const desc = `${bars.length} of ${means.length} hours with data, highest hourly mean ${Math.round(max)}; `
      + `${plural(periods.length, 'sleep period')} shaded.`;
    const chart = G.barChart({ W: widthOf(box), t0, t1, tl, id: 'chart-svg', title: `Mean ${words.noun} per hour`, desc, bars, nights: periods });
    box.append(chart.root);
    const wFrom = Date.parse(a.window && a.window.from);
    const wTo = Date.parse(a.window && a.window.to);
    const span = Number.isNaN(wFrom) || Number.isNaN(wTo) ? '' : `Last ${fmtLength(wTo - wFrom)} to `;
    const end = Number.isNaN(wTo) ? Date.parse(a.created_at) : wTo;
    $('chart-caption').textContent = `${span}${fmtDateTime(end, tl.at(end))}: mean ${words.noun} per hour, `
      + `${tl.zoneText(t0, t1, whose)}; ${desc}`;
    legend(`mean ${words.noun} per hour`, periods.length ? 'sleep period' : '');
  }

  // ---- heart rate --------------------------------------------------------------------------

  function drawHeart({ analysis, samples, whose, analysesShared }) {
    const box = $('hr-chart');
    const caption = $('hr-caption');
    box.replaceChildren();
    box.dataset.analysisId = (analysis && analysis.analysis_id) || '';
    delete box.dataset.readings;
    $('hr-legend').hidden = true;
    const days = S.restingDays(analysis);
    const range = samples && samples.hr.length ? ownRange(samples) : null;
    // Why there is no line of readings.
    let none = 'Heart-rate readings are raw samples, which only their owner sees';
    if (whose === 'your') none = samples ? 'No heart-rate readings in your last 7 days of samples' : 'Loading your heart-rate readings…';
    let tl; let t0; let t1; let runs = [];
    let readingsText;
    if (range) {
      ({ tl, t0, t1 } = range);
      const hr = samples.hr.filter((s) => s.from >= t0 && s.from < t1);
      runs = S.heartRuns(hr, HR_GAP_MS);
      box.dataset.readings = String(hr.length);
      readingsText = `Heart rate from ${whose} ${plural(hr.length, 'reading')}, ${at(tl, t0)} – ${at(tl, t1)}, ${tl.zoneText(t0, t1, whose)}.`;
    } else if (days.length && analysis.window) {
      tl = Timeline.fixed(offsetOfDoc(analysis));
      t0 = Date.parse(analysis.window.from);
      t1 = Date.parse(analysis.window.to);
      readingsText = `${none}; ${tl.zoneText(t0, t1, whose)}.`;
    } else {
      let why = `${none}${analysis ? ', and the latest analysis has no resting heart rate' : ''}.`;
      if (!analysis && whose !== 'your') why = analysesShared ? 'No analysis yet.' : 'Analyses are not shared with you.';
      caption.textContent = why;
      return;
    }
    const resting = days.map((d) => {
      const { from, to } = G.dayRange(tl, d.date);
      const how = RESTING_METHODS[d.method] || d.method;
      return { from, to, bpm: d.bpm, title: `Resting heart rate ${fmtDay(from, tl.at(from))}: ${d.bpm} bpm${how ? ` (${how})` : ''}` };
    });
    const desc = `${runs.reduce((n, r) => n + r.length, 0)} readings in beats per minute; `
      + `${days.length ? `resting heart rate on ${plural(days.length, 'day')}` : 'no resting heart rate'}.`;
    const chart = G.heartChart({ W: widthOf(box), t0, t1, tl, id: 'hr-svg', title: 'Heart rate (bpm)', desc, runs, resting });
    box.append(chart.root);
    const methods = [...new Set(days.map((d) => RESTING_METHODS[d.method] || d.method).filter(Boolean))];
    const restingText = chart.resting
      ? `Resting heart rate per day from the latest analysis on ${plural(chart.resting, 'day')}${methods.length ? ` (${methods.join('; ')})` : ''}.`
      : `Resting heart rate: not available (the latest analysis ${analysis ? 'has none for these days' : 'has not arrived yet'}).`;
    caption.textContent = `${readingsText} ${restingText}`;
    $('legend-hr').hidden = !range;
    $('legend-resting-text').textContent = chart.resting
      ? 'resting heart rate per day (bpm)'
      : 'resting heart rate: not available';
    $('hr-legend').hidden = false;
  }

  // ---- sleep stages ------------------------------------------------------------------------

  function drawSleep({ analysis, samples, whose }) {
    const box = $('hypnogram');
    const caption = $('sleep-caption');
    box.replaceChildren();
    $('sleep-legend').hidden = true;
    if (!samples) {
      caption.textContent = whose === 'your'
        ? 'Loading your sleep stages…'
        : 'Sleep stages are raw samples, which only their owner sees; the analysis gives each night\'s minutes.';
      box.append(analysedNights(analysis));
      return;
    }
    const tl = S.timelineOf([...samples.hr, ...samples.steps, ...samples.stages]);
    const nights = S.nights(samples.stages, S.analysedNightSources(analysis), tl).slice(-MAX_NIGHTS);
    if (!nights.length) {
      caption.textContent = `No sleep stages in ${whose} last 7 days of samples.`;
      return;
    }
    const W = widthOf(box);
    nights.forEach((n, i) => {
      const others = n.sources.filter((s) => s !== n.source);
      const shift = n.offsetFrom !== n.offsetTo ? ` (${fmtOffset(n.offsetFrom)} → ${fmtOffset(n.offsetTo)})` : '';
      const chosen = others.length
        ? ` (chosen ${n.by === 'analysis' ? 'by the analysis' : 'for the most stage detail, then the most samples'} over ${others.join(', ')})`
        : '';
      const fig = el('figure', { class: 'night', 'data-testid': 'night', 'data-date': n.date, 'data-source': n.source },
        el('figcaption', { 'data-testid': 'night-caption' },
          `Night to ${fmtDay(n.to, n.offsetTo)}: ${hhmm(n.from, n.offsetFrom)} – ${hhmm(n.to, n.offsetTo)}${shift}, `
          + `${fmtMinutes(n.asleepMinutes)} asleep; source ${n.source || 'unnamed'}${chosen}.`));
      fig.append(G.nightChart({ W, night: n, tl, id: `night-${i}` }));
      box.append(fig);
    });
    const t0 = nights[0].from;
    const t1 = nights[nights.length - 1].to;
    caption.textContent = `${plural(nights.length, 'night')} from ${whose} sleep_stage samples, each dated by `
      + `its morning; one row per stage, a bar for each time it was recorded; ${tl.zoneText(t0, t1, whose)}.`;
    // Its row is drawn only for a night that has it, and so is its legend entry.
    $('legend-out-of-bed').hidden = !nights.some((n) => n.segments.some((s) => s.stage === 'out_of_bed'));
    $('sleep-legend').hidden = false;
  }

  // A grantee's view: each stage night of the analysis, in words.
  function analysedNights(analysis) {
    const list = el('ul', { class: 'nights', 'data-testid': 'analysed-nights' });
    const nights = ((analysis && analysis.sleep && analysis.sleep.nights) || []).filter((n) => n && n.method === 'stages');
    for (const n of nights.slice(-MAX_NIGHTS)) {
      const day = fmtDay(Date.parse(`${n.date}T12:00:00Z`), 0);
      const parts = [['light', n.light_minutes], ['deep', n.deep_minutes], ['REM', n.rem_minutes], ['awake', n.awake_minutes]]
        .filter(([, m]) => Number.isFinite(m)).map(([w, m]) => `${w} ${fmtMinutes(m)}`);
      list.append(el('li', {}, `Night to ${day}: ${Number.isFinite(n.asleep_minutes) ? fmtMinutes(n.asleep_minutes) : '?'} asleep`
        + `${parts.length ? ` (${parts.join(', ')})` : ''}; source ${n.source || 'unnamed'}.`));
    }
    return list;
  }

  window.Clarity.views = { draw };
})();

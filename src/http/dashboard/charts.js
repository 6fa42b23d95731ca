// Clarity dashboard: the charts, as plain SVG (no library: the page's CSP loads nothing else).
//
// Rules:
// - A chart is drawn at the width it is shown at, one SVG unit a CSS pixel, so its text keeps
//   its size on a phone; the caller redraws it when that width changes.
// - Labels never overlap: each is placed only where it clears the ones already placed in its
//   row (widths are estimated from the 11 px font), so a narrow screen shows fewer, not
//   colliding, labels.
// - Hours and dates are those of the data's `Timeline` (clock.js), per instant.
// - Every drawn mark has a <title> (its time and value with the unit), and every chart an SVG
//   <title> and <desc> saying what is drawn.
'use strict';

(() => {
  const { HOUR_MS, DAY_MS, WEEKDAYS, pad2, onClock, hhmm, fmtDay, fmtMinutes, Timeline } = window.Clarity.clock;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const CHAR_PX = 6.5;
  const LABEL_GAP = 4;

  // Rows of the hypnogram, top to bottom, with the words the legend and tooltips use.
  const STAGES = [
    { stage: 'in_bed', label: 'In bed', words: 'in bed' },
    { stage: 'awake', label: 'Awake', words: 'awake' },
    { stage: 'rem', label: 'REM', words: 'REM sleep' },
    { stage: 'light', label: 'Light', words: 'light sleep' },
    { stage: 'deep', label: 'Deep', words: 'deep sleep' },
    { stage: 'asleep', label: 'Asleep', words: 'asleep, stage not recorded' },
    { stage: 'out_of_bed', label: 'Out', words: 'out of bed' },
  ];

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const textWidth = (s) => String(s).length * CHAR_PX;

  // A row of labels that keeps them apart: `fits(left, right)` says whether a label there
  // clears the others (and the bounds), and `take` records one placed.
  function labelRow(minX, maxX) {
    const taken = [];
    return {
      fits: (l, r) => l >= minX && r <= maxX
        && taken.every(([a, b]) => r + LABEL_GAP <= a || l >= b + LABEL_GAP),
      take: (l, r) => taken.push([l, r]),
    };
  }

  // An SVG with title and description, and layers drawn in order: bands, data, axes.
  function base(W, H, id, title, desc) {
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc` });
    root.append(svg('title', { id: `${id}-title` }, title), svg('desc', { id: `${id}-desc` }, desc));
    const layers = { back: svg('g'), data: svg('g'), axes: svg('g') };
    root.append(layers.back, layers.data, layers.axes);
    return { root, ...layers };
  }

  // A chart over time [t0, t1) on `tl`'s clock: x axis with hour labels (every 3, 6 or 12
  // hours, as they fit) and the date at each local midnight; y axis with `yTicks`.
  function timeFrame({ W, H, t0, t1, tl, id, title, desc, yMin, yMax, yTicks, left = 40 }) {
    const right = 8; const top = 10; const bottom = 36;
    const plotW = W - left - right; const plotH = H - top - bottom;
    const g = base(W, H, id, title, desc);
    const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => top + plotH - ((v - yMin) / (yMax - yMin || 1)) * plotH;
    const axisY = top + plotH;

    const hourPx = (plotW * HOUR_MS) / (t1 - t0);
    const every = [3, 6, 12].find((h) => h * hourPx >= 34);
    const { midnights, hours } = tl.ticks(t0, t1, every);
    const hourRow = labelRow(left, W - right);
    for (const { ms, hour } of hours) {
      const tx = x(ms);
      const label = pad2(hour);
      const half = textWidth(label) / 2;
      if (!hourRow.fits(tx - half, tx + half)) continue;
      hourRow.take(tx - half, tx + half);
      g.axes.append(svg('line', { class: 'axis', x1: tx, x2: tx, y1: axisY, y2: axisY + 3 }));
      g.axes.append(svg('text', {
        class: 'hour-label', 'data-testid': 'hour-label', x: tx, y: axisY + 14, 'text-anchor': 'middle',
      }, label));
    }
    const dayPx = 24 * hourPx;
    const dayRow = labelRow(0, W);
    for (const mx0 of midnights) {
      const mx = x(mx0);
      g.back.append(svg('line', { class: 'day-line', x1: mx, x2: mx, y1: top, y2: axisY + 16 }));
      const day = onClock(mx0, tl.at(mx0));
      // Weekday and date where a day is wide enough, else the date alone.
      const label = dayPx >= 44 ? `${WEEKDAYS[day.getUTCDay()]} ${day.getUTCDate()}` : String(day.getUTCDate());
      if (!dayRow.fits(mx + 3, mx + 3 + textWidth(label))) continue;
      dayRow.take(mx + 3, mx + 3 + textWidth(label));
      g.axes.append(svg('text', { class: 'day-label', 'data-testid': 'day-label', x: mx + 3, y: H - 4 }, label));
    }
    g.axes.append(svg('line', { class: 'axis', x1: left, x2: W - right, y1: axisY, y2: axisY }));
    for (const { v, label } of yTicks) {
      const ty = y(v);
      if (v !== yMin) g.back.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: ty, y2: ty }));
      g.axes.append(svg('text', { class: 'y-label', x: left - 6, y: Math.max(ty + 4, top + 8), 'text-anchor': 'end' }, label));
    }
    return { ...g, x, y, top, plotH, left, right };
  }

  // Shaded nights: `[{from, to, title}]`.
  function bands(f, list, t0, t1) {
    let n = 0;
    for (const b of list) {
      if (!(b.to > t0 && b.from < t1)) continue;
      const x0 = f.x(Math.max(b.from, t0));
      const x1 = f.x(Math.min(b.to, t1));
      const band = svg('rect', {
        class: 'sleep-band', 'data-testid': 'sleep-band', x: x0, y: f.top, width: Math.max(x1 - x0, 1), height: f.plotH,
      });
      band.append(svg('title', {}, b.title));
      f.back.append(band);
      n += 1;
    }
    return n;
  }

  // Bars over time: `bars` is `[{from, to, value, title}]` (absent hours are simply not drawn).
  function barChart({ W, t0, t1, tl, id, title, desc, bars, nights }) {
    const H = W < 500 ? 180 : 220;
    const max = bars.reduce((m, b) => Math.max(m, b.value), 0);
    const f = timeFrame({
      W, H, t0, t1, tl, id, title, desc, yMin: 0, yMax: max || 1,
      yTicks: [{ v: 0, label: '0' }, { v: max || 1, label: String(Math.round(max)) }],
    });
    const shaded = bands(f, nights || [], t0, t1);
    for (const b of bars) {
      const x0 = f.x(b.from);
      const w = f.x(b.to) - x0;
      const gap = w > 3 ? 1 : 0;
      const rect = svg('rect', {
        class: 'bar-rect', x: x0, y: f.y(b.value), width: Math.max(w - gap, 0.5), height: f.top + f.plotH - f.y(b.value),
      });
      if (b.title) rect.append(svg('title', {}, b.title));
      f.data.append(rect);
    }
    return { root: f.root, max, shaded };
  }

  // Heart rate: `runs` of readings `[[{ms, bpm}]]` as lines (a gap breaks the line), and the
  // resting rate per day `[{from, to, bpm, title}]` as dashed levels.
  function heartChart({ W, t0, t1, tl, id, title, desc, runs, resting }) {
    const H = W < 500 ? 200 : 240;
    const values = [...runs.flat().map((p) => p.bpm), ...resting.map((r) => r.bpm)];
    const lo = values.length ? Math.min(...values) : 40;
    const hi = values.length ? Math.max(...values) : 100;
    const yMin = Math.max(0, Math.floor((lo - 5) / 10) * 10);
    let yMax = Math.ceil((hi + 5) / 10) * 10;
    const plotH = H - 46;
    const step = [10, 20, 40, 50, 100].find((s) => ((yMax - yMin) / s) * 24 <= plotH) || 100;
    yMax = yMin + Math.ceil((yMax - yMin) / step) * step;
    const yTicks = [];
    for (let v = yMin; v <= yMax; v += step) yTicks.push({ v, label: String(v) });
    const f = timeFrame({ W, H, t0, t1, tl, id, title, desc, yMin, yMax, yTicks });
    for (const run of runs) {
      if (run.length === 1) {
        f.data.append(svg('circle', { class: 'hr-dot', cx: f.x(run[0].ms), cy: f.y(run[0].bpm), r: 1.5 }));
        continue;
      }
      const points = run.map((p) => `${f.x(p.ms).toFixed(1)},${f.y(p.bpm).toFixed(1)}`).join(' ');
      f.data.append(svg('polyline', { class: 'hr-line', points, 'data-readings': run.length }));
    }
    let drawn = 0;
    for (const r of resting) {
      const from = Math.max(r.from, t0);
      const to = Math.min(r.to, t1);
      if (!(to > from)) continue;
      const line = svg('line', {
        class: 'resting-hr', 'data-testid': 'resting-hr', x1: f.x(from), x2: f.x(to), y1: f.y(r.bpm), y2: f.y(r.bpm),
      });
      line.append(svg('title', {}, r.title));
      f.data.append(line);
      drawn += 1;
    }
    return { root: f.root, resting: drawn };
  }

  // One night of the hypnogram: a row per stage, a bar per stage sample, the first and last
  // time of the night at the ends of the axis and whole hours between them.
  function nightChart({ W, night, tl, id }) {
    const present = new Set(night.segments.map((s) => s.stage));
    // Out of bed is rare: its row only when the night has it.
    const rows = STAGES.filter((r) => r.stage !== 'out_of_bed' || present.has('out_of_bed'));
    const left = 52; const right = 8; const top = 4; const rowH = W < 500 ? 16 : 18; const bottom = 20;
    const H = top + rows.length * rowH + bottom;
    const plotW = W - left - right;
    const { from: t0, to: t1 } = night;
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * plotW;
    const g = base(W, H, id, `Sleep stages of the night to ${fmtDay(t1, night.offsetTo)}`,
      `${night.segments.length} stage samples from ${night.source || 'an unnamed source'}, `
      + `${hhmm(t0, night.offsetFrom)} to ${hhmm(t1, night.offsetTo)}; one row per stage.`);
    rows.forEach((r, i) => {
      const ry = top + i * rowH;
      g.back.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: ry + rowH / 2, y2: ry + rowH / 2 }));
      g.axes.append(svg('text', { class: 'stage-label', x: left - 6, y: ry + rowH / 2 + 4, 'text-anchor': 'end' }, r.label));
    });
    for (const s of night.segments) {
      const i = rows.findIndex((r) => r.stage === s.stage);
      if (i < 0) continue;
      const x0 = x(s.from);
      const rect = svg('rect', {
        class: `stage stage-${s.stage}`, 'data-stage': s.stage,
        x: x0, y: top + i * rowH + 2, width: Math.max(x(s.to) - x0, 1), height: rowH - 4,
      });
      rect.append(svg('title', {}, `${rows[i].label} ${hhmm(s.from, tl.at(s.from))} – ${hhmm(s.to, tl.at(s.to))} `
        + `(${fmtMinutes((s.to - s.from) / 60000)})`));
      g.data.append(rect);
    }
    const axisY = top + rows.length * rowH;
    g.axes.append(svg('line', { class: 'axis', x1: left, x2: W - right, y1: axisY, y2: axisY }));
    const row = labelRow(left, W - right);
    const ends = [
      { ms: t0, text: hhmm(t0, night.offsetFrom), cls: 'hyp-start', anchor: 'start', l: left },
      { ms: t1, text: hhmm(t1, night.offsetTo), cls: 'hyp-end', anchor: 'end', l: W - right - textWidth(hhmm(t1, night.offsetTo)) },
    ];
    for (const e of ends) {
      row.take(e.l, e.l + textWidth(e.text));
      g.axes.append(svg('text', {
        class: `hyp-time ${e.cls}`, 'data-testid': 'hyp-time', x: e.anchor === 'start' ? left : W - right,
        y: axisY + 14, 'text-anchor': e.anchor,
      }, e.text));
    }
    const hourPx = (plotW * HOUR_MS) / (t1 - t0 || 1);
    const every = [1, 2, 3, 6].find((h) => h * hourPx >= 30) || 12;
    const { midnights, hours } = tl.ticks(t0, t1, every);
    const marks = [...midnights.map((ms) => ({ ms, hour: 0 })), ...hours].sort((a, b) => a.ms - b.ms);
    for (const { ms, hour } of marks) {
      const tx = x(ms);
      const label = pad2(hour);
      const half = textWidth(label) / 2;
      g.axes.append(svg('line', { class: 'axis', x1: tx, x2: tx, y1: axisY, y2: axisY + 3 }));
      if (!row.fits(tx - half, tx + half)) continue;
      row.take(tx - half, tx + half);
      g.axes.append(svg('text', { class: 'hyp-time hyp-hour', x: tx, y: axisY + 14, 'text-anchor': 'middle' }, label));
    }
    return g.root;
  }

  // The instants a local date starts and ends on `tl`'s clock.
  function dayRange(tl, date) {
    const from = tl.midnightOf(date);
    const next = new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
    return { from, to: tl.midnightOf(next) };
  }

  window.Clarity.charts = { STAGES, barChart, heartChart, nightChart, dayRange, svg, Timeline };
})();

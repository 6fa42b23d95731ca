// Clarity dashboard: raw samples (GET /api/v1/health-data) shaped for the charts.
//
// Rules:
// - Pure functions of the samples (and of the latest analysis, which says which source won a
//   night): no DOM, no fetch.
// - A step sample is an interval; its steps are spread over the local hours it covers in
//   proportion to the time in each. A phone counts only while walking, so an hour without a
//   step sample shows no bar (nothing was counted), never an invented value.
// - Sleep stage samples form a night when they follow each other with gaps under 3 hours; the
//   night is dated by the local date of its final wake (the morning), like HealthKit and
//   Health Connect. When several sources staged one night the analysis' choice is drawn; without
//   one, the contract's rule: stages with light/deep/REM over unspecified sleep, then the most
//   samples, then the name.
'use strict';

(() => {
  const { MIN_MS, HOUR_MS, offsetOfIso, isoDate, Timeline } = window.Clarity.clock;
  const NIGHT_GAP_MS = 3 * HOUR_MS;
  const DETAILED = new Set(['light', 'deep', 'rem']);
  const ASLEEP = new Set(['light', 'deep', 'rem', 'asleep']);

  // `{kind, from, to, offset, value, source, provenance}` with times in UTC ms and the offset (minutes)
  // `start` is written with; samples whose times do not parse are dropped.
  function parse(raw) {
    const out = [];
    for (const s of raw || []) {
      const from = Date.parse(s.start);
      const to = s.end ? Date.parse(s.end) : from;
      const offset = offsetOfIso(s.start);
      if (Number.isNaN(from) || Number.isNaN(to) || offset === null) continue;
      out.push({
        kind: s.kind, from, to: Math.max(to, from), offset, value: s.value, source: s.source || '',
        provenance: s.provenance || null,
      });
    }
    return out.sort((a, b) => a.from - b.from);
  }

  const METHODS = { automatic: 'recorded automatically', active: 'recorded in a session', manual: 'entered by hand' };

  // The sources of the samples with what the client said about them (provenance):
  // `[{source, device, app, method, manual, count}]`, most samples first, then by name. A
  // source whose samples say different things (a new watch, typed-in entries beside recorded
  // ones) is a row for each, as source priority counts them apart.
  function sourcesOf(samples) {
    const rows = new Map();
    for (const s of samples) {
      const p = s.provenance || {};
      const d = p.device || {};
      const model = [d.manufacturer, d.model].filter(Boolean).join(' ');
      const device = [d.name, model && `(${model})`, d.hardware_version && `hardware ${d.hardware_version}`,
        d.software_version && `software ${d.software_version}`].filter(Boolean).join(' ');
      const row = {
        source: s.source || 'unnamed', device, app: p.app || '', method: METHODS[p.method] || '',
        manual: p.method === 'manual',
      };
      const key = JSON.stringify(row);
      const had = rows.get(key);
      if (had) had.count += 1;
      else rows.set(key, { ...row, count: 1 });
    }
    return [...rows.values()].sort((a, b) => b.count - a.count || a.source.localeCompare(b.source));
  }

  // The clock of the samples: each one's start with its offset. (Not the ends: a source that
  // writes a night's end with the offset of its start would flip the clock back and forth.)
  function timelineOf(samples) {
    return Timeline.of(samples.map((s) => ({ ms: s.from, offset: s.offset })));
  }

  // Steps per local hour over [t0, t1): `[{from, to, steps}]` for the hours with steps.
  function stepsPerHour(steps, tl, t0, t1) {
    const starts = tl.hourStarts(t0, t1);
    const bins = starts.map((from, i) => ({ from, to: starts[i + 1] || from + HOUR_MS, steps: 0 }));
    for (const s of steps) {
      const v = Number(s.value);
      if (!Number.isFinite(v) || v <= 0) continue;
      const len = s.to - s.from;
      for (const b of bins) {
        if (len === 0) {
          if (s.from >= b.from && s.from < b.to) b.steps += v;
          continue;
        }
        const overlap = Math.min(s.to, b.to) - Math.max(s.from, b.from);
        if (overlap > 0) b.steps += (v * overlap) / len;
      }
    }
    return bins.filter((b) => b.steps > 0);
  }

  // Heart-rate readings as runs of a line: a gap of more than `gapMs` starts a new run.
  function heartRuns(hr, gapMs) {
    const runs = [];
    let last = -Infinity;
    for (const s of hr) {
      const v = Number(s.value);
      if (!Number.isFinite(v)) continue;
      if (s.from - last > gapMs || !runs.length) runs.push([]);
      runs[runs.length - 1].push({ ms: s.from, bpm: v });
      last = s.from;
    }
    return runs;
  }

  // Total minutes covered by intervals (overlaps counted once).
  function unionMinutes(intervals) {
    const sorted = [...intervals].sort((a, b) => a.from - b.from);
    let total = 0;
    let end = -Infinity;
    for (const { from, to } of sorted) {
      if (to <= end) continue;
      total += to - Math.max(from, end);
      end = to;
    }
    return total / MIN_MS;
  }

  // The source drawn for a night: the analysis' choice when it names one of them, else the rule.
  function pickSource(bySource, analysed) {
    const names = [...bySource.keys()];
    if (analysed && bySource.has(analysed)) return { source: analysed, by: 'analysis' };
    names.sort((a, b) => {
      const detail = (n) => (bySource.get(n).some((s) => DETAILED.has(s.value)) ? 1 : 0);
      return detail(b) - detail(a) || bySource.get(b).length - bySource.get(a).length || a.localeCompare(b);
    });
    return { source: names[0], by: 'rule' };
  }

  // Nights from sleep_stage samples: `[{date, from, to, offsetFrom, offsetTo, source, by,
  // sources, segments: [{stage, from, to}], asleepMinutes}]`, oldest first, on the clock `tl`
  // (a night's ends may be on two offsets). `analysedSources` maps a night's date to the
  // source the analysis chose for it.
  function nights(stages, analysedSources, tl) {
    const clusters = [];
    let end = -Infinity;
    for (const s of stages) {
      if (typeof s.value !== 'string') continue;
      if (s.from - end > NIGHT_GAP_MS || !clusters.length) clusters.push([]);
      clusters[clusters.length - 1].push(s);
      end = Math.max(end, s.to);
    }
    return clusters.map((cluster) => {
      const bySource = new Map();
      for (const s of cluster) bySource.set(s.source, [...(bySource.get(s.source) || []), s]);
      // The date decides which analysed night this is; any source's final wake gives it.
      const lastOf = (list) => list.reduce((a, b) => (b.to >= a.to ? b : a));
      const anyLast = lastOf(cluster).to;
      const { source, by } = pickSource(bySource, analysedSources.get(isoDate(anyLast, tl.at(anyLast))));
      const own = bySource.get(source);
      const first = own[0];
      const last = lastOf(own);
      return {
        date: isoDate(last.to, tl.at(last.to)),
        from: first.from,
        to: last.to,
        offsetFrom: tl.at(first.from),
        offsetTo: tl.at(last.to),
        source,
        by,
        sources: [...bySource.keys()].sort(),
        segments: own.map((s) => ({ stage: s.value, from: s.from, to: s.to })),
        asleepMinutes: unionMinutes(own.filter((s) => ASLEEP.has(s.value))),
      };
    });
  }

  // Date -> source, from an analysis' `sleep.nights[]` (built from stages).
  function analysedNightSources(analysis) {
    const map = new Map();
    const list = (analysis && analysis.sleep && analysis.sleep.nights) || [];
    for (const n of list) {
      if (n && typeof n.date === 'string' && typeof n.source === 'string') map.set(n.date, n.source);
    }
    return map;
  }

  // `[{date, bpm, method}]` from an analysis' `heart.days[]`, only days with a resting rate.
  function restingDays(analysis) {
    const days = (analysis && analysis.heart && analysis.heart.days) || [];
    return days.filter((d) => d && typeof d.date === 'string' && Number.isFinite(d.resting_bpm))
      .map((d) => ({ date: d.date, bpm: d.resting_bpm, method: d.resting_method || '' }));
  }

  window.Clarity.samples = {
    parse, timelineOf, stepsPerHour, heartRuns, nights, analysedNightSources, restingDays, unionMinutes,
    sourcesOf,
  };
})();

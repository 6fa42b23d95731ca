// Clarity dashboard: the user's clock (loaded before samples.js, charts.js and app.js).
//
// Rules:
// - Every date and hour the page shows is on the clock of the data it describes: the UTC
//   offset its samples (or its analysis window) carry, never the viewer's browser time zone.
// - Samples keep their own offsets, so a user's clock may change inside what is drawn (a DST
//   change, a trip): a `Timeline` maps each instant to the offset of the data around it, and
//   captions name every offset in use and when it changed.
// - Offsets are whole minutes; real ones are multiples of 15 minutes, which the tick search
//   relies on (a grid of quarter hours meets every local hour and midnight).
'use strict';

(() => {
  const MIN_MS = 60000;
  const HOUR_MS = 60 * MIN_MS;
  const DAY_MS = 24 * HOUR_MS;
  const QUARTER_MS = 15 * MIN_MS;
  const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  const pad2 = (n) => String(n).padStart(2, '0');

  // The offset (minutes) an RFC 3339 time is written with; `null` when it has none.
  function offsetOfIso(iso) {
    const s = String(iso || '');
    if (/[zZ]$/.test(s)) return 0;
    const m = /([+-])(\d\d):(\d\d)$/.exec(s);
    return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : null;
  }

  // The UTC offset (minutes) of a document's data (an analysis or insight):
  // `window.utc_offset_minutes`, else the offset its window times are written with.
  function offsetOfDoc(doc) {
    const w = (doc && doc.window) || {};
    if (Number.isFinite(w.utc_offset_minutes)) return w.utc_offset_minutes;
    return offsetOfIso(w.to || w.from) || 0;
  }

  // A Date whose UTC fields read as the wall clock at `ms` on `offsetMin`.
  const onClock = (ms, offsetMin) => new Date(ms + offsetMin * MIN_MS);

  // "UTC", "UTC+9", "UTC-5", "UTC+5:30".
  function fmtOffset(offsetMin) {
    if (!offsetMin) return 'UTC';
    const a = Math.abs(offsetMin);
    return `UTC${offsetMin < 0 ? '-' : '+'}${Math.floor(a / 60)}${a % 60 ? `:${pad2(a % 60)}` : ''}`;
  }

  // "14:05".
  function hhmm(ms, offsetMin) {
    const d = onClock(ms, offsetMin);
    return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  }

  // "Sun 6 Dec".
  function fmtDay(ms, offsetMin) {
    const d = onClock(ms, offsetMin);
    return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
  }

  // "Sun 6 Dec 2026, 14:05 (UTC+9)": the offset is named because the viewer may be elsewhere.
  function fmtDateTime(ms, offsetMin) {
    return `${fmtDay(ms, offsetMin)} ${onClock(ms, offsetMin).getUTCFullYear()}, `
      + `${hhmm(ms, offsetMin)} (${fmtOffset(offsetMin)})`;
  }

  // "2026-12-06": the local date, as the analysis writes dates.
  function isoDate(ms, offsetMin) {
    const d = onClock(ms, offsetMin);
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  }

  // "7 h 5 min".
  function fmtMinutes(min) {
    const m = Math.round(min);
    if (m < 60) return `${m} min`;
    return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
  }

  // The offsets of the data over time. `changes` is ascending, one entry per change: the
  // offset at `ms` is that of the last change at or before it (before them all, the first).
  class Timeline {
    constructor(changes) {
      this.changes = changes.length ? changes : [{ from: -Infinity, offset: 0 }];
    }

    // From `[{ms, offset}]` in any order (the samples' starts and their offsets).
    static of(points) {
      const sorted = points.filter((p) => Number.isFinite(p.ms) && Number.isFinite(p.offset))
        .sort((a, b) => a.ms - b.ms);
      const changes = [];
      for (const p of sorted) {
        // The first offset holds before the first sample too.
        if (!changes.length) changes.push({ from: -Infinity, offset: p.offset });
        else if (changes[changes.length - 1].offset !== p.offset) changes.push({ from: p.ms, offset: p.offset });
      }
      return new Timeline(changes);
    }

    static fixed(offsetMin) {
      return new Timeline([{ from: -Infinity, offset: offsetMin || 0 }]);
    }

    at(ms) {
      let off = this.changes[0].offset;
      for (const c of this.changes) {
        if (c.from > ms) break;
        off = c.offset;
      }
      return off;
    }

    // The instant of local midnight starting `date` ("2026-12-06").
    midnightOf(date) {
      const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(String(date || ''));
      if (!m) return NaN;
      const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      // The offset depends on the instant, which depends on the offset: twice is enough for
      // changes away from midnight, and near one either side is a fair answer.
      const first = wall - this.at(wall) * MIN_MS;
      return wall - this.at(first) * MIN_MS;
    }

    // Local midnights and whole hours (multiples of `every`, midnights excluded) in [t0, t1).
    ticks(t0, t1, every) {
      const midnights = [];
      const hours = [];
      for (let g = Math.ceil(t0 / QUARTER_MS) * QUARTER_MS; g < t1; g += QUARTER_MS) {
        const local = g + this.at(g) * MIN_MS;
        const inDay = ((local % DAY_MS) + DAY_MS) % DAY_MS;
        if (inDay === 0) midnights.push(g);
        else if (every && inDay % (every * HOUR_MS) === 0) hours.push({ ms: g, hour: inDay / HOUR_MS });
      }
      return { midnights, hours };
    }

    // Starts of the local hours that meet [t0, t1), for hourly bins.
    hourStarts(t0, t1) {
      const starts = [];
      for (let g = Math.floor(t0 / QUARTER_MS) * QUARTER_MS - HOUR_MS; g < t1; g += QUARTER_MS) {
        const local = g + this.at(g) * MIN_MS;
        if (((local % HOUR_MS) + HOUR_MS) % HOUR_MS === 0 && g + HOUR_MS > t0) starts.push(g);
      }
      return starts;
    }

    // "times in UTC-5, the offset of your data" or, with a change inside [t0, t1),
    // "times in UTC-5, then UTC-4 from Sun 8 Mar 03:00 (the offsets of your data)".
    zoneText(t0, t1, whose) {
      const first = this.at(t0);
      const later = this.changes.filter((c) => c.from > t0 && c.from < t1);
      if (!later.length) return `times in ${fmtOffset(first)}, the offset of ${whose} data`;
      const steps = later.map((c) => `then ${fmtOffset(c.offset)} from ${fmtDay(c.from, c.offset)} ${hhmm(c.from, c.offset)}`);
      return `times in ${fmtOffset(first)}, ${steps.join(', ')} (the offsets of ${whose} data)`;
    }
  }

  window.Clarity = window.Clarity || {};
  window.Clarity.clock = {
    MIN_MS, HOUR_MS, DAY_MS, WEEKDAYS, MONTHS,
    pad2, offsetOfIso, offsetOfDoc, onClock, fmtOffset, hhmm, fmtDay, fmtDateTime, isoDate, fmtMinutes, Timeline,
  };
})();

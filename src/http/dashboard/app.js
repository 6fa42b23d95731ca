// Clarity dashboard: log in, pick a user whose data the caller may see (self or the owner of a
// share received), follow that user's `analyses` and `insights` streams over the WebSocket.
//
// Rules:
// - Plain script, no library, nothing from other origins: the page's CSP forbids it, and the
//   page must work with the server binary alone.
// - Tokens live in memory and sessionStorage (gone with the tab), never in localStorage, a
//   cookie or a page URL, and are never logged.
// - Server text goes into the page through textContent and SVG attributes only, never as
//   markup, so a summary cannot inject code.
// - Dates and hours are on the user's clock: the UTC offset of their data (an analysis' or
//   insight's `window`), never the viewer's browser time zone, which may be another one.
// - Captions, legend and chart title name what is drawn (steps or activity counts; sleep only
//   when a sleep period is shaded). The chart is drawn at the width it is shown at, so its
//   text keeps its size on a phone; it is redrawn when that width changes.
// - Per stream the last offset seen is kept, so a reconnect or a `lagged` resumes with
//   `since` instead of reloading; when the server cannot replay (`recover: false`) the
//   history comes from REST. Documents are keyed by id, so a replay that overlaps what is
//   shown changes nothing.
'use strict';

(() => {
  const STREAMS = ['analyses', 'insights'];
  const STREAM_OF = { analysis: 'analyses', insight: 'insights' };
  const STORAGE_KEY = 'clarity.dashboard.session';
  const HOUR_MS = 3600 * 1000;
  const WEEK_HOURS = 7 * 24;
  // REST history on `recover: false`: how far back, and at most how many pages per stream.
  const HISTORY_DAYS = 30;
  const HISTORY_PAGES = 20;
  // The list shows this many insights; older ones drop off the bottom.
  const MAX_INSIGHTS = 100;
  const BACKOFF_START_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  // An access token closer than this to expiry is refreshed before a (re)connect: the upgrade
  // of an expired one fails without telling the page why.
  const TOKEN_MARGIN_MS = 30000;
  const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  const $ = (id) => document.getElementById(id);

  const state = {
    // {access_token, refresh_token, expires_at}
    session: null,
    // GET /api/v1/user/profile
    me: null,
    // [{user_id, email, label, streams: Set}]
    users: [],
    selected: null,
    // stream -> {status: pending|subscribing|subscribed|revoked|forbidden, offset, epoch}
    subs: new Map(),
    ws: null,
    welcomed: false,
    backoffMs: BACKOFF_START_MS,
    // A server's `going_away.reconnect_after_ms` overrides the backoff once.
    nextDelayMs: null,
    reconnectTimer: null,
    refreshing: null,
    insights: new Map(),
    analysis: null,
  };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // ---- small DOM helpers -------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text || '';
    n.hidden = !text;
  }

  // ---- the user's clock ---------------------------------------------------------------------

  // The UTC offset (minutes) of a document's data: `window.utc_offset_minutes`, else the offset
  // its window times are written with.
  function offsetOf(doc) {
    const w = (doc && doc.window) || {};
    if (Number.isFinite(w.utc_offset_minutes)) return w.utc_offset_minutes;
    const m = /([+-])(\d\d):(\d\d)$/.exec(String(w.to || w.from || ''));
    return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  }

  // A Date whose UTC fields read as the user's wall clock at `ms`.
  function onClock(ms, offsetMin) {
    return new Date(ms + offsetMin * 60000);
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  function fmtOffset(offsetMin) {
    if (!offsetMin) return 'UTC';
    const a = Math.abs(offsetMin);
    return `UTC${offsetMin < 0 ? '-' : '+'}${Math.floor(a / 60)}${a % 60 ? `:${pad2(a % 60)}` : ''}`;
  }

  // "14:05" on the user's clock.
  function clock(ms, offsetMin) {
    const d = onClock(ms, offsetMin);
    return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  }

  // "Sun 6 Dec" on the user's clock.
  function fmtDay(ms, offsetMin) {
    const d = onClock(ms, offsetMin);
    return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
  }

  // "Sun 6 Dec 2026, 14:05 (UTC+9)" on the user's clock; the offset is named because the
  // viewer may be elsewhere.
  function fmtDateTime(iso, offsetMin) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return String(iso);
    return `${fmtDay(ms, offsetMin)} ${onClock(ms, offsetMin).getUTCFullYear()}, `
      + `${clock(ms, offsetMin)} (${fmtOffset(offsetMin)})`;
  }

  // "3 days" / "27 hours": the length of a window.
  function fmtLength(ms) {
    const hours = Math.round(ms / HOUR_MS);
    if (hours < 48) return `${hours} hour${hours === 1 ? '' : 's'}`;
    return `${+(hours / 24).toFixed(1)} days`;
  }

  // What the bars are: steps when the analysis used step counts.
  function activityWords(a) {
    return (a.activity && a.activity.kind) === 'step_count'
      ? { noun: 'steps', title: 'Steps per hour' }
      : { noun: 'activity counts', title: 'Activity per hour' };
  }

  // ---- session and REST --------------------------------------------------------------------

  function setTokens(t) {
    state.session = {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      expires_at: Date.now() + (Number(t.expires_in) || 0) * 1000,
    };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state.session));
  }

  async function request(path, { method = 'GET', body, token } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
    const data = resp.status === 204 ? null : await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = data && data.error;
      throw new ApiError(resp.status, err ? err.code : `http_${resp.status}`,
        err ? err.message : resp.statusText);
    }
    return data;
  }

  // One refresh at a time: a refresh token is single use, and replaying a spent one makes the
  // server revoke the whole login.
  function refreshTokens() {
    if (!state.refreshing) {
      const refreshToken = state.session && state.session.refresh_token;
      state.refreshing = (async () => {
        if (!refreshToken) throw new ApiError(401, 'unauthorized', 'not logged in');
        try {
          setTokens(await request('/api/v1/auth/refresh', {
            method: 'POST', body: { refresh_token: refreshToken },
          }));
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            endSession('Your session has ended. Please log in again.');
          }
          throw e;
        }
      })().finally(() => { state.refreshing = null; });
    }
    return state.refreshing;
  }

  // An authenticated call; an expired access token is refreshed once and the call repeated.
  async function api(path, opts = {}) {
    if (!state.session) throw new ApiError(401, 'unauthorized', 'not logged in');
    try {
      return await request(path, { ...opts, token: state.session.access_token });
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401 || !state.session) throw e;
      await refreshTokens();
      return request(path, { ...opts, token: state.session.access_token });
    }
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const submit = $('login-submit');
    const error = $('login-error');
    error.textContent = '';
    submit.disabled = true;
    try {
      const tokens = await request('/api/v1/auth/login', {
        method: 'POST',
        body: { email: $('email').value.trim(), password: $('password').value },
      });
      $('password').value = '';
      setTokens(tokens);
      await startDashboard();
    } catch (e) {
      error.textContent = e.code === 'invalid_credentials'
        ? 'Wrong email or password.'
        : `Could not log in: ${e.message}`;
    } finally {
      submit.disabled = false;
    }
  }

  function endSession(message) {
    state.session = null;
    sessionStorage.removeItem(STORAGE_KEY);
    clearTimeout(state.reconnectTimer);
    const ws = state.ws;
    state.ws = null;
    state.welcomed = false;
    if (ws) ws.close(1000, 'logout');
    state.selected = null;
    state.subs = new Map();
    $('dashboard-view').hidden = true;
    $('account').hidden = true;
    $('login-view').hidden = false;
    setStatus('offline');
    notice(message || '');
  }

  // ---- users -------------------------------------------------------------------------------

  // Me first, then one entry per owner who shared something with me (a share is per scope,
  // so an owner who shared both streams appears in two shares).
  function viewableUsers(me, received) {
    const users = new Map();
    users.set(me.user_id, {
      user_id: me.user_id, email: me.email, label: `Me (${me.email})`, streams: new Set(STREAMS),
    });
    for (const share of received) {
      if (!STREAMS.includes(share.scope)) continue;
      let u = users.get(share.owner_id);
      if (!u) {
        u = { user_id: share.owner_id, email: share.owner_email, streams: new Set() };
        users.set(share.owner_id, u);
      }
      u.streams.add(share.scope);
    }
    for (const u of users.values()) {
      if (u.user_id !== me.user_id) u.label = `${u.email} (${[...u.streams].sort().join(', ')})`;
    }
    return [...users.values()];
  }

  async function startDashboard() {
    state.me = await api('/api/v1/user/profile');
    let received = [];
    try {
      received = (await api('/api/v1/shares')).received || [];
    } catch (e) {
      if (!state.session) return;
      notice(`Could not load the users who share with you: ${e.message}`);
    }
    state.users = viewableUsers(state.me, received);
    const select = $('user-select');
    select.replaceChildren(...state.users.map((u) => el('option', { value: u.user_id }, u.label)));
    $('account-email').textContent = state.me.email;
    $('account').hidden = false;
    $('login-view').hidden = true;
    $('dashboard-view').hidden = false;
    select.value = state.me.user_id;
    selectUser(state.me.user_id);
    connect();
  }

  function selectUser(userId) {
    const prev = state.selected;
    if (prev && prev !== userId && state.welcomed) {
      for (const [stream, sub] of state.subs) {
        // Only live ones: the server answers not_subscribed to the others.
        if (sub.status === 'subscribing' || sub.status === 'subscribed') {
          send({ type: 'unsubscribe', stream, user_id: prev });
        }
      }
    }
    const user = state.users.find((u) => u.user_id === userId);
    state.selected = userId;
    state.subs = new Map();
    for (const stream of STREAMS) {
      if (user && user.streams.has(stream)) {
        state.subs.set(stream, { status: 'pending', offset: 0, epoch: null });
      }
    }
    state.insights = new Map();
    state.analysis = null;
    notice('');
    $('insights').replaceChildren();
    $('insights-empty').hidden = false;
    $('insights-empty').textContent = state.subs.has('insights')
      ? 'No insights yet. New ones appear here as they arrive.'
      : 'Insights are not shared with you.';
    $('chart').replaceChildren();
    $('chart-legend').hidden = true;
    $('chart-caption').textContent = state.subs.has('analyses')
      ? 'No analysis yet.'
      : 'Analyses are not shared with you.';
    if (state.welcomed) subscribeAll();
    updateStatus();
  }

  // ---- WebSocket ---------------------------------------------------------------------------

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    if (!state.session) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // Browsers cannot set headers on the upgrade request, hence the query parameter.
    const url = `${scheme}//${location.host}/api/v1/ws?access_token=${encodeURIComponent(state.session.access_token)}`;
    const ws = new WebSocket(url);
    state.ws = ws;
    state.welcomed = false;
    setStatus(state.backoffMs > BACKOFF_START_MS ? 'reconnecting' : 'connecting');
    ws.onmessage = (ev) => {
      if (state.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (state.ws === ws) onClose(ev);
    };
  }

  function onClose(ev) {
    state.ws = null;
    const welcomed = state.welcomed;
    state.welcomed = false;
    for (const sub of state.subs.values()) {
      if (sub.status === 'subscribing' || sub.status === 'subscribed') sub.status = 'pending';
    }
    if (!state.session) return;
    setStatus('reconnecting');
    let delay = state.nextDelayMs;
    state.nextDelayMs = null;
    if (delay == null) {
      // Exponential backoff with jitter, so that many pages do not come back in step.
      delay = state.backoffMs * (0.5 + Math.random() / 2);
      state.backoffMs = Math.min(state.backoffMs * 2, BACKOFF_MAX_MS);
    }
    // 4001/4003: the token is the problem; a close before `welcome` may be a refused upgrade.
    const tokenSuspect = ev.code === 4001 || ev.code === 4003 || !welcomed;
    state.reconnectTimer = setTimeout(() => reconnect(tokenSuspect), delay);
  }

  async function reconnect(tokenSuspect) {
    if (!state.session) return;
    const expiring = state.session.expires_at - Date.now() < TOKEN_MARGIN_MS;
    if (expiring || tokenSuspect) {
      try {
        await refreshTokens();
      } catch {
        // A 401 ended the session; otherwise the server is unreachable: try again later.
        if (!state.session) return;
        onClose({ code: 1006 });
        return;
      }
    }
    connect();
  }

  function subscribeAll() {
    for (const stream of state.subs.keys()) subscribe(stream);
  }

  function subscribe(stream) {
    const sub = state.subs.get(stream);
    if (!sub || sub.status === 'revoked' || sub.status === 'forbidden') return;
    // since=0 at first: the server replays what it retains; later the last offset seen.
    const frame = { type: 'subscribe', stream, user_id: state.selected, since: sub.offset };
    if (sub.epoch != null) frame.epoch = sub.epoch;
    sub.status = 'subscribing';
    send(frame);
    updateStatus();
  }

  function subFor(frame) {
    if (frame.user_id !== state.selected) return null;
    return state.subs.get(frame.stream) || null;
  }

  function onFrame(f) {
    switch (f.type) {
      case 'welcome':
        state.welcomed = true;
        state.backoffMs = BACKOFF_START_MS;
        setStatus('connected');
        subscribeAll();
        break;
      case 'subscribed': {
        const sub = subFor(f);
        if (!sub) break;
        sub.epoch = f.epoch;
        sub.status = 'subscribed';
        if (!f.recover) {
          // The events since our offset are gone: reload the history and go on from HEAD.
          sub.offset = f.offset;
          loadHistory(f.stream, f.user_id);
        }
        updateStatus();
        break;
      }
      case 'analysis':
      case 'insight':
        onEvent(f);
        break;
      case 'lagged': {
        const sub = subFor(f);
        if (!sub) break;
        sub.offset = f.last_offset;
        subscribe(f.stream);
        break;
      }
      case 'unsubscribed': {
        const sub = subFor(f);
        if (!sub || f.reason !== 'revoked') break;
        sub.status = 'revoked';
        notice(`Access to ${f.stream} of ${labelOf(f.user_id)} was revoked.`);
        updateStatus();
        break;
      }
      case 'error': {
        const sub = f.stream ? subFor(f) : null;
        if (sub && f.code === 'forbidden') sub.status = 'forbidden';
        notice(`Server error (${f.code}): ${f.message || ''}`.trim());
        updateStatus();
        break;
      }
      case 'token_expiring':
        refreshTokens()
          .then(() => send({ type: 'refresh', access_token: state.session.access_token }))
          .catch(() => {});
        break;
      case 'going_away':
        state.nextDelayMs = Number(f.reconnect_after_ms) || null;
        break;
      default:
        // welcome/pong/refreshed/ack and insight progress frames need nothing here.
        break;
    }
  }

  function onEvent(f) {
    const stream = f.stream || STREAM_OF[f.type];
    if (f.user_id !== state.selected) return;
    const sub = state.subs.get(stream);
    if (!sub) return;
    if (typeof f.offset === 'number' && f.offset > sub.offset) sub.offset = f.offset;
    if (f.type === 'insight') addInsights([f]);
    else showAnalysis(f);
  }

  function labelOf(userId) {
    const u = state.users.find((x) => x.user_id === userId);
    return u ? u.email : userId;
  }

  async function loadHistory(stream, userId) {
    const from = new Date(Date.now() - HISTORY_DAYS * 24 * HOUR_MS).toISOString();
    const docs = [];
    let cursor = null;
    try {
      for (let page = 0; page < HISTORY_PAGES; page += 1) {
        const q = new URLSearchParams({ user_id: userId, from, limit: '100' });
        if (cursor) q.set('cursor', cursor);
        const body = await api(`/api/v1/${stream}?${q}`);
        docs.push(...(body[stream] || []));
        cursor = body.next_cursor;
        if (!cursor) break;
      }
    } catch (e) {
      if (state.selected === userId) notice(`Could not load the ${stream} history: ${e.message}`);
      return;
    }
    if (state.selected !== userId) return;
    if (stream === 'insights') addInsights(docs);
    else if (docs.length) showAnalysis(docs[docs.length - 1]);
  }

  // ---- status ------------------------------------------------------------------------------

  const STATUS_TEXT = {
    offline: 'Offline',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    connected: 'Connected',
    subscribing: 'Subscribing…',
    subscribed: 'Live',
    closed: 'Not shared',
  };

  function setStatus(s, detail) {
    const node = $('ws-status');
    node.dataset.state = s;
    node.dataset.userId = state.selected || '';
    node.textContent = (STATUS_TEXT[s] || s) + (detail ? ` (${detail})` : '');
  }

  function updateStatus() {
    if (!state.welcomed) return;
    const subs = [...state.subs.entries()];
    const live = subs.filter(([, s]) => s.status !== 'revoked' && s.status !== 'forbidden');
    if (!live.length) setStatus(subs.length ? 'closed' : 'connected');
    else if (live.every(([, s]) => s.status === 'subscribed')) {
      // Say which streams are still followed when some were revoked or refused.
      setStatus('subscribed', live.length < subs.length ? `${live.map(([k]) => k).join(', ')} only` : '');
    } else setStatus('subscribing');
  }

  // ---- insights ----------------------------------------------------------------------------

  function addInsights(docs) {
    for (const d of docs) {
      if (d && d.insight_id) state.insights.set(d.insight_id, d);
    }
    const sorted = [...state.insights.values()].sort(newestFirst).slice(0, MAX_INSIGHTS);
    state.insights = new Map(sorted.map((d) => [d.insight_id, d]));
    // Existing items are kept (not re-created) so that assistive technology announces only
    // the additions of the live region.
    const list = $('insights');
    const existing = new Map([...list.children].map((li) => [li.dataset.insightId, li]));
    sorted.forEach((d, i) => {
      const li = existing.get(d.insight_id) || insightItem(d);
      existing.delete(d.insight_id);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    for (const stale of existing.values()) stale.remove();
    $('insights-empty').hidden = sorted.length > 0;
  }

  // Several insights can be made within a millisecond (a replayed backlog): the stream
  // offset, then the week's end, break the tie.
  function newestFirst(a, b) {
    return (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0)
      || (b.offset || 0) - (a.offset || 0)
      || windowEnd(b) - windowEnd(a);
  }

  function listSection(title, items) {
    const ul = el('ul');
    for (const it of items || []) ul.append(el('li', {}, String(it)));
    return [el('h3', {}, title), ul];
  }

  function insightItem(d) {
    const li = el('li', { class: 'insight', 'data-testid': 'insight', 'data-insight-id': d.insight_id });
    const off = offsetOf(d);
    const meta = el('p', { class: 'meta', 'data-testid': 'insight-meta' },
      el('time', { datetime: d.created_at }, fmtDateTime(d.created_at, off)));
    const from = Date.parse(d.window && d.window.from);
    const to = Date.parse(d.window && d.window.to);
    if (!Number.isNaN(from) && !Number.isNaN(to) && to > from) {
      // The window's end is exclusive: its last day is the one of its last minute.
      meta.append(` · data ${fmtDay(from, off)} – ${fmtDay(to - 60000, off)}`);
    }
    li.append(meta);
    li.append(el('p', { class: 'summary', 'data-testid': 'insight-summary' }, d.summary || ''));
    if (d.key_points && d.key_points.length) li.append(...listSection('Key points', d.key_points));
    if (d.recommendations && d.recommendations.length) {
      li.append(...listSection('Recommendations', d.recommendations));
    }
    return li;
  }

  // ---- chart -------------------------------------------------------------------------------

  function windowEnd(a) {
    return Date.parse((a.window && a.window.to) || a.created_at) || 0;
  }

  function showAnalysis(a) {
    // Replays and REST reloads may bring older analyses after a newer one.
    if (state.analysis && windowEnd(a) < windowEnd(state.analysis)) return;
    state.analysis = a;
    drawChart(a);
  }

  function drawChart(a) {
    const box = $('chart');
    const caption = $('chart-caption');
    const words = activityWords(a);
    box.replaceChildren();
    box.dataset.analysisId = a.analysis_id || '';
    $('chart-title').textContent = words.title;
    $('chart-legend').hidden = true;
    const hourly = a.activity && a.activity.hourly;
    const start = hourly ? Date.parse(hourly.start) : NaN;
    if (!hourly || !Array.isArray(hourly.means) || !hourly.means.length || Number.isNaN(start)) {
      caption.textContent = `The latest analysis has no hourly ${words.noun}.`;
      return;
    }
    // The last week only, should the analysis ever carry more.
    const skip = Math.max(0, hourly.means.length - WEEK_HOURS);
    const means = hourly.means.slice(skip);
    const t0 = start + skip * HOUR_MS;
    const t1 = t0 + means.length * HOUR_MS;
    const offsetMin = offsetOf(a);
    const present = means.filter((v) => typeof v === 'number' && Number.isFinite(v));
    const max = present.length ? Math.max(...present) : 0;

    // Drawn at the shown width, one SVG unit a CSS pixel, so labels keep their size.
    const W = Math.max(Math.round(box.clientWidth) || 840, 240);
    const H = W < 500 ? 180 : 220;
    const left = 40; const right = 8; const top = 10; const bottom = 36;
    const plotW = W - left - right; const plotH = H - top - bottom;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;

    const periods = ((a.sleep && a.sleep.periods) || [])
      .map((p) => ({ from: Date.parse(p.in_bed), to: Date.parse(p.out_bed), p }))
      .filter((p) => !Number.isNaN(p.from) && !Number.isNaN(p.to) && p.to > t0 && p.from < t1);

    const title = `Mean ${words.noun} per hour`;
    const desc = `${present.length} of ${means.length} hours with data, highest hourly mean ${Math.round(max)}; `
      + `${periods.length} sleep period${periods.length === 1 ? '' : 's'} shaded.`;
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-svg-title chart-svg-desc',
    });
    root.append(svg('title', { id: 'chart-svg-title' }, title), svg('desc', { id: 'chart-svg-desc' }, desc));

    // Sleep bands go first so the bars are drawn over them.
    for (const { from, to, p } of periods) {
      const x0 = x(Math.max(from, t0));
      const x1 = x(Math.min(to, t1));
      const band = svg('rect', {
        class: 'sleep-band', 'data-testid': 'sleep-band', x: x0, y: top, width: Math.max(x1 - x0, 1), height: plotH,
      });
      const mins = Number.isFinite(p.total_sleep_minutes) ? `, ${p.total_sleep_minutes} min asleep` : '';
      band.append(svg('title', {}, `In bed ${clock(from, offsetMin)} – ${clock(to, offsetMin)}${mins}`));
      root.append(band);
    }

    // Hour labels on the user's clock, as often as they fit (every 3, 6 or 12 hours)...
    const offsetMs = offsetMin * 60000;
    const hourPx = plotW / means.length;
    const every = [3, 6, 12].find((h) => h * hourPx >= 34);
    const axisY = top + plotH;
    if (every) {
      let tick = Math.ceil((t0 + offsetMs) / (every * HOUR_MS)) * every * HOUR_MS - offsetMs;
      for (; tick < t1; tick += every * HOUR_MS) {
        const hour = onClock(tick, offsetMin).getUTCHours();
        const tx = x(tick);
        if (hour === 0 || tx - 12 < left || tx + 12 > W - right) continue;
        root.append(svg('line', { class: 'axis', x1: tx, x2: tx, y1: axisY, y2: axisY + 3 }));
        root.append(svg('text', {
          class: 'hour-label', 'data-testid': 'hour-label', x: tx, y: axisY + 14, 'text-anchor': 'middle',
        }, pad2(hour)));
      }
    }
    // ... and a dashed line and the date at each midnight.
    const dayPx = 24 * hourPx;
    let midnight = Math.ceil((t0 + offsetMs) / (24 * HOUR_MS)) * 24 * HOUR_MS - offsetMs;
    for (; midnight < t1; midnight += 24 * HOUR_MS) {
      const mx = x(midnight);
      root.append(svg('line', { class: 'day-line', x1: mx, x2: mx, y1: top, y2: axisY + 16 }));
      const day = onClock(midnight, offsetMin);
      // Weekday and date where a day is wide enough, else the date alone.
      const label = dayPx >= 44 ? `${WEEKDAYS[day.getUTCDay()]} ${day.getUTCDate()}` : String(day.getUTCDate());
      if (mx + label.length * 6.5 + 3 <= W) {
        root.append(svg('text', {
          class: 'day-label', 'data-testid': 'day-label', x: mx + 3, y: H - 4,
        }, label));
      }
    }

    // One bar per hour; a missing hour (null) stays a gap.
    const slot = plotW / means.length;
    const gap = slot > 3 ? 1 : 0;
    means.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) return;
      const h = max > 0 ? (v / max) * plotH : 0;
      root.append(svg('rect', {
        class: 'bar-rect', x: left + i * slot, y: top + plotH - h, width: Math.max(slot - gap, 0.5), height: h,
      }));
    });

    root.append(svg('line', { class: 'axis', x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }));
    root.append(svg('text', { x: left - 6, y: top + plotH, 'text-anchor': 'end' }, '0'));
    root.append(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end' }, String(Math.round(max))));
    box.append(root);

    const wFrom = Date.parse(a.window && a.window.from);
    const wTo = Date.parse(a.window && a.window.to);
    const span = Number.isNaN(wFrom) || Number.isNaN(wTo) ? '' : `Last ${fmtLength(wTo - wFrom)} to `;
    caption.textContent = `${span}${fmtDateTime(a.window ? a.window.to : a.created_at, offsetMin)}: `
      + `mean ${words.noun} per hour; ${desc}`;
    $('legend-bars-text').textContent = `mean ${words.noun} per hour`;
    $('legend-sleep').hidden = periods.length === 0;
    $('chart-legend').hidden = false;
  }

  // Redraws the chart when its width changes (a phone turned, a window resized).
  function watchWidth() {
    let width = 0;
    new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (w === width) return;
      width = w;
      if (state.analysis) drawChart(state.analysis);
    }).observe($('chart'));
  }

  // ---- start -------------------------------------------------------------------------------

  function init() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', () => endSession(''));
    $('user-select').addEventListener('change', (ev) => selectUser(ev.target.value));
    watchWidth();
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (saved) {
      try {
        state.session = JSON.parse(saved);
      } catch {
        sessionStorage.removeItem(STORAGE_KEY);
      }
    }
    if (state.session) {
      startDashboard().catch(() => endSession('Please log in again.'));
    }
  }

  init();
})();

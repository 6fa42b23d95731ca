// Clarity dashboard: log in, pick a user whose data the caller may see (self or the owner of a
// share received), follow that user's `analyses` and `insights` streams over the WebSocket.
// Loaded last, after clock.js, samples.js, charts.js and views.js.
//
// Rules:
// - Plain script, no library, nothing from other origins: the page's CSP forbids it, and the
//   page must work with the server binary alone.
// - Tokens live in memory and sessionStorage (gone with the tab), never in localStorage, a
//   cookie or a page URL, and are never logged.
// - Server text goes into the page through textContent and SVG attributes only, never as
//   markup, so a summary cannot inject code.
// - Dates and hours are on the user's clock: the UTC offset of their data (an analysis' or
//   insight's `window`, a sample's own offset), never the viewer's browser time zone, which
//   may be another one (clock.js).
// - The charts (views.js) draw the caller's own raw samples (GET /api/v1/health-data, the
//   last week, read again whenever a new analysis says there is new data) and the latest
//   analysis; a share grantee gets the analysis only, because the API never shares raw
//   samples. They are redrawn when their width changes.
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
  // Raw samples drawn for the caller's own data: the last week, these kinds, at most this many
  // pages of 10,000 each.
  const SAMPLE_DAYS = 7;
  const SAMPLE_KINDS = ['heart_rate', 'step_count', 'sleep_stage'];
  const SAMPLE_PAGES = 5;
  const C = window.Clarity.clock;
  const S = window.Clarity.samples;
  const V = window.Clarity.views;
  const { fmtDay } = C;

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
    // The analyses received last, by id: a `superseded` event names its replacement, which
    // arrived just before it.
    recentAnalyses: new Map(),
    // The caller's own raw samples ({hr, steps, stages}, parsed), while they are selected.
    samples: null,
    // The sample load in flight, and whether another was asked for meanwhile.
    sampleLoad: null,
    sampleLoadAgain: false,
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

  function notice(text) {
    const n = $('notice');
    n.textContent = text || '';
    n.hidden = !text;
  }

  // ---- the user's clock ---------------------------------------------------------------------

  const offsetOf = C.offsetOfDoc;

  // "Sun 6 Dec 2026, 14:05 (UTC+9)" on the user's clock, from an RFC 3339 time.
  function fmtDateTime(iso, offsetMin) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return String(iso);
    return C.fmtDateTime(ms, offsetMin);
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
    state.samples = null;
    state.sampleLoadAgain = false;
    drawCharts();
    loadSamples();
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
      case 'superseded':
        onSuperseded(f);
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
    else {
      state.recentAnalyses.set(f.analysis_id, f);
      while (state.recentAnalyses.size > 20) {
        state.recentAnalyses.delete(state.recentAnalyses.keys().next().value);
      }
      showAnalysis(f);
    }
  }

  // An analysis or insight was replaced (samples it used were edited or deleted) by `by`,
  // which came on the same stream just before; `by` is the nil UUID when nothing replaces it.
  function onSuperseded(f) {
    if (f.user_id !== state.selected) return;
    const sub = state.subs.get(f.stream);
    if (!sub) return;
    if (typeof f.offset === 'number' && f.offset > sub.offset) sub.offset = f.offset;
    if (f.stream === 'insights') {
      state.insights.delete(f.id);
      addInsights([]);
      return;
    }
    state.recentAnalyses.delete(f.id);
    if (!state.analysis || state.analysis.analysis_id !== f.id) return;
    state.analysis = null;
    const by = state.recentAnalyses.get(f.by);
    if (by) showAnalysis(by);
    else loadHistory('analyses', f.user_id);
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
    // Replaced documents stay in the history (marked `superseded_by`); only current ones show.
    const current = docs.filter((d) => !d.superseded_by);
    if (stream === 'insights') addInsights(current);
    else if (current.length) showAnalysis(current[current.length - 1]);
    else if (state.analysis) {
      state.analysis = null;
      drawCharts();
    }
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

  // ---- charts ------------------------------------------------------------------------------

  function windowEnd(a) {
    return Date.parse((a.window && a.window.to) || a.created_at) || 0;
  }

  function showAnalysis(a) {
    // Replays and REST reloads may bring older analyses after a newer one.
    if (state.analysis && windowEnd(a) < windowEnd(state.analysis)) return;
    state.analysis = a;
    drawCharts();
    // A new analysis means new data: the caller's own samples are read again.
    loadSamples();
  }

  // Raw samples are shown to their owner only (the API never shares them).
  function ownView() {
    return Boolean(state.me && state.selected === state.me.user_id);
  }

  async function fetchKind(kind, from) {
    const out = [];
    let cursor = null;
    for (let page = 0; page < SAMPLE_PAGES; page += 1) {
      const q = new URLSearchParams({ kind, from, limit: '10000' });
      if (cursor) q.set('cursor', cursor);
      const body = await api(`/api/v1/health-data?${q}`);
      out.push(...(body.samples || []));
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return out;
  }

  // The caller's last week of samples. One load at a time; a request meanwhile (a newer
  // analysis arrived) makes one more after it.
  function loadSamples() {
    if (!ownView()) return;
    if (state.sampleLoad) {
      state.sampleLoadAgain = true;
      return;
    }
    const userId = state.selected;
    state.sampleLoad = (async () => {
      const from = new Date(Date.now() - SAMPLE_DAYS * 24 * HOUR_MS).toISOString();
      try {
        const [hr, steps, stages] = await Promise.all(SAMPLE_KINDS.map((k) => fetchKind(k, from)));
        if (state.selected !== userId) return;
        state.samples = { hr: S.parse(hr), steps: S.parse(steps), stages: S.parse(stages) };
        drawCharts();
      } catch (e) {
        if (state.selected === userId && state.session) notice(`Could not load your samples: ${e.message}`);
      }
    })().finally(() => {
      state.sampleLoad = null;
      if (state.sampleLoadAgain) {
        state.sampleLoadAgain = false;
        loadSamples();
      }
    });
  }

  function drawCharts() {
    const own = ownView();
    V.draw({
      analysis: state.analysis,
      samples: own ? state.samples : null,
      whose: own ? 'your' : 'their',
      analysesShared: state.subs.has('analyses'),
    });
  }

  // Redraws the charts when their width changes (a phone turned, a window resized).
  function watchWidth() {
    let width = 0;
    new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (w === width) return;
      width = w;
      if (state.analysis || state.samples) drawCharts();
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

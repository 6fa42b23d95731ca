// Clarity dashboard: log in, pick a user whose data the caller may see (self or the owner of a
// share received), follow that user's `analyses` and `insights` streams over the WebSocket.
// A module loaded last, after clock.js, samples.js, charts.js and views.js; the protocol
// (tokens and their refresh, reconnects, subscriptions and their resume, REST) is the SDK's,
// clients/js, served as /dashboard/clarity.js.
//
// Rules:
// - Nothing from other origins: the page's CSP forbids it, and the page must work with the
//   server binary alone.
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
// - The SDK resumes each stream from the last offset seen after a reconnect or a `lagged`;
//   when the server cannot replay (`recover: false`) the history comes from REST. Documents
//   are keyed by id, so a history that overlaps what is shown changes nothing.
import { AuthError, ClarityClient, SessionTokens } from '/dashboard/clarity.js';

(() => {
  const STREAMS = ['analyses', 'insights'];
  const STORAGE_KEY = 'clarity.dashboard.session';
  const HOUR_MS = 3600 * 1000;
  // REST history on `recover: false`: how far back, and at most how many pages per stream.
  const HISTORY_DAYS = 30;
  const HISTORY_PAGES = 20;
  // The list shows this many insights; older ones drop off the bottom.
  const MAX_INSIGHTS = 100;
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
    // SessionTokens (the SDK's login, refreshed one at a time), while logged in.
    tokens: null,
    // The SDK's client: the WebSocket session and `client.rest`.
    client: null,
    // GET /api/v1/user/profile
    me: null,
    // [{user_id, email, label, streams: Set}]
    users: [],
    selected: null,
    // stream -> {status: subscribing|subscribed|revoked|forbidden, sub: the SDK's Subscription}
    subs: new Map(),
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

  // ---- session and REST (the SDK) ---------------------------------------------------------

  // Every new token pair is kept for the tab; none (a refused refresh) ends the session.
  function onTokens(t) {
    if (t) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(t));
    else if (state.tokens) endSession('Your session has ended. Please log in again.');
  }

  // An authenticated GET (or other method) of the API; the SDK refreshes an expired token once.
  function api(path, { method = 'GET', body } = {}) {
    if (!state.client) return Promise.reject(new AuthError('unauthorized', 'not logged in'));
    return state.client.rest.json(method, path, { body });
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const submit = $('login-submit');
    const error = $('login-error');
    error.textContent = '';
    submit.disabled = true;
    try {
      const tokens = await SessionTokens.login(location.origin, $('email').value.trim(), $('password').value, {
        onChange: onTokens,
      });
      $('password').value = '';
      state.tokens = tokens;
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
    state.tokens = null;
    sessionStorage.removeItem(STORAGE_KEY);
    const client = state.client;
    state.client = null;
    if (client) client.close();
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
    const client = new ClarityClient({ url: location.origin, tokens: state.tokens });
    state.client = client;
    client.on('state', (s) => onClientState(client, s));
    client.on('error', (e) => {
      if (state.client !== client) return;
      if (e instanceof AuthError) endSession('Your session has ended. Please log in again.');
      else notice(`Server error (${e.code}): ${e.message || ''}`.trim());
    });
    state.me = await client.rest.profile();
    let received = [];
    try {
      received = (await client.rest.shares()).received || [];
    } catch (e) {
      if (!state.client) return;
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
  }

  function selectUser(userId) {
    for (const { sub } of state.subs.values()) sub.unsubscribe();
    const user = state.users.find((u) => u.user_id === userId);
    state.selected = userId;
    state.subs = new Map();
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
    for (const stream of STREAMS) {
      if (user && user.streams.has(stream)) subscribe(stream, userId);
    }
    updateStatus();
  }

  // ---- streams (the SDK's subscriptions) ---------------------------------------------------

  function onClientState(client, s) {
    if (state.client !== client) return;
    if (s === 'open') {
      setStatus('connected');
      updateStatus();
    } else if (s === 'connecting' || s === 'reconnecting') {
      for (const entry of state.subs.values()) {
        if (entry.status === 'subscribed') entry.status = 'subscribing';
      }
      setStatus(s);
    }
  }

  // since=0 at first: the server replays what it retains; the SDK resumes from the last
  // offset seen after that.
  function subscribe(stream, userId) {
    const entry = { status: 'subscribing', sub: null };
    state.subs.set(stream, entry);
    entry.sub = state.client.subscribe(stream, userId, onEvent, {
      since: 0,
      onSubscribed: () => {
        entry.status = 'subscribed';
        updateStatus();
      },
      // The events since our offset are gone: reload the history and go on from there.
      onReload: () => loadHistory(stream, userId),
      onEnd: (reason) => {
        if (reason === 'revoked') {
          entry.status = 'revoked';
          notice(`Access to ${stream} of ${labelOf(userId)} was revoked.`);
        } else {
          entry.status = reason.code === 'forbidden' ? 'forbidden' : 'ended';
          notice(`Server error (${reason.code}): ${reason.message || ''}`.trim());
        }
        updateStatus();
      },
    });
  }

  // A stream event of the selected user: analysis, insight or superseded.
  function onEvent(f) {
    if (f.type === 'superseded') {
      onSuperseded(f);
      return;
    }
    if (f.user_id !== state.selected) return;
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
    if (!state.client || state.client.state !== 'open') return;
    const subs = [...state.subs.entries()];
    const live = subs.filter(([, s]) => s.status === 'subscribing' || s.status === 'subscribed');
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
        if (state.selected === userId && state.client) notice(`Could not load your samples: ${e.message}`);
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
        state.tokens = new SessionTokens({ url: location.origin, tokens: JSON.parse(saved), onChange: onTokens });
      } catch {
        sessionStorage.removeItem(STORAGE_KEY);
      }
    }
    if (state.tokens) {
      startDashboard().catch(() => endSession('Please log in again.'));
    }
  }

  init();
})();

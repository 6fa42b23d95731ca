// @clarity/client, bundled by clients/js/scripts/build.mjs; do not edit: run `npm run build` in clients/js.

// src/backoff.ts
var Backoff = class {
  attempt = 0;
  initialMs;
  maxMs;
  constructor(options = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 3e4;
  }
  /** The delay before the next attempt; each call doubles the base up to `maxMs`. */
  next() {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return base / 2 + Math.random() * (base / 2);
  }
  reset() {
    this.attempt = 0;
  }
};

// src/errors.ts
var ClarityError = class extends Error {
  /** The server's stable code (`forbidden`, `too_many_samples`...), or the SDK's own. */
  code;
  /** How long the server asked to wait before trying again, when it said. */
  retryAfterMs;
  constructor(code, message, retryAfterMs) {
    super(message);
    this.name = "ClarityError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
};
var ApiError = class extends ClarityError {
  status;
  constructor(status, code, message, retryAfterMs) {
    super(code, message, retryAfterMs);
    this.name = "ApiError";
    this.status = status;
  }
};
var AuthError = class extends ClarityError {
  /** The HTTP status that said so, when it came from REST. */
  status;
  constructor(code, message, status) {
    super(code, message);
    this.name = "AuthError";
    this.status = status;
  }
};
function isAuthFailure(e) {
  return e instanceof AuthError || e instanceof ApiError && (e.status === 401 || e.status === 403);
}
async function apiError(resp) {
  let code = `http_${resp.status}`;
  let message = resp.statusText || code;
  let retryAfterMs;
  try {
    const body = await resp.json();
    if (body?.error?.code) code = body.error.code;
    if (body?.error?.message) message = body.error.message;
    if (typeof body?.retry_after_ms === "number") retryAfterMs = body.retry_after_ms;
  } catch {
  }
  const header = Number(resp.headers.get("retry-after"));
  if (retryAfterMs === void 0 && header > 0) retryAfterMs = header * 1e3;
  return new ApiError(resp.status, code, message, retryAfterMs);
}

// src/outbox.ts
function emptyResult() {
  return { accepted: 0, duplicates: 0, updated: 0, deleted: 0, not_found: 0, rejected: [], rejected_omitted: 0 };
}
function addResult(into, r, indexOffset = 0) {
  into.accepted += r.accepted;
  into.duplicates += r.duplicates;
  into.updated += r.updated;
  into.deleted += r.deleted;
  into.not_found += r.not_found;
  into.rejected_omitted += r.rejected_omitted;
  for (const x of r.rejected) into.rejected.push({ ...x, index: x.index + indexOffset });
}
var Outbox = class {
  constructor(storage, onResult, onReady) {
    this.storage = storage;
    this.onResult = onResult;
    this.onReady = onReady;
    this.chain = storage.load().then((records) => {
      for (const record of records) {
        this.entries.push({ record, seq: void 0, outcome: void 0 });
        this.nextKey = Math.max(this.nextKey, record.key + 1);
      }
      onReady();
    });
  }
  storage;
  onResult;
  onReady;
  entries = [];
  nextKey = 1;
  chain;
  bySeq = /* @__PURE__ */ new Map();
  idle = [];
  /** Resolves once earlier records are loaded (rejects if the storage cannot be read). */
  loaded() {
    return this.chain;
  }
  /** Queues a batch: stored first, then sendable. */
  add(make) {
    return new Promise((resolve, reject) => {
      this.chain = this.chain.then(async () => {
        const record = make(this.nextKey++);
        await this.storage.put(record);
        this.entries.push({ record, seq: void 0, outcome: void 0, resolve, reject });
        this.onReady();
      }).catch((e) => {
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }
  /** The batches waiting, sent or not. */
  get size() {
    return this.entries.length;
  }
  get inflight() {
    return this.bySeq.size;
  }
  /** The next batch to send, if any. */
  nextUnsent() {
    return this.entries.find((e) => e.seq === void 0 && e.outcome === void 0);
  }
  markSent(entry, seq) {
    entry.seq = seq;
    this.bySeq.set(seq, entry);
  }
  /** The connection is gone: whatever was sent and not answered is unsent again. */
  connectionLost() {
    for (const e of this.bySeq.values()) e.seq = void 0;
    this.bySeq.clear();
  }
  /** An ack: the batch is durable on the server. */
  async acked(ack) {
    const entry = this.take(ack.seq);
    if (!entry) return;
    await this.storage.remove(entry.record.key);
    entry.outcome = {
      result: {
        accepted: ack.accepted,
        duplicates: ack.duplicates,
        updated: ack.updated ?? 0,
        deleted: ack.deleted ?? 0,
        not_found: ack.not_found ?? 0,
        rejected: ack.rejected,
        rejected_omitted: ack.rejected_omitted ?? 0
      }
    };
    this.settle();
  }
  /** Refused for now: sent again (first of the unsent) when the caller says. */
  retryLater(seq) {
    const entry = this.take(seq);
    if (!entry) return false;
    entry.seq = void 0;
    return true;
  }
  /** Refused for good (over the server's limits): dropped, its promise rejected. */
  async refused(seq, error) {
    const entry = this.take(seq);
    if (!entry) return;
    await this.storage.remove(entry.record.key);
    entry.outcome = { error };
    this.settle();
  }
  /** Rejects every waiting promise (the client stopped); the records stay stored. */
  failAll(error) {
    for (const e of this.entries) {
      e.reject?.(error);
      e.resolve = void 0;
      e.reject = void 0;
    }
  }
  /** Resolves when nothing is waiting. */
  drained() {
    if (!this.entries.length) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
  take(seq) {
    const entry = this.bySeq.get(seq);
    if (!entry) return void 0;
    this.bySeq.delete(seq);
    entry.seq = -1;
    return entry;
  }
  // Settles answered batches from the front, so promises resolve in call order.
  settle() {
    while (this.entries.length && this.entries[0].outcome) {
      const e = this.entries.shift();
      const outcome = e.outcome;
      if ("result" in outcome) {
        if (e.resolve) e.resolve(outcome.result);
        else this.onResult(outcome.result, e.record);
      } else e.reject?.(outcome.error);
    }
    if (!this.entries.length) {
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
    }
  }
};

// src/tokens.ts
function stored(t) {
  if ("expires_at" in t) return { ...t };
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_at: Date.now() + (Number(t.expires_in) || 0) * 1e3
  };
}
function baseUrl(url) {
  return url.replace(/\/+$/, "");
}
async function post(f, url, path, body, token) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return f(`${baseUrl(url)}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
}
var SessionTokens = class _SessionTokens {
  tokens;
  inflight = null;
  url;
  onChange;
  marginMs;
  fetch;
  constructor(options) {
    this.url = options.url;
    this.tokens = stored(options.tokens);
    this.onChange = options.onChange;
    this.marginMs = options.marginMs ?? 3e4;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }
  /** Logs in with email and password; `invalid_credentials` is an `AuthError`. */
  static async login(url, email, password, options = {}) {
    const f = options.fetch ?? globalThis.fetch.bind(globalThis);
    const resp = await post(f, url, "/api/v1/auth/login", { email, password });
    if (!resp.ok) {
      const e = await apiError(resp);
      if (resp.status === 401) throw new AuthError(e.code, e.message, resp.status);
      throw e;
    }
    const tokens = new _SessionTokens({ ...options, url, tokens: await resp.json() });
    tokens.onChange?.(tokens.current());
    return tokens;
  }
  /** The pair held now (to store it), or `null` after logout. */
  current() {
    return this.tokens ? { ...this.tokens } : null;
  }
  async get() {
    if (!this.tokens) throw new AuthError("logged_out", "logged out: sign in again");
    if (this.tokens.expires_at - Date.now() < this.marginMs) return this.refresh();
    return this.tokens.access_token;
  }
  refresh() {
    if (!this.inflight) {
      this.inflight = this.doRefresh().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }
  async doRefresh() {
    const spent = this.tokens;
    if (!spent) throw new AuthError("logged_out", "logged out: sign in again");
    const resp = await post(this.fetch, this.url, "/api/v1/auth/refresh", { refresh_token: spent.refresh_token });
    if (!resp.ok) {
      const e = await apiError(resp);
      if (resp.status === 401 || resp.status === 403 || resp.status === 404) {
        this.tokens = null;
        this.onChange?.(null);
        throw new AuthError(e.code, e.message, resp.status);
      }
      throw e;
    }
    this.tokens = stored(await resp.json());
    this.onChange?.(this.current());
    return this.tokens.access_token;
  }
  /** Ends this login on the server (every node closes its sessions with 4011). */
  async logout() {
    const t = this.tokens;
    this.tokens = null;
    this.onChange?.(null);
    if (!t) return;
    const resp = await post(this.fetch, this.url, "/api/v1/auth/logout", { refresh_token: t.refresh_token }, t.access_token);
    if (!resp.ok && resp.status !== 401) throw await apiError(resp);
  }
};

// src/rest.ts
var ClarityRest = class {
  url;
  tokens;
  fetch;
  constructor(options) {
    this.url = baseUrl(options.url);
    this.tokens = options.tokens;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }
  /** An authenticated call; its response, or an `ApiError` / `AuthError`. */
  async raw(method, path, options = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== void 0) q.set(k, String(v));
    }
    const url = `${this.url}${path}${q.size ? `?${q}` : ""}`;
    const call = async (token) => {
      const headers = { accept: "application/json", ...options.headers, authorization: `Bearer ${token}` };
      if (options.body !== void 0) headers["content-type"] = "application/json";
      return this.fetch(url, {
        method,
        headers,
        body: options.body === void 0 ? void 0 : JSON.stringify(options.body),
        cache: "no-store",
        credentials: "omit"
      });
    };
    let resp = await call(await this.tokens.get());
    if (resp.status === 401) {
      await resp.body?.cancel();
      resp = await call(await this.tokens.refresh());
      if (resp.status === 401) {
        const e = await apiError(resp);
        throw new AuthError(e.code, e.message, 401);
      }
    }
    if (!resp.ok) throw await apiError(resp);
    return resp;
  }
  async json(method, path, options = {}) {
    const resp = await this.raw(method, path, options);
    if (resp.status === 204) return void 0;
    return await resp.json();
  }
  async *pages(path, key, query) {
    let cursor;
    do {
      const body = await this.json("GET", path, { query: { ...query, cursor } });
      for (const item of body[key] ?? []) yield item;
      cursor = body.next_cursor ?? void 0;
    } while (cursor);
  }
  // ---- account ---------------------------------------------------------------------------
  profile() {
    return this.json("GET", "/api/v1/user/profile");
  }
  // ---- samples ---------------------------------------------------------------------------
  /** `POST /api/v1/health-data` (up to 10,000 samples); durable when it resolves. */
  upload(samples) {
    return this.json("POST", "/api/v1/health-data", { body: { samples } });
  }
  /** Every stored sample matching `query`, ordered by (start, id), page by page. */
  history(query = {}) {
    return this.pages("/api/v1/health-data", "samples", { ...query });
  }
  deleteSamples(ids) {
    return this.json("POST", "/api/v1/health-data/delete", { body: { ids } });
  }
  /** `true` when deleted, `false` when it was not stored. */
  async deleteSample(id) {
    try {
      await this.raw("DELETE", `/api/v1/health-data/${encodeURIComponent(id)}`);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return false;
      throw e;
    }
  }
  /**
   * The change feed from `since` (a `next_token`; omitted or `"0"`: every current sample),
   * one page at a time until `more` is false. The last page's `next_token` is where to go on
   * later. A 410 `resync_required` means: start again from `"0"` and replace the local copy.
   */
  async *changes(since = "0", limit) {
    let token = since;
    for (; ; ) {
      const page = await this.json("GET", "/api/v1/changes", { query: { since: token, limit } });
      yield page;
      token = page.next_token;
      if (!page.more) return;
    }
  }
  // ---- analyses and insights -------------------------------------------------------------
  /** Analytics of the last week now (201 new, 200 unchanged); `no_data` without activity. */
  analyze() {
    return this.json("POST", "/api/v1/analyses");
  }
  analyses(query = {}) {
    const { userId, ...rest } = query;
    return this.pages("/api/v1/analyses", "analyses", { ...rest, user_id: userId });
  }
  analysis(id, userId) {
    return this.json("GET", `/api/v1/analyses/${encodeURIComponent(id)}`, { query: { user_id: userId } });
  }
  createInsight() {
    return this.json("POST", "/api/v1/insights");
  }
  insights(query = {}) {
    const { userId, ...rest } = query;
    return this.pages("/api/v1/insights", "insights", { ...rest, user_id: userId });
  }
  insight(id, userId) {
    return this.json("GET", `/api/v1/insights/${encodeURIComponent(id)}`, { query: { user_id: userId } });
  }
  // ---- shares ----------------------------------------------------------------------------
  shares() {
    return this.json("GET", "/api/v1/shares");
  }
  share(granteeEmail, scope) {
    return this.json("POST", "/api/v1/shares", { body: { grantee_email: granteeEmail, scope } });
  }
  async unshare(shareId) {
    await this.raw("DELETE", `/api/v1/shares/${encodeURIComponent(shareId)}`);
  }
  // ---- export ----------------------------------------------------------------------------
  /**
   * `GET /api/v1/export`: everything stored of the caller, one object per line (`profile`,
   * `sample`, `analysis`, `insight`, `share`, `audit`, then `end`), parsed as it streams. An
   * `error` line (the export broke off) throws.
   */
  async *export() {
    const resp = await this.raw("GET", "/api/v1/export", { headers: { accept: "application/x-ndjson" } });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ended = false;
    for (; ; ) {
      const { value, done: done2 } = await reader.read();
      if (value) buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const obj = JSON.parse(line);
        if (obj.type === "error") throw new ApiError(200, String(obj.code ?? "export_failed"), String(obj.message ?? "the export broke off"));
        if (obj.type === "end") ended = true;
        yield obj;
      }
      if (done2) break;
    }
    if (!ended) throw new ApiError(200, "export_incomplete", "the export ended without its end line: download it again");
  }
};

// src/storage.ts
var MemoryStorage = class {
  records = /* @__PURE__ */ new Map();
  async load() {
    return [...this.records.values()].sort((a, b) => a.key - b.key).map((r) => structuredClone(r));
  }
  async put(record) {
    this.records.set(record.key, structuredClone(record));
  }
  async remove(key) {
    this.records.delete(key);
  }
};
function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}
var IndexedDBStorage = class {
  /** `name`: the database, one per user (e.g. `clarity-outbox-<user id>`). */
  constructor(name = "clarity-outbox", idb = globalThis.indexedDB) {
    this.name = name;
    this.idb = idb;
    if (!idb) throw new Error("IndexedDBStorage: no indexedDB in this environment");
  }
  name;
  idb;
  db = null;
  open() {
    if (!this.db) {
      const req = this.idb.open(this.name, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore("outbox", { keyPath: "key" });
      };
      this.db = done(req);
    }
    return this.db;
  }
  async tx(mode) {
    const db = await this.open();
    return db.transaction("outbox", mode, { durability: "strict" });
  }
  async load() {
    const tx = await this.tx("readonly");
    return done(tx.objectStore("outbox").getAll());
  }
  async put(record) {
    const tx = await this.tx("readwrite");
    tx.objectStore("outbox").put(record);
    await committed(tx);
  }
  async remove(key) {
    const tx = await this.tx("readwrite");
    tx.objectStore("outbox").delete(key);
    await committed(tx);
  }
  /** Closes the database (tests, or before deleting it). */
  async close() {
    if (this.db) (await this.db).close();
    this.db = null;
  }
};

// src/subscriptions.ts
var Subscription = class {
  constructor(stream, userId, handler, options, onUnsubscribe) {
    this.stream = stream;
    this.userId = userId;
    this.handler = handler;
    this.options = options;
    this.onUnsubscribe = onUnsubscribe;
    this.offset = options.since;
    this.epoch = options.epoch;
  }
  stream;
  userId;
  handler;
  options;
  onUnsubscribe;
  /** Last offset delivered to the handler (or reported by the server on reload). */
  offset;
  epoch;
  /** `pending` (not yet answered on this connection), `live`, or `ended`. */
  state = "pending";
  /** The frame that (re)starts it. */
  frame() {
    const f = { type: "subscribe", stream: this.stream };
    if (this.userId) f.user_id = this.userId;
    if (this.offset !== void 0) f.since = this.offset;
    if (this.epoch !== void 0 && this.offset !== void 0) f.epoch = this.epoch;
    return f;
  }
  matches(stream, userId) {
    return stream === this.stream && userId === this.userId;
  }
  subscribed(f) {
    this.state = "live";
    this.epoch = f.epoch;
    if (this.offset === void 0) this.offset = f.offset;
    else if (!f.recover) {
      this.offset = f.offset;
      this.options.onReload?.({ stream: this.stream, userId: f.user_id, offset: f.offset, reason: "recover_false" });
    }
    this.options.onSubscribed?.(f);
  }
  /** Delivers `event` unless its offset was delivered already. */
  deliver(event) {
    if (this.state === "ended") return;
    if (this.offset !== void 0 && event.offset <= this.offset) return;
    this.offset = event.offset;
    this.handler(event);
  }
  /** The change feed's position is unusable: start again from 0. */
  resync() {
    this.offset = 0;
    this.epoch = void 0;
    this.options.onReload?.({ stream: this.stream, userId: this.userId ?? "", offset: 0, reason: "resync_required" });
  }
  end(reason) {
    if (this.state === "ended") return;
    this.state = "ended";
    this.options.onEnd?.(reason);
  }
  /** Stops it (sends `unsubscribe` when connected). */
  unsubscribe() {
    if (this.state === "ended") return;
    this.state = "ended";
    this.onUnsubscribe(this);
  }
};

// src/client.ts
var OPEN = 1;
var HANDSHAKE_TIMEOUT_MS = 15e3;
var RETRY_CODES = /* @__PURE__ */ new Set(["rate_limited", "store_unavailable", "internal"]);
var CLOSE_LOGGED_OUT = 4011;
var CLOSE_TOKEN = /* @__PURE__ */ new Set([4001, 4003]);
var ClarityClient = class {
  rest;
  tokens;
  wsUrl;
  WS;
  backoff;
  outbox;
  options;
  listeners = /* @__PURE__ */ new Map();
  subs = /* @__PURE__ */ new Set();
  ws = null;
  welcome = null;
  /** Whether the current connection got its `welcome`. */
  isWelcomed = false;
  seq = 1;
  stateNow = "connecting";
  stopped = false;
  /** Why it stopped: later calls reject with it. */
  stoppedBy;
  needRefresh = false;
  closeError;
  nextDelayMs;
  pauseUntil = 0;
  lastFrameAt = 0;
  timers = /* @__PURE__ */ new Set();
  liveness;
  constructor(options) {
    this.options = options;
    this.tokens = options.tokens;
    const base = baseUrl(options.url);
    this.wsUrl = `${base.replace(/^http/, "ws")}/api/v1/ws`;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new Error("ClarityClient: no WebSocket in this environment (node 20: --experimental-websocket; or pass options.WebSocket)");
    this.WS = WS;
    this.backoff = new Backoff(options.backoff);
    this.rest = new ClarityRest({ url: base, tokens: options.tokens, fetch: options.fetch });
    this.outbox = new Outbox(
      options.storage ?? new MemoryStorage(),
      (r, record) => this.emit("result", r, record),
      () => this.pump()
    );
    this.outbox.loaded().then(
      () => this.connect(),
      (e) => this.fail(new ClarityError("storage_failed", `the outbox storage could not be read: ${String(e)}`))
    );
  }
  get state() {
    return this.stateNow;
  }
  /** The user the session is for (after the first `welcome`). */
  get userId() {
    return this.welcome?.user_id;
  }
  /** Batches waiting for their ack. */
  get pending() {
    return this.outbox.size;
  }
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => set.delete(fn);
  }
  /**
   * Stores `samples` (each with a stable `id`) on the server; resolves once they are durable
   * there, with what it did (summed over the frames they needed), in call order.
   */
  async send(samples) {
    if (this.stoppedBy) throw this.stoppedBy;
    const size = this.batchSize();
    const parts = [];
    for (let i = 0; i < samples.length; i += size) {
      const chunk = samples.slice(i, i + size);
      parts.push(this.outbox.add((key) => ({ key, op: "samples", samples: chunk })));
    }
    return this.sum(parts, size);
  }
  /**
   * Stores a regular series (one kind, unit and source at `interval_ms`) in `series` frames:
   * about 4 bytes a value instead of ~120 a sample object. Longer than a frame allows, it is
   * split, each part starting where it falls (same UTC offset). Resolves once durable, with
   * the counts summed and `rejected[].index` the value's index in `series.values`. Values
   * without ids get the server's derived ids (protocol/README.md, "Derived ids"), so sending
   * the same series again is all `duplicates`.
   */
  async sendSeries(series) {
    if (this.stoppedBy) throw this.stoppedBy;
    const size = this.batchSize();
    const offset = utcOffsetMs(series.start);
    const startMs = Date.parse(series.start);
    if (offset === void 0 || Number.isNaN(startMs)) {
      throw new ClarityError("invalid_frame", `series: start ${JSON.stringify(series.start)} is no RFC 3339 date-time with an offset`);
    }
    const parts = [];
    for (let i = 0; i < series.values.length; i += size) {
      const part = {
        ...series,
        start: i === 0 ? series.start : atOffset(startMs + i * series.interval_ms, offset),
        values: series.values.slice(i, i + size)
      };
      if (series.ids) part.ids = series.ids.slice(i, i + size);
      if (series.versions) part.versions = series.versions.slice(i, i + size);
      parts.push(this.outbox.add((key) => ({ key, op: "series", series: part })));
    }
    return this.sum(parts, size);
  }
  /** Deletes samples by id; resolves once durable (`deleted` / `not_found` counts). */
  async delete(ids) {
    if (this.stoppedBy) throw this.stoppedBy;
    const parts = [];
    for (let i = 0; i < ids.length; i += 1e3) {
      const chunk = ids.slice(i, i + 1e3);
      parts.push(this.outbox.add((key) => ({ key, op: "delete", ids: chunk })));
    }
    return this.sum(parts, 1e3);
  }
  /** Resolves when every batch (this run's and any a previous run left) is acked. */
  drain() {
    return this.outbox.loaded().then(() => this.outbox.drained());
  }
  /**
   * Follows `stream` of `userId` (default: the session's user): `handler` gets each event
   * once, in offset order, across reconnects. See `SubscribeOptions`.
   */
  subscribe(stream, userId, handler, options = {}) {
    const sub = new Subscription(stream, userId ?? this.welcome?.user_id, handler, options, (s) => {
      this.subs.delete(s);
      if (this.welcome && s.userId) this.sendFrame({ type: "unsubscribe", stream: s.stream, user_id: s.userId });
    });
    for (const old of this.subs) {
      if (old.stream === sub.stream && old.userId === sub.userId) this.subs.delete(old);
    }
    this.subs.add(sub);
    if (this.welcome) this.sendFrame(sub.frame());
    return sub;
  }
  /** Closes the session for good; waiting promises reject, their batches stay stored. */
  close() {
    if (this.stopped) return;
    this.stop("closed");
    this.stoppedBy = new ClarityError("closed", "the client was closed; unacknowledged batches stay in the outbox storage");
    this.outbox.failAll(this.stoppedBy);
  }
  // ---- connection ------------------------------------------------------------------------
  async connect() {
    if (this.stopped) return;
    let token;
    try {
      token = this.needRefresh ? await this.tokens.refresh() : await this.tokens.get();
      this.needRefresh = false;
    } catch (e) {
      if (isAuthFailure(e)) return this.fail(toAuthError(e));
      return this.retry();
    }
    if (this.stopped) return;
    const ws = new this.WS(`${this.wsUrl}?access_token=${encodeURIComponent(token)}`);
    this.ws = ws;
    this.closeError = void 0;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(ev.code);
    };
    ws.onerror = () => {
      if (this.ws === ws) this.lost(1006);
    };
    this.later(HANDSHAKE_TIMEOUT_MS, () => {
      if (this.ws === ws && !this.isWelcomed) this.lost(1006);
    });
  }
  lost(code) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === OPEN) ws.close();
    }
    const welcomed = this.isWelcomed;
    this.isWelcomed = false;
    clearInterval(this.liveness);
    this.outbox.connectionLost();
    for (const s of this.subs) if (s.state === "live") s.state = "pending";
    if (this.stopped) return;
    if (code === CLOSE_LOGGED_OUT) {
      return this.fail(new AuthError(this.closeError ?? "logged_out", "this login was ended (logout, or the account was erased): sign in again"));
    }
    if (CLOSE_TOKEN.has(code)) this.needRefresh = true;
    this.setState("reconnecting");
    if (!welcomed) {
      this.rest.profile().then(
        () => this.retry(),
        (e) => isAuthFailure(e) ? this.fail(toAuthError(e)) : this.retry()
      );
      return;
    }
    this.retry();
  }
  retry() {
    if (this.stopped) return;
    this.setState("reconnecting");
    const delay = this.nextDelayMs ?? this.backoff.next();
    this.nextDelayMs = void 0;
    this.later(delay, () => this.connect());
  }
  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }
  stop(state) {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.liveness);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1e3);
    }
    this.setState(state);
  }
  fail(error) {
    if (this.stopped) return;
    this.stop("failed");
    this.stoppedBy = error;
    this.outbox.failAll(error);
    for (const s of this.subs) s.end(error);
    this.subs.clear();
    this.emit("error", error);
  }
  setState(state) {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.emit("state", state);
  }
  emit(event, ...args) {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        fn(...args);
      } catch (e) {
        console.error("ClarityClient listener failed:", e);
      }
    }
  }
  sendFrame(frame) {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(frame));
  }
  // Seconds without any frame: ask with a ping; two intervals: the connection is dead.
  watch(intervalMs) {
    clearInterval(this.liveness);
    this.lastFrameAt = Date.now();
    this.liveness = setInterval(() => {
      const quiet = Date.now() - this.lastFrameAt;
      if (quiet > 2 * intervalMs) this.lost(1006);
      else if (quiet > intervalMs / 2) this.sendFrame({ type: "ping" });
    }, intervalMs / 2);
  }
  // ---- frames ----------------------------------------------------------------------------
  onFrame(f) {
    switch (f.type) {
      case "welcome":
        this.welcome = f;
        this.isWelcomed = true;
        this.seq = 1;
        this.backoff.reset();
        this.watch(f.heartbeat_interval_ms || 3e4);
        this.setState("open");
        for (const s of this.subs) {
          s.userId ??= f.user_id;
          if (s.state !== "ended") this.sendFrame(s.frame());
        }
        this.pump();
        break;
      case "ack":
        this.onAck(f);
        break;
      case "error":
        this.onError(f);
        break;
      case "token_expiring":
        this.refreshInBand();
        break;
      case "going_away":
        this.nextDelayMs = f.reconnect_after_ms;
        break;
      case "subscribed":
        this.sub(f.stream, f.user_id)?.subscribed(f);
        break;
      case "lagged": {
        const s = this.sub(f.stream, f.user_id);
        if (s) this.sendFrame(s.frame());
        break;
      }
      case "unsubscribed":
        if (f.reason === "revoked") this.endSub(f.stream, f.user_id, "revoked");
        break;
      default: {
        const ev = f;
        if (typeof ev.stream === "string" && typeof ev.offset === "number") this.sub(ev.stream, ev.user_id)?.deliver(ev);
      }
    }
    this.emit("frame", f);
  }
  sub(stream, userId) {
    for (const s of this.subs) if (s.matches(stream, userId)) return s;
    return void 0;
  }
  endSub(stream, userId, reason) {
    const s = this.sub(stream, userId);
    if (!s) return;
    this.subs.delete(s);
    s.end(reason);
  }
  onAck(f) {
    this.outbox.acked(f).then(
      () => this.pump(),
      (e) => this.emit("error", new ClarityError("storage_failed", `the outbox storage failed: ${String(e)}`))
    );
  }
  onError(f) {
    const retryMs = f.retry_after_ms ?? 1e3;
    if (f.seq !== void 0 && this.outbox.inflight) {
      if (RETRY_CODES.has(f.code)) {
        if (this.outbox.retryLater(f.seq)) {
          this.pauseUntil = Math.max(this.pauseUntil, Date.now() + retryMs);
          this.pump();
          return;
        }
      } else {
        void this.outbox.refused(f.seq, new ClarityError(f.code, f.message)).then(() => this.pump());
        return;
      }
    }
    if (f.stream) {
      const userId = f.user_id ?? this.welcome?.user_id;
      const s = this.sub(f.stream, userId);
      if (s) {
        if (f.code === "store_unavailable") this.later(retryMs, () => this.sendFrame(s.frame()));
        else if (f.code === "resync_required") {
          s.resync();
          this.sendFrame(s.frame());
        } else this.endSub(f.stream, userId, new ClarityError(f.code, f.message));
        return;
      }
    }
    switch (f.code) {
      case "auth_unavailable":
        this.later(retryMs, () => this.refreshInBand());
        return;
      case "token_expired":
      case "auth_invalid":
      case "logged_out":
      case "account_erased":
        this.closeError = f.code;
        return;
      default:
        this.emit("error", new ClarityError(f.code, f.message, f.retry_after_ms));
    }
  }
  refreshInBand() {
    this.tokens.refresh().then(
      (token) => this.sendFrame({ type: "refresh", access_token: token }),
      (e) => {
        if (isAuthFailure(e)) this.fail(toAuthError(e));
      }
    );
  }
  // ---- sending ---------------------------------------------------------------------------
  batchSize() {
    const server = this.welcome?.limits.max_samples_per_frame ?? Infinity;
    return Math.max(1, Math.min(this.options.maxBatchSize ?? 1e3, server));
  }
  inflightLimit() {
    const server = this.welcome?.limits.max_inflight_batches ?? 1;
    return Math.max(1, Math.min(this.options.maxInFlight ?? 2, server));
  }
  pump() {
    const ws = this.ws;
    if (!ws || !this.isWelcomed || ws.readyState !== OPEN) return;
    const wait = this.pauseUntil - Date.now();
    if (wait > 0) {
      this.later(wait, () => this.pump());
      return;
    }
    while (this.outbox.inflight < this.inflightLimit()) {
      const entry = this.outbox.nextUnsent();
      if (!entry) break;
      const seq = this.seq++;
      this.outbox.markSent(entry, seq);
      const r = entry.record;
      const frame = r.op === "samples" ? { type: "samples", seq, samples: r.samples } : r.op === "series" ? { type: "series", seq, ...r.series } : { type: "delete", seq, ids: r.ids };
      ws.send(JSON.stringify(frame));
    }
  }
  async sum(parts, size) {
    const results = await Promise.all(parts);
    const total = emptyResult();
    results.forEach((r, i) => addResult(total, r, i * size));
    return total;
  }
};
function utcOffsetMs(time) {
  if (/z$/i.test(time)) return 0;
  const m = /([+-])(\d{2}):(\d{2})$/.exec(time);
  if (!m) return void 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 6e4;
}
function atOffset(utcMs, offsetMs) {
  if (offsetMs === 0) return new Date(utcMs).toISOString();
  const local = new Date(utcMs + offsetMs).toISOString().slice(0, -1);
  const abs = Math.abs(offsetMs) / 6e4;
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${local}${offsetMs < 0 ? "-" : "+"}${hh}:${mm}`;
}
function toAuthError(e) {
  if (e instanceof AuthError) return e;
  const c = e;
  return new AuthError(c.code ?? "unauthorized", c.message ?? String(e), c.status);
}
export {
  ApiError,
  AuthError,
  Backoff,
  ClarityClient,
  ClarityError,
  ClarityRest,
  IndexedDBStorage,
  MemoryStorage,
  SessionTokens,
  Subscription
};

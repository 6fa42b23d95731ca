import { ApiError, AuthError, apiError } from './errors.js';
import { baseUrl } from './tokens.js';
export class ClarityRest {
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
            if (v !== undefined)
                q.set(k, String(v));
        }
        const url = `${this.url}${path}${q.size ? `?${q}` : ''}`;
        const call = async (token) => {
            const headers = { accept: 'application/json', ...options.headers, authorization: `Bearer ${token}` };
            if (options.body !== undefined)
                headers['content-type'] = 'application/json';
            return this.fetch(url, {
                method,
                headers,
                body: options.body === undefined ? undefined : JSON.stringify(options.body),
                cache: 'no-store',
                credentials: 'omit',
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
        if (!resp.ok)
            throw await apiError(resp);
        return resp;
    }
    async json(method, path, options = {}) {
        const resp = await this.raw(method, path, options);
        if (resp.status === 204)
            return undefined;
        return (await resp.json());
    }
    async *pages(path, key, query) {
        let cursor;
        do {
            const body = await this.json('GET', path, { query: { ...query, cursor } });
            for (const item of body[key] ?? [])
                yield item;
            cursor = body.next_cursor ?? undefined;
        } while (cursor);
    }
    // ---- account ---------------------------------------------------------------------------
    profile() {
        return this.json('GET', '/api/v1/user/profile');
    }
    // ---- samples ---------------------------------------------------------------------------
    /** `POST /api/v1/health-data` (up to 10,000 samples); durable when it resolves. */
    upload(samples) {
        return this.json('POST', '/api/v1/health-data', { body: { samples } });
    }
    /** Every stored sample matching `query`, ordered by (start, id), page by page. */
    history(query = {}) {
        return this.pages('/api/v1/health-data', 'samples', { ...query });
    }
    deleteSamples(ids) {
        return this.json('POST', '/api/v1/health-data/delete', { body: { ids } });
    }
    /** `true` when deleted, `false` when it was not stored. */
    async deleteSample(id) {
        try {
            await this.raw('DELETE', `/api/v1/health-data/${encodeURIComponent(id)}`);
            return true;
        }
        catch (e) {
            if (e instanceof ApiError && e.status === 404)
                return false;
            throw e;
        }
    }
    /**
     * The change feed from `since` (a `next_token`; omitted or `"0"`: every current sample),
     * one page at a time until `more` is false. The last page's `next_token` is where to go on
     * later. A 410 `resync_required` means: start again from `"0"` and replace the local copy.
     */
    async *changes(since = '0', limit) {
        let token = since;
        for (;;) {
            const page = await this.json('GET', '/api/v1/changes', { query: { since: token, limit } });
            yield page;
            token = page.next_token;
            if (!page.more)
                return;
        }
    }
    // ---- analyses and insights -------------------------------------------------------------
    /** Analytics of the last week now (201 new, 200 unchanged); `no_data` without activity. */
    analyze() {
        return this.json('POST', '/api/v1/analyses');
    }
    analyses(query = {}) {
        const { userId, ...rest } = query;
        return this.pages('/api/v1/analyses', 'analyses', { ...rest, user_id: userId });
    }
    analysis(id, userId) {
        return this.json('GET', `/api/v1/analyses/${encodeURIComponent(id)}`, { query: { user_id: userId } });
    }
    createInsight() {
        return this.json('POST', '/api/v1/insights');
    }
    insights(query = {}) {
        const { userId, ...rest } = query;
        return this.pages('/api/v1/insights', 'insights', { ...rest, user_id: userId });
    }
    insight(id, userId) {
        return this.json('GET', `/api/v1/insights/${encodeURIComponent(id)}`, { query: { user_id: userId } });
    }
    // ---- shares ----------------------------------------------------------------------------
    shares() {
        return this.json('GET', '/api/v1/shares');
    }
    share(granteeEmail, scope) {
        return this.json('POST', '/api/v1/shares', { body: { grantee_email: granteeEmail, scope } });
    }
    async unshare(shareId) {
        await this.raw('DELETE', `/api/v1/shares/${encodeURIComponent(shareId)}`);
    }
    // ---- export ----------------------------------------------------------------------------
    /**
     * `GET /api/v1/export`: everything stored of the caller, one object per line (`profile`,
     * `sample`, `analysis`, `insight`, `share`, `audit`, then `end`), parsed as it streams. An
     * `error` line (the export broke off) throws.
     */
    async *export() {
        const resp = await this.raw('GET', '/api/v1/export', { headers: { accept: 'application/x-ndjson' } });
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let ended = false;
        for (;;) {
            const { value, done } = await reader.read();
            if (value)
                buf += value;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
                const line = buf.slice(0, nl).trim();
                buf = buf.slice(nl + 1);
                if (!line)
                    continue;
                const obj = JSON.parse(line);
                if (obj.type === 'error')
                    throw new ApiError(200, String(obj.code ?? 'export_failed'), String(obj.message ?? 'the export broke off'));
                if (obj.type === 'end')
                    ended = true;
                yield obj;
            }
            if (done)
                break;
        }
        if (!ended)
            throw new ApiError(200, 'export_incomplete', 'the export ended without its end line: download it again');
    }
}

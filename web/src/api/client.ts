// A small typed client of the hostpulse HTTP API. `fetch` and the token are injected so tests
// run it against a real server or a recorded transport.
import type { MetricKey } from '../gen/catalog'
import type { CurrentSnapshot, History, HistoryQuery, HostOut, ProcessesOut, SeriesOut } from './types'

/** One problem of a refused request body (FastAPI's 422 `detail` list). */
export interface FieldProblem {
  loc: (string | number)[]
  msg: string
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly path: string,
    /** The per-field problems of a 422, when the server listed them. */
    readonly problems: FieldProblem[] = [],
  ) {
    super(`${status} ${detail}`)
    this.name = 'ApiError'
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export interface ClientOptions {
  base?: string
  fetch?: FetchLike
  /** The access token to send as `Authorization: Bearer`, if any. */
  token?: () => string | null
  /** Called on a 401: may renew the token (true: retry once) or give up (false). */
  unauthorized?: () => Promise<boolean>
}

export interface UserOut {
  username: string
  role: 'admin' | 'editor' | 'viewer'
}

export interface TokensOut {
  access_token: string
  refresh_token: string
  token_type: string
  expires_in: number
  user: UserOut
}

const MAX_HISTORY_PAGES = 20

export class ApiClient {
  private readonly base: string
  private readonly fetchImpl: FetchLike
  private readonly token: () => string | null
  private readonly unauthorized: () => Promise<boolean>

  constructor(opts: ClientOptions = {}) {
    this.base = (opts.base ?? '').replace(/\/$/, '') + '/api/v1'
    this.fetchImpl = opts.fetch ?? ((i, init) => globalThis.fetch(i, init))
    this.token = opts.token ?? (() => null)
    this.unauthorized = opts.unauthorized ?? (async () => false)
  }

  get<T>(path: string, params?: URLSearchParams, signal?: AbortSignal): Promise<T> {
    const query = params && [...params.keys()].length ? `?${params.toString()}` : ''
    return this.request<T>('GET', path + query, undefined, signal)
  }

  post<T>(path: string, body: unknown, opts: { auth?: boolean } = {}): Promise<T> {
    return this.request<T>('POST', path, body, undefined, opts.auth ?? true)
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body)
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body)
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path, undefined)
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
    auth = true,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json' }
      if (body !== undefined) headers['content-type'] = 'application/json'
      const token = auth ? this.token() : null
      if (token) headers.authorization = `Bearer ${token}`
      let resp: Response
      try {
        resp = await this.fetchImpl(this.base + path, {
          method,
          headers,
          signal,
          body: body === undefined ? undefined : JSON.stringify(body),
        })
      } catch (err) {
        if ((err as Error).name === 'AbortError') throw err
        throw new ApiError(0, `network error: ${(err as Error).message}`, path)
      }
      if (resp.status === 401 && auth && attempt === 0 && (await this.unauthorized())) continue
      if (!resp.ok) throw await errorOf(resp, path)
      if (resp.status === 204) return undefined as T
      return (await resp.json()) as T
    }
  }

  login(username: string, password: string): Promise<TokensOut> {
    return this.post('/auth/login', { username, password }, { auth: false })
  }

  refresh(refreshToken: string): Promise<TokensOut> {
    return this.post('/auth/refresh', { refresh_token: refreshToken }, { auth: false })
  }

  logout(refreshToken: string): Promise<void> {
    return this.post('/auth/logout', { refresh_token: refreshToken }, { auth: false })
  }

  me(): Promise<UserOut> {
    return this.get('/auth/me')
  }

  hosts(signal?: AbortSignal): Promise<HostOut[]> {
    return this.get('/hosts', undefined, signal)
  }

  host(id: string, signal?: AbortSignal): Promise<HostOut> {
    return this.get(`/hosts/${enc(id)}`, undefined, signal)
  }

  current(id: string, signal?: AbortSignal): Promise<CurrentSnapshot> {
    return this.get(`/hosts/${enc(id)}/current`, undefined, signal)
  }

  processes(id: string, atMs?: number, signal?: AbortSignal): Promise<ProcessesOut> {
    const p = new URLSearchParams()
    if (atMs !== undefined) p.set('at', String(Math.round(atMs)))
    return this.get(`/hosts/${enc(id)}/processes`, p, signal)
  }

  /** The series (metric and labels) a host has stored; only `metric`'s when given. */
  series(id: string, metric?: string, signal?: AbortSignal): Promise<SeriesOut[]> {
    const p = new URLSearchParams()
    if (metric) p.set('metric', metric)
    return this.get(`/hosts/${enc(id)}/series`, p, signal)
  }

  /** Every page of a metric's history in [start, end] (pages joined per series); `metric` is a
   * catalog key or a custom metric (`custom:<name>`). */
  async history(id: string, metric: MetricKey | `custom:${string}`, q: HistoryQuery, signal?: AbortSignal): Promise<History> {
    const p = new URLSearchParams({ start: String(Math.round(q.start)), end: String(Math.round(q.end)) })
    if (q.step) p.set('step', `${Math.max(1, Math.round(q.step / 1000))}s`)
    if (q.agg) p.set('agg', q.agg)
    if (q.tier) p.set('tier', q.tier)
    for (const [k, v] of Object.entries(q.labels ?? {})) p.set(`label.${k}`, v)
    const path = `/hosts/${enc(id)}/metrics/${enc(metric)}/history`
    const first = await this.get<History>(path, p, signal)
    let cursor = first.next_cursor
    for (let page = 1; cursor && page < MAX_HISTORY_PAGES; page++) {
      p.set('cursor', cursor)
      const more = await this.get<History>(path, p, signal)
      for (const s of more.series) {
        const key = labelKey(s.labels)
        const into = first.series.find((x) => labelKey(x.labels) === key)
        if (into) into.points.push(...s.points)
        else first.series.push(s)
      }
      cursor = more.next_cursor
    }
    first.next_cursor = cursor
    return first
  }
}

export function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',')
}

function enc(s: string): string {
  return encodeURIComponent(s)
}

async function errorOf(resp: Response, path: string): Promise<ApiError> {
  const text = await resp.text()
  let detail = text.slice(0, 300) || resp.statusText
  let problems: FieldProblem[] = []
  try {
    const body = JSON.parse(text) as { detail?: unknown }
    if (typeof body.detail === 'string') detail = body.detail
    else if (Array.isArray(body.detail)) {
      problems = body.detail
        .filter((p): p is FieldProblem => typeof p === 'object' && p !== null && typeof p.msg === 'string')
        .map((p) => ({ loc: Array.isArray(p.loc) ? p.loc : [], msg: p.msg.replace(/^Value error, /, '') }))
      detail = problems.map((p) => `${p.loc.filter((x) => x !== 'body').join('.')}: ${p.msg}`).join('; ') || JSON.stringify(body.detail)
    } else if (body.detail !== undefined) detail = JSON.stringify(body.detail)
  } catch {
    /* not JSON: keep the text */
  }
  return new ApiError(resp.status, detail, path, problems)
}

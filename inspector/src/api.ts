/**
 * The kernel's public API as the page uses it: REST with `Authorization: Bearer <token>` and
 * WebSockets with `?token=`. The kernel's routes live beside the page: a page at
 * `<prefix>/inspector/` talks to `<prefix>/panels`, `<prefix>/processes`, …
 */

const TOKEN_KEY = 'workspace-kernel.inspector.token'

/** Route prefix of the kernel serving this page ('' or e.g. '/kernel'). */
export const base = location.pathname.replace(/\/inspector(\/.*)?$/, '')

/**
 * The token: a `?token=` in the page URL wins (it is moved to sessionStorage and removed from the
 * address bar so it does not end up in history or screenshots), else this tab's sessionStorage.
 */
export function initialToken(): string {
  const url = new URL(location.href)
  const fromUrl = url.searchParams.get('token')
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl)
    url.searchParams.delete('token')
    history.replaceState(null, '', url.pathname + url.search + url.hash)
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? ''
}

let token = ''

/** The token in use ('' = none). */
export const getToken = (): string => token

/** Use `t` for every later request ('' = none); kept in sessionStorage only, never localStorage. */
export function setToken(t: string): void {
  token = t
  if (t) sessionStorage.setItem(TOKEN_KEY, t)
  else sessionStorage.removeItem(TOKEN_KEY)
}

/** A kernel error reply `{ statusCode, code, error, message, details? }`, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
  }
}

/** Listeners told when any request answers 401, so the app can show the token screen. */
export const unauthorized = new Set<(e: ApiError) => void>()

/**
 * `fetch` of a kernel route; resolves to the parsed JSON (or text) body of a 2xx reply.
 * @throws ApiError with the kernel's code and message otherwise (status 0 when the kernel is unreachable).
 */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch (err) {
    throw new ApiError(0, 'NETWORK_ERROR', `kernel unreachable: ${(err as Error).message}`)
  }
  const text = await res.text()
  const isJson = res.headers.get('content-type')?.includes('json') ?? false
  const parsed: unknown = isJson && text ? JSON.parse(text) : text
  if (res.ok) return parsed as T
  const e = (isJson ? parsed : {}) as { code?: string; message?: string; details?: unknown }
  const error = new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (text || res.statusText), e.details)
  if (res.status === 401) for (const fn of unauthorized) fn(error)
  throw error
}

/** A WebSocket URL of a kernel route, with `?token=` when the page has one; `query` adds parameters. */
export function wsUrl(path: string, query: Record<string, string> = {}): string {
  const url = new URL(base + path, location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  if (token) url.searchParams.set('token', token)
  return url.toString()
}

/** `encodeURIComponent` for path segments (panel ids, worker ids). */
export const seg = encodeURIComponent

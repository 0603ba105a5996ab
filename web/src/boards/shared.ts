// Widgets of one board often read the same thing (a stat, a gauge and bars: the same hosts'
// current values; two widgets of one metric: the same history): one request per key, shared by
// every widget that asks while it is kept. Keys carry the range, so a refresh asks again.
const MAX_ENTRIES = 500
const cache = new Map<string, Promise<unknown>>()

export function shared<T>(key: string, fetch: () => Promise<T>): Promise<T> {
  const hit = cache.get(key) as Promise<T> | undefined
  if (hit) return hit
  const p = fetch()
  cache.set(key, p)
  p.catch(() => cache.delete(key)) // a failure is not kept: the next refresh tries again
  while (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value as string)
  return p
}

/** Forget everything (tests). */
export function forgetShared(): void {
  cache.clear()
}

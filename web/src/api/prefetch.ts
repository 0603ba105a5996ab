// The requests public/prefetch.js (loaded by index.html) starts before the app's code has loaded.
import type { HostOut } from './types'

declare global {
  interface Window {
    __hpHosts?: Promise<Response | null>
    __hpBoard?: { id: string; resp: Promise<Response | null> }
  }
}

async function body<T>(pending: Promise<Response | null>): Promise<T | null> {
  const resp = await pending
  if (!resp || !resp.ok) return null
  try {
    return (await resp.json()) as T
  } catch {
    return null
  }
}

/** The prefetched host list, once; null when there is none or it failed (ask normally). */
export async function takePrefetchedHosts(): Promise<HostOut[] | null> {
  const pending = typeof window === 'undefined' ? undefined : window.__hpHosts
  if (!pending) return null
  window.__hpHosts = undefined
  return body<HostOut[]>(pending)
}

/** The prefetched board `id` (`GET /dashboards/{id}`), once; null when there is none, it is
 *  another board's or it failed (ask normally). */
export async function takePrefetchedBoard<T>(id: string): Promise<T | null> {
  const pending = typeof window === 'undefined' ? undefined : window.__hpBoard
  if (!pending) return null
  window.__hpBoard = undefined
  return pending.id === id ? body<T>(pending.resp) : null
}

// The host list request index.html starts before the app's code has loaded.
import type { HostOut } from './types'

declare global {
  interface Window {
    __hpHosts?: Promise<Response | null>
  }
}

/** The prefetched host list, once; null when there is none or it failed (ask normally). */
export async function takePrefetchedHosts(): Promise<HostOut[] | null> {
  const pending = typeof window === 'undefined' ? undefined : window.__hpHosts
  if (!pending) return null
  window.__hpHosts = undefined
  const resp = await pending
  if (!resp || !resp.ok) return null
  return (await resp.json()) as HostOut[]
}

// A host's status by the server's rule. The server sends the rule with every host
// (`online_within_seconds`, `stale_within_seconds`: its online/stale factors times the host's
// interval); the dashboard only re-applies it as time passes and live samples arrive, so a
// changed server setting changes the dashboard too.
import type { HostOut, HostStatus } from '../api/types'

export type Status = HostStatus

export function statusOf(
  host: Pick<HostOut, 'status' | 'last_seen_ms'> & Partial<Pick<HostOut, 'online_within_seconds' | 'stale_within_seconds'>>,
  lastMs: number,
  nowMs: number,
): Status {
  const online = host.online_within_seconds
  const stale = host.stale_within_seconds
  if (online === undefined || stale === undefined) {
    // a server without the rule: its own answer, or online when a sample came since
    return lastMs > host.last_seen_ms ? 'online' : host.status
  }
  if (lastMs <= 0) return 'offline'
  const age = nowMs - lastMs
  if (age <= online * 1000) return 'online'
  if (age <= stale * 1000) return 'stale'
  return 'offline'
}

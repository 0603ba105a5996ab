// Number formatting for cards, tables and axes.
const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB']

export function bytes(n: number | undefined | null, digits = 1): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–'
  let v = Math.abs(n)
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return `${n < 0 ? '-' : ''}${v.toFixed(u === 0 ? 0 : digits)} ${UNITS[u]}`
}

export function rate(n: number | undefined | null): string {
  return n === undefined || n === null || !Number.isFinite(n) ? '–' : `${bytes(n)}/s`
}

export function pct(n: number | undefined | null, digits = 1): string {
  return n === undefined || n === null || !Number.isFinite(n) ? '–' : `${n.toFixed(digits)} %`
}

export function num(n: number | undefined | null, digits = 2): string {
  return n === undefined || n === null || !Number.isFinite(n) ? '–' : n.toFixed(digits)
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d) return `${d}d ${h}h`
  if (h) return `${h}h ${m}m`
  return `${m}m ${s % 60}s`
}

export type Status = 'online' | 'stale' | 'offline'

/** Same rule as the server: online within 2 intervals, stale within 10, else offline. */
export function statusOf(lastMs: number, intervalS: number, nowMs: number): Status {
  const iv = Math.max(intervalS, 1) * 1000
  const age = nowMs - lastMs
  if (age <= 2 * iv + 1000) return 'online'
  if (age <= 10 * iv) return 'stale'
  return 'offline'
}

/** A compact byte rate for tight spaces: 73.6M (bytes per second). */
export function rateShort(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–'
  return bytes(n).replace(/ ([KMGTP]?)B$/, '$1')
}

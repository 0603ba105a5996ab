// Durations as the alerts schema reads them: seconds, or text like "30s", "2m", "1h30m".
const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

/** Seconds, or null when the text is not a duration. */
export function parseDuration(text: string | number): number | null {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : null
  const s = text.replace(/\s+/g, '')
  if (!s) return null
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s)
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y
  let total = 0
  let pos = 0
  while (pos < s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (!m) return null
    total += Number(m[1]) * UNITS[m[2]]
    pos = re.lastIndex
  }
  return total
}

/** 5400 -> "1h30m", 0 -> "0s". */
export function formatDuration(seconds: number): string {
  if (!seconds) return '0s'
  let rest = Math.round(seconds)
  const parts: string[] = []
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n) parts.push(`${n}${unit}`)
    rest -= n * size
  }
  return parts.join('') || `${seconds}s`
}

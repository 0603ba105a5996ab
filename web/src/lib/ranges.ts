// The history range picker's ranges and the step that keeps a chart to a few hundred points.
export type RangeKey = '15m' | '1h' | '6h' | '24h' | '7d' | '30d' | '1y'

export const RANGES: Record<RangeKey, number> = {
  '15m': 15 * 60e3,
  '1h': 3600e3,
  '6h': 6 * 3600e3,
  '24h': 86400e3,
  '7d': 7 * 86400e3,
  '30d': 30 * 86400e3,
  '1y': 365 * 86400e3,
}

export const MAX_POINTS = 720

/** Step (ms) for about MAX_POINTS points; up to 1 h of range the server's raw points are used. */
export function stepFor(spanMs: number): number | undefined {
  if (spanMs <= 3600e3) return undefined
  return Math.ceil(spanMs / MAX_POINTS / 1000) * 1000
}

export function stepText(ms: number): string {
  if (ms >= 86400e3 && ms % 86400e3 === 0) return `${ms / 86400e3}d`
  if (ms >= 3600e3 && ms % 3600e3 === 0) return `${ms / 3600e3}h`
  if (ms >= 60e3 && ms % 60e3 === 0) return `${ms / 60e3}m`
  return `${Math.round(ms / 1000)}s`
}

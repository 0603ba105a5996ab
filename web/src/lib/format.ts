// Number formatting for cards, tables, axes and legends: the same units as the CLI
// (src/hostpulse/cli/fmt.py). Bytes are counted in powers of 1024 and labelled as such (KiB, MiB,
// GiB): a value divided by 1024 labelled "MB" is off by 5 % at MiB and 10 % at TiB.
import type { MetricKey, Unit } from '../gen/catalog'
import { METRICS } from '../gen/catalog'

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

type Num = number | undefined | null
const bad = (n: Num): n is undefined | null => n === undefined || n === null || !Number.isFinite(n)

export function bytes(n: Num, digits = 1): string {
  if (bad(n)) return '–'
  let v = Math.abs(n)
  let u = 0
  while (v >= 1024 && u < IEC.length - 1) {
    v /= 1024
    u++
  }
  return `${n < 0 ? '-' : ''}${v.toFixed(u === 0 ? 0 : digits)} ${IEC[u]}`
}

export function rate(n: Num): string {
  return bad(n) ? '–' : `${bytes(n)}/s`
}

export function pct(n: Num, digits = 1): string {
  return bad(n) ? '–' : `${n.toFixed(digits)} %`
}

export function num(n: Num, digits = 2): string {
  return bad(n) ? '–' : n.toFixed(digits)
}

/** A value in its catalog unit, as the CLI prints it (`hostpulse top`, `hostpulse query`). */
export function human(n: Num, unit: Unit | 'plain'): string {
  if (bad(n)) return '–'
  switch (unit) {
    case 'bytes':
      return bytes(n)
    case 'bytes_per_second':
      return rate(n)
    case 'percent':
      return pct(n)
    case 'seconds':
      return n !== 0 && Math.abs(n) < 1 ? `${(n * 1000).toFixed(2)} ms` : `${grouped(n, 1)} s`
    case 'per_second':
      return `${grouped(n, 1)}/s`
    case 'hertz':
      return `${grouped(n / 1e6, 0)} MHz`
    default:
      return Number.isInteger(n) ? grouped(n, 0) : grouped(n, 2)
  }
}

function grouped(n: number, digits: number): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export const unitOf = (key: MetricKey): Unit => METRICS[key].unit

/** Tick steps on round values in the unit: powers of 1024 times 1-2-5 for bytes (so a tick
 * reads "512 KiB" or "2 MiB", never "976.6 KB"), 1-2-5 times powers of ten otherwise. */
export function axisIncrs(unit: Unit | 'plain'): number[] {
  const out: number[] = []
  if (unit === 'bytes' || unit === 'bytes_per_second') {
    for (let p = 0; p <= 5; p++) for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) out.push(m * 1024 ** p)
    return out
  }
  for (let e = -3; e <= 15; e++) for (const m of [1, 2, 5]) out.push(Number((m * 10 ** e).toPrecision(3)))
  return out
}

/** An axis tick label: like `human` but without needless decimals ("2 MiB/s", "50 %"). */
export function tick(n: number, unit: Unit | 'plain'): string {
  if (unit === 'percent') return `${trim(n)} %`
  if (unit === 'bytes' || unit === 'bytes_per_second') {
    let v = Math.abs(n)
    let u = 0
    while (v >= 1024 && u < IEC.length - 1) {
      v /= 1024
      u++
    }
    return `${n < 0 ? '-' : ''}${trim(v)} ${IEC[u]}${unit === 'bytes_per_second' ? '/s' : ''}`
  }
  if (unit === 'seconds') return n !== 0 && Math.abs(n) < 1 ? `${trim(n * 1000)} ms` : `${trim(n)} s`
  if (unit === 'per_second') return `${trim(n)}/s`
  if (unit === 'hertz') return `${trim(n / 1e6)} MHz`
  return trim(n)
}

function trim(n: number): string {
  return String(Number(n.toFixed(2)))
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

/** A byte rate for tight spaces, unit kept: "73.6MiB/s". */
export function rateShort(n: Num): string {
  return bad(n) ? '–' : rate(n).replace(' ', '')
}

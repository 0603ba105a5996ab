import { describe, expect, it } from 'vitest'
import { bytes, duration, pct, rateShort, statusOf } from './format'

describe('format', () => {
  it('formats sizes, rates, percents and durations', () => {
    expect(bytes(0)).toBe('0 B')
    expect(bytes(1536)).toBe('1.5 KB')
    expect(bytes(5 * 2 ** 30)).toBe('5.0 GB')
    expect(rateShort(73.6 * 2 ** 20)).toBe('73.6M')
    expect(rateShort(undefined)).toBe('–')
    expect(pct(12.345)).toBe('12.3 %')
    expect(pct(Number.NaN)).toBe('–')
    expect(duration(90061)).toBe('1d 1h')
    expect(duration(59)).toBe('0m 59s')
  })

  it('decides status like the server (2 and 10 intervals)', () => {
    expect(statusOf(10_000, 5, 20_000)).toBe('online')
    expect(statusOf(10_000, 5, 40_000)).toBe('stale')
    expect(statusOf(10_000, 5, 61_000)).toBe('offline')
  })
})

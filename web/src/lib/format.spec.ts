import { describe, expect, it } from 'vitest'
import { axisIncrs, bytes, duration, human, pct, rate, rateShort, tick } from './format'
import { statusOf } from './status'

describe('format', () => {
  it('formats sizes in IEC units like the CLI (value / 1024 is KiB, not KB)', () => {
    expect(bytes(0)).toBe('0 B')
    expect(bytes(1536)).toBe('1.5 KiB')
    expect(bytes(5 * 2 ** 30)).toBe('5.0 GiB')
    expect(rate(2 * 2 ** 20)).toBe('2.0 MiB/s')
    expect(rateShort(73.6 * 2 ** 20)).toBe('73.6MiB/s')
    expect(rateShort(undefined)).toBe('–')
    expect(pct(12.345)).toBe('12.3 %')
    expect(pct(Number.NaN)).toBe('–')
    expect(duration(90061)).toBe('1d 1h')
    expect(duration(59)).toBe('0m 59s')
  })

  it('formats each catalog unit as src/hostpulse/cli/fmt.py does', () => {
    expect(human(252 * 2 ** 30, 'bytes')).toBe('252.0 GiB')
    expect(human(1024, 'bytes_per_second')).toBe('1.0 KiB/s')
    expect(human(0.0042, 'seconds')).toBe('4.20 ms')
    expect(human(12, 'seconds')).toBe('12.0 s')
    expect(human(1234.5, 'per_second')).toBe('1,234.5/s')
    expect(human(2.4e9, 'hertz')).toBe('2,400 MHz')
    expect(human(42, '')).toBe('42')
    expect(human(0.5, '')).toBe('0.50')
    expect(human(null, 'bytes')).toBe('–')
  })

  it('puts byte-axis ticks on round binary values', () => {
    const incrs = axisIncrs('bytes_per_second')
    expect(incrs).toContain(512 * 1024)
    expect(incrs).toContain(2 * 1024 ** 2)
    expect(incrs).not.toContain(1e6)
    expect(tick(512 * 1024, 'bytes_per_second')).toBe('512 KiB/s')
    expect(tick(2 * 1024 ** 2, 'bytes_per_second')).toBe('2 MiB/s')
    expect(tick(50, 'percent')).toBe('50 %')
    expect(axisIncrs('plain')).toContain(0.5)
  })
})

describe('status', () => {
  const host = { status: 'online' as const, last_seen_ms: 10_000, online_within_seconds: 10, stale_within_seconds: 50 }

  it("applies the server's rule (its factors times the interval), not thresholds of its own", () => {
    expect(statusOf(host, 10_000, 20_000)).toBe('online')
    expect(statusOf(host, 10_000, 40_000)).toBe('stale')
    expect(statusOf(host, 10_000, 61_000)).toBe('offline')
    // a server configured with other factors: the same age is still online
    expect(statusOf({ ...host, online_within_seconds: 60, stale_within_seconds: 600 }, 10_000, 61_000)).toBe('online')
    expect(statusOf(host, 0, 1_000)).toBe('offline')
  })

  it("keeps the server's answer when it sends no rule, unless a newer sample came", () => {
    const old = { status: 'offline' as const, last_seen_ms: 10_000 }
    expect(statusOf(old, 10_000, 99_000)).toBe('offline')
    expect(statusOf(old, 12_000, 99_000)).toBe('online')
  })
})

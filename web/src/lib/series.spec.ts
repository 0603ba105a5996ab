import { describe, expect, it } from 'vitest'
import { batch } from '../test/frames'
import { align, isLoopback, SeriesBuffer, seriesKey } from './series'

describe('SeriesBuffer', () => {
  it('reads HostBatch frames by series definition', () => {
    const b = new SeriesBuffer()
    const n = b.addBatch(
      batch(
        'h',
        [
          [1000, { cpu_busy_percent: 10, 'network_receive_bytes_per_second#eth0': 100, 'network_receive_bytes_per_second#lo': 5 }],
          [2000, { cpu_busy_percent: 20, 'network_receive_bytes_per_second#eth0': 300 }],
        ],
        { 'network_receive_bytes_per_second#eth0': { interface: 'eth0' }, 'network_receive_bytes_per_second#lo': { interface: 'lo' } },
      ),
    )
    expect(n).toBe(5)
    expect(b.get('cpu_busy_percent')?.v).toEqual([10, 20])
    expect(b.latest('network_receive_bytes_per_second', { interface: 'eth0' })).toBe(300)
    expect(b.sum('network_receive_bytes_per_second', isLoopback)).toMatchObject({ ts: [1000, 2000], v: [100, 300] })
    expect(b.sum('network_receive_bytes_per_second').v).toEqual([105, 300])
    expect(b.lastTs).toBe(2000)
  })

  it('merges back-filled points in time order and replaces duplicates', () => {
    const b = new SeriesBuffer()
    b.add('cpu_load1', {}, 1000, 1)
    b.add('cpu_load1', {}, 4000, 4)
    b.add('cpu_load1', {}, 2000, 2) // a gap filled after a reconnect
    b.add('cpu_load1', {}, 4000, 40) // the same sample again (at-least-once)
    b.add('cpu_load1', {}, 3000, 3)
    expect(b.get('cpu_load1')).toMatchObject({ ts: [1000, 2000, 3000, 4000], v: [1, 2, 3, 40] })
  })

  it('keeps at most cap points per series', () => {
    const b = new SeriesBuffer(3)
    for (let i = 1; i <= 5; i++) b.add('cpu_load1', {}, i, i)
    expect(b.get('cpu_load1')?.v).toEqual([3, 4, 5])
  })

  it('keys series by metric and sorted labels', () => {
    expect(seriesKey('m', { b: '2', a: '1' })).toBe('m{a=1,b=2}')
    expect(seriesKey('m', {})).toBe('m')
  })
})

describe('align', () => {
  it('puts series on one time axis with nulls for gaps', () => {
    const out = align(
      [
        { metric: 'a', labels: {}, ts: [1, 2, 3], v: [10, 20, 30] },
        { metric: 'b', labels: {}, ts: [2, 4], v: [200, 400] },
      ],
      2,
    )
    expect(out.ts).toEqual([2, 3, 4])
    expect(out.values).toEqual([
      [20, 30, null],
      [200, null, 400],
    ])
  })
})

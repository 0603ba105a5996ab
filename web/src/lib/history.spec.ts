import { describe, expect, it } from 'vitest'
import type { History } from '../api/types'
import { chartData, HISTORY, HISTORY_METRICS } from './history'
import { isolated, withGaps } from './series'

const pt = (ts: number, value: number) => ({ ts_ms: ts, value, min: value - 1, max: value + 1, count: 1 })
function hist(metric: string, series: [Record<string, string>, [number, number][]][]): History {
  return {
    host_id: 'h', metric, start_ms: 0, end_ms: 0, agg: 'avg', tier: '1m', step_ms: 60_000, next_cursor: null,
    series: series.map(([labels, pts]) => ({ metric, labels, points: pts.map(([t, v]) => pt(t, v)) })),
  }
}
const spec = (id: string) => HISTORY.find((s) => s.id === id)!
const name = (k: number) => `m${k}`

describe('history charts', () => {
  it('cover every metric group of the host page', () => {
    expect(HISTORY.map((s) => s.id)).toEqual(
      expect.arrayContaining(['cpu', 'memory', 'cores', 'load', 'network', 'disk', 'fs', 'diskBusy', 'swap', 'tcp', 'procs']),
    )
    expect(new Set(HISTORY_METRICS).size).toBe(HISTORY_METRICS.length)
  })

  it('draw one metric as a value with its min/max band', () => {
    const d = chartData(spec('cpu'), new Map([['cpu_busy_percent', hist('cpu_busy_percent', [[{}, [[1000, 5], [2000, 7]]]])]]), null, name)
    expect(d.ts).toEqual([1000, 2000])
    expect(d.values).toEqual([[5, 7], [6, 8], [4, 6]])
    expect(d.bands).toEqual([[1, 2]])
    expect(d.columns.map((c) => !!c.edge)).toEqual([false, true, true])
  })

  it('sum interfaces (without loopback) until one is picked, which then gets its band', () => {
    const rx = hist('network_receive_bytes_per_second', [
      [{ interface: 'eth0' }, [[1000, 10]]],
      [{ interface: 'eth1' }, [[1000, 5]]],
      [{ interface: 'lo' }, [[1000, 999]]],
    ])
    const m = new Map([['network_receive_bytes_per_second', rx]])
    const all = chartData(spec('network'), m, null, name)
    expect(all.options).toEqual(['eth0', 'eth1'])
    expect(all.values[0]).toEqual([15])
    expect(all.bands).toEqual([])
    const one = chartData(spec('network'), m, 'eth1', name)
    expect(one.values.slice(0, 3)).toEqual([[5], [6], [4]])
    expect(one.bands).toEqual([[1, 2]])
  })

  it('draw a line per label value in natural order when not summed', () => {
    const cores = hist('cpu_core_busy_percent', [[{ cpu: '10' }, [[1000, 1]]], [{ cpu: '2' }, [[1000, 2]]]])
    const d = chartData(spec('cores'), new Map([['cpu_core_busy_percent', cores]]), null, name)
    expect(d.columns.map((c) => c.label)).toEqual(['2', '10'])
  })
})

describe('gaps', () => {
  it('break the line where points are more than 2.5 steps apart', () => {
    const g = withGaps({ ts: [0, 1000, 2000, 60_000, 61_000], values: [[1, 2, 3, 4, 5]] }, 1000)
    expect(g.ts).toEqual([0, 1000, 2000, 3000, 60_000, 61_000])
    expect(g.values[0]).toEqual([1, 2, 3, null, 4, 5])
    expect(withGaps({ ts: [0, 2000], values: [[1, 2]] }, 1000).ts).toEqual([0, 2000])
  })

  it('mark lone points so a single sample is drawn', () => {
    expect(isolated([5])).toEqual([0])
    expect(isolated([1, null, 3, 4, null, 6])).toEqual([0, 5])
    expect(isolated([null, null])).toEqual([])
  })
})

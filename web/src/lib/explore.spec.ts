import { describe, expect, it } from 'vitest'
import type { History } from '../api/types'
import { exploreChart, exploreQuery, MAX_HOSTS, parseExplore } from './explore'

function hist(metric: string, series: [Record<string, string>, [number, number][]][], step = 60_000): History {
  return {
    host_id: 'x', metric, start_ms: 0, end_ms: 1, agg: 'avg', tier: '1m', step_ms: step, next_cursor: null,
    series: series.map(([labels, pts]) => ({ metric, labels, points: pts.map(([ts_ms, value]) => ({ ts_ms, value, min: value, max: value, count: 1 })) })),
  }
}

describe('explorer URL state', () => {
  it('round-trips every field through the query, defaults left out', () => {
    const q = { metric: 'disk_read_bytes_per_second', hosts: 'a,b,c', from: '1000', to: '5000', step: '60000', agg: 'max', combine: 'sum', 'label.device': 'sda' }
    const s = parseExplore(q)
    expect(s).toEqual({ metric: 'disk_read_bytes_per_second', hosts: ['a', 'b', 'c'], range: '1h', span: [1000, 5000], step: 60000, agg: 'max', combine: 'sum', labels: { device: 'sda' } })
    expect(exploreQuery(s)).toEqual(q)
    expect(exploreQuery(parseExplore({}))).toEqual({})
    expect(exploreQuery(parseExplore({ range: '7d', metric: 'custom:queue_depth' }))).toEqual({ range: '7d', metric: 'custom:queue_depth' })
  })

  it('drops what is not valid instead of failing', () => {
    const s = parseExplore({ metric: 'rm -rf', range: '2w', agg: 'median', combine: 'p99', step: '5', from: '9', to: '3', hosts: 'a,a,,b' })
    expect(s).toMatchObject({ metric: '', range: '1h', agg: 'avg', combine: 'none', step: null, span: null, hosts: ['a', 'b'] })
    expect(parseExplore({ metric: 'system_info' }).metric).toBe('') // an info metric has no values to chart
    const many = Array.from({ length: 40 }, (_, i) => `h${i}`).join(',')
    expect(parseExplore({ hosts: many }).hosts).toHaveLength(MAX_HOSTS)
  })
})

describe('explorer chart', () => {
  it('draws a line per host and series, named by hostname and label values', () => {
    const c = exploreChart(
      [
        { host: 'a', name: 'alpha', history: hist('disk_busy_percent', [[{ device: 'sdb' }, [[0, 1]]], [{ device: 'sda' }, [[0, 2], [60_000, 3]]]]) },
        { host: 'b', name: 'beta', history: hist('disk_busy_percent', [[{ device: 'sda' }, [[60_000, 9]]]]) },
        { host: 'c', name: 'gamma', history: null },
      ],
      'none',
    )
    expect(c.labels).toEqual(['alpha sda', 'alpha sdb', 'beta sda'])
    expect(c.ts).toEqual([0, 60_000])
    expect(c.values).toEqual([[2, 3], [1, null], [null, 9]])
    expect(c.stepMs).toBe(60_000)
  })

  it('combines a host\'s series by sum, avg, max or min per timestamp', () => {
    const h = hist('network_receive_bytes_per_second', [[{ interface: 'eth0' }, [[0, 10], [1, 30]]], [{ interface: 'eth1' }, [[0, 5]]]])
    const of = (how: 'sum' | 'avg' | 'max' | 'min') => exploreChart([{ host: 'a', name: 'alpha', history: h }], how)
    expect(of('sum').values).toEqual([[15, 30]])
    expect(of('sum').labels).toEqual(['alpha (sum)'])
    expect(of('avg').values).toEqual([[7.5, 30]])
    expect(of('max').values).toEqual([[10, 30]])
    expect(of('min').values).toEqual([[5, 30]])
  })

  it('leaves out lines past the limit and counts them', () => {
    const series: [Record<string, string>, [number, number][]][] = Array.from({ length: 70 }, (_, i) => [{ cpu: String(i) }, [[0, i]]])
    const c = exploreChart([{ host: 'a', name: 'alpha', history: hist('cpu_core_busy_percent', series) }], 'none')
    expect(c.labels).toHaveLength(60)
    expect(c.dropped).toBe(10)
    expect(c.labels.slice(0, 3)).toEqual(['alpha 0', 'alpha 1', 'alpha 2'])
  })
})

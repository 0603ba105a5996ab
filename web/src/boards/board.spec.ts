import { describe, expect, it } from 'vitest'
import type { Value } from '../api/types'
import type { BoardSpec, Widget } from './api'
import { combine, fileName, FLEET_HOSTS, freshId, hostsOf, ImportError, newWidget, readBoardFile, titleOf, variableValues } from './board'
import { filterText, items, lines, matchesLabels, parseFilter, rows } from './data'
import { toColumns } from './shared'

const spec: BoardSpec = {
  range_s: 3600,
  variables: [{ name: 'host', type: 'host', default: null }],
  widgets: [{ id: 'timeseries-1', type: 'timeseries', title: '', x: 0, y: 0, w: 6, h: 4, metric: 'cpu_busy_percent', host: '$host' }],
}
const w = (host: string | null): Widget => ({ ...spec.widgets[0], host })
const name = (id: string) => `name-of-${id}`

describe('board variables', () => {
  it('take the URL first, then the default, then the first host', () => {
    expect(variableValues(spec.variables, { 'var-host': 'b' }, ['a', 'b'])).toEqual({ host: 'b' })
    expect(variableValues([{ name: 'host', type: 'host', default: 'c' }], {}, ['a'])).toEqual({ host: 'c' })
    expect(variableValues(spec.variables, {}, ['a', 'b'])).toEqual({ host: 'a' })
    expect(variableValues(spec.variables, {}, [])).toEqual({ host: null })
  })

  it('decide which hosts a widget reads', () => {
    const fleet = Array.from({ length: 15 }, (_, i) => `h${i}`)
    expect(hostsOf(w('$host'), { host: 'h3' }, fleet)).toEqual(['h3'])
    expect(hostsOf(w('$host'), { host: null }, fleet)).toEqual([])
    expect(hostsOf(w('h9'), {}, fleet)).toEqual(['h9'])
    expect(hostsOf(w(null), {}, fleet)).toHaveLength(FLEET_HOSTS)
  })
})

describe('new widgets', () => {
  it('go to the first free place, use the board variable, and get fresh ids', () => {
    const nw = newWidget(spec, 'gauge', freshId(spec, 'gauge'))
    expect(nw).toMatchObject({ id: 'gauge-1', x: 6, y: 0, w: 3, host: '$host', metric: 'memory_usage_percent', max: 100 })
    expect(freshId(spec, 'timeseries')).toBe('timeseries-2')
    expect(newWidget(spec, 'hosts', 'h').host).toBeNull()
    expect(newWidget(spec, 'alerts', 'a').metric).toBeNull()
    expect(titleOf(nw)).toBe('memory_usage_percent')
  })
})

describe('import files', () => {
  it('accept an exported board and say what is wrong with anything else', () => {
    const doc = { hostpulse_dashboard: 1, name: 'x', spec }
    expect(readBoardFile(JSON.stringify(doc)).spec).toEqual(spec)
    expect(() => readBoardFile('{')).toThrow(ImportError)
    expect(() => readBoardFile('{"name": "x"}')).toThrow(/hostpulse dashboard file/)
    expect(() => readBoardFile('{"hostpulse_dashboard": 1, "name": " ", "spec": {}}')).toThrow(/names no/)
    expect(() => readBoardFile('{"hostpulse_dashboard": 1, "name": "y", "spec": {}}')).toThrow(/widgets/)
    expect(fileName('Web tier / prod')).toBe('web-tier-prod.hostpulse.json')
    expect(fileName('웹')).toBe('dashboard.hostpulse.json')
  })
})

const pts = (...v: [number, number][]) => v.map(([ts_ms, value]) => ({ ts_ms, value, min: value - 1, max: value + 1, count: 1 }))
const hist = (metric: string, series: { labels: Record<string, string>; points: ReturnType<typeof pts> }[]) => toColumns({
  host_id: 'x', metric, start_ms: 0, end_ms: 10, agg: 'avg' as const, tier: 'raw' as const, step_ms: 5, next_cursor: null,
  series: series.map((s) => ({ metric, ...s })),
})

describe('widget data', () => {
  const net = hist('network_receive_bytes_per_second', [
    { labels: { interface: 'eth0' }, points: pts([0, 10], [5, 20]) },
    { labels: { interface: 'eth1' }, points: pts([0, 1], [5, 2]) },
    { labels: { interface: 'lo' }, points: pts([0, 1000]) },
  ])

  it('one host: a line per series, loopback left out unless asked for', () => {
    const l = lines([{ host: 'a', history: net }], {}, 'bytes_per_second', name)
    expect(l.names).toEqual(['eth0', 'eth1'])
    expect(l.values).toEqual([[10, 20], [1, 2]])
    expect(lines([{ host: 'a', history: net }], { interface: 'lo' }, 'bytes_per_second', name).names).toEqual(['lo'])
  })

  it('several hosts: a line per host, rates summed and percentages averaged', () => {
    const l = lines([{ host: 'a', history: net }, { host: 'b', history: null }], {}, 'bytes_per_second', name)
    expect(l.names).toEqual(['name-of-a', 'name-of-b'])
    expect(l.values[0]).toEqual([11, 22])
    // hosts sampling at their own instants share a grid of the step (else every line is dots)
    const other = hist('network_receive_bytes_per_second', [{ labels: { interface: 'eth0' }, points: pts([1, 4], [4, 6], [6, 8]) }])
    const grid = lines([{ host: 'a', history: net }, { host: 'b', history: other }], {}, 'bytes_per_second', name, 5)
    expect(grid.ts).toEqual([0, 5])
    expect(grid.values).toEqual([[11, 22], [4, 7]])
    // a host of one series already on the grid is its line as it is
    const one = hist('cpu_busy_percent', [{ labels: {}, points: pts([1, 30], [6, 50]) }])
    const both = lines([{ host: 'a', history: one }, { host: 'b', history: other }], {}, 'percent', name, 5)
    expect(both.ts).toEqual([0, 5])
    expect(both.values).toEqual([[30, 50], [4, 7]])
    expect(combine([10, 30], 'percent')).toBe(20)
    expect(combine([10, 30], 'bytes')).toBe(40)
    expect(combine([], 'percent')).toBeUndefined()
  })

  it('bars and table rows', () => {
    const values: Value[] = [
      { metric: 'filesystem_usage_percent', labels: { mountpoint: '/' }, ts_ms: 1, value: 40 },
      { metric: 'filesystem_usage_percent', labels: { mountpoint: '/home' }, ts_ms: 1, value: 80 },
      { metric: 'cpu_busy_percent', labels: {}, ts_ms: 1, value: 5 },
    ]
    expect(items([{ host: 'a', values }], 'filesystem_usage_percent', {}, 'percent', name)).toEqual([
      { name: '/', value: 40 },
      { name: '/home', value: 80 },
    ])
    expect(items([{ host: 'a', values }, { host: 'b', values: [] }], 'filesystem_usage_percent', {}, 'percent', name)).toEqual([
      { name: 'name-of-a', value: 60 },
    ])
    const r = rows([{ host: 'a', history: net }], {}, name)
    expect(r.map((x) => x.name)).toEqual(['eth0', 'eth1'])
    expect(r[0]).toMatchObject({ last: 20, min: 9, max: 21, avg: 15 })
    expect(rows([{ host: 'a', history: net }, { host: 'b', history: net }], { interface: 'eth1' }, name).map((x) => x.name)).toEqual([
      'name-of-a eth1',
      'name-of-b eth1',
    ])
  })

  it('label filters read and print as key=value lists', () => {
    expect(parseFilter('mountpoint=/, device = sda ,junk,=x')).toEqual({ mountpoint: '/', device: 'sda' })
    expect(filterText({ a: '1', b: '2' })).toBe('a=1, b=2')
    expect(matchesLabels({ mountpoint: '/' }, { mountpoint: '/' })).toBe(true)
    expect(matchesLabels({ mountpoint: '/boot' }, { mountpoint: '/' })).toBe(false)
  })
})

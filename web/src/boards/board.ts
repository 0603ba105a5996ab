// A board's logic outside the page: variables ($host) and their values from the URL, which host
// a widget reads, new widgets, and reading an imported file.
import type { Unit } from '../gen/catalog'
import { METRICS } from '../gen/catalog'
import type { BoardFile, BoardSpec, Variable, Widget, WidgetType } from './api'
import { freeSpot } from './grid'

/** Widgets that draw one catalog metric (the others need none). */
export const METRIC_WIDGETS: readonly WidgetType[] = ['timeseries', 'stat', 'gauge', 'bar', 'table']
export const WIDGET_TYPES: readonly WidgetType[] = [...METRIC_WIDGETS, 'processes', 'alerts', 'hosts']
/** A widget without a host reads this many hosts (the first by name). */
export const FLEET_HOSTS = 10
/** The board ranges offered (seconds). */
export const BOARD_RANGES: Record<string, number> = {
  '15m': 900,
  '1h': 3600,
  '6h': 6 * 3600,
  '24h': 86400,
  '7d': 7 * 86400,
  '30d': 30 * 86400,
}

const SIZES: Record<WidgetType, [number, number]> = {
  timeseries: [6, 4],
  stat: [3, 2],
  gauge: [3, 3],
  bar: [6, 4],
  table: [6, 4],
  processes: [6, 4],
  alerts: [6, 3],
  hosts: [12, 4],
}
const DEFAULT_METRIC: Partial<Record<WidgetType, Widget['metric']>> = {
  timeseries: 'cpu_busy_percent',
  stat: 'cpu_busy_percent',
  gauge: 'memory_usage_percent',
  bar: 'filesystem_usage_percent',
  table: 'filesystem_usage_percent',
}

export function needsMetric(type: WidgetType): boolean {
  return METRIC_WIDGETS.includes(type)
}

/** A new widget of `type` in the first free place of the board. */
export function newWidget(spec: BoardSpec, type: WidgetType, id: string): Widget {
  const [w, h] = SIZES[type]
  const { x, y } = freeSpot(spec.widgets, w, h)
  const host = spec.variables.length ? `$${spec.variables[0].name}` : null
  return {
    id,
    type,
    title: '',
    x,
    y,
    w,
    h,
    metric: DEFAULT_METRIC[type] ?? null,
    host: type === 'hosts' ? null : host,
    labels: {},
    agg: 'avg',
    max: type === 'gauge' ? 100 : null,
  }
}

/** A widget id not used on the board yet. */
export function freshId(spec: BoardSpec, type: WidgetType): string {
  const used = new Set(spec.widgets.map((w) => w.id))
  for (let i = 1; ; i++) if (!used.has(`${type}-${i}`)) return `${type}-${i}`
}

/** The variables' values: the URL's `var-<name>` first, then the variable's default, then the
 *  first host offered. */
export function variableValues(
  vars: readonly Variable[],
  query: Record<string, unknown>,
  hosts: readonly string[],
): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const v of vars) {
    const q = query[`var-${v.name}`]
    const fromUrl = typeof q === 'string' && q ? q : null
    out[v.name] = fromUrl ?? v.default ?? hosts[0] ?? null
  }
  return out
}

/** The hosts a widget reads: its host, its variable's value, or (none) the first FLEET_HOSTS. */
export function hostsOf(w: Widget, values: Record<string, string | null>, fleet: readonly string[]): string[] {
  if (!w.host) return fleet.slice(0, FLEET_HOSTS)
  if (w.host.startsWith('$')) {
    const v = values[w.host.slice(1)]
    return v ? [v] : []
  }
  return [w.host]
}

export function unitOf(w: Widget): Unit | 'plain' {
  if (!w.metric) return 'plain'
  const u = METRICS[w.metric]?.unit ?? ''
  return u === '' || u === 'snapshots' ? 'plain' : u
}

/** Several series of one metric as one number: percentages averaged, everything else summed
 *  (bytes/s of every interface, processes of every state). */
export function combine(values: readonly number[], unit: Unit | 'plain'): number | undefined {
  if (!values.length) return undefined
  const sum = values.reduce((a, b) => a + b, 0)
  return unit === 'percent' ? sum / values.length : sum
}

/** A widget's title: its own, else its metric's catalog key, else its type. */
export function titleOf(w: Widget): string {
  return w.title || w.metric || w.type
}

export class ImportError extends Error {}

/** The board file a user picked, checked enough to say what is wrong before the server does. */
export function readBoardFile(text: string): BoardFile {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new ImportError('not a JSON file')
  }
  const d = doc as Partial<BoardFile>
  if (typeof d !== 'object' || d === null || d.hostpulse_dashboard !== 1) {
    throw new ImportError('not a hostpulse dashboard file (no "hostpulse_dashboard": 1)')
  }
  if (typeof d.name !== 'string' || !d.name.trim()) throw new ImportError('the file names no dashboard')
  if (typeof d.spec !== 'object' || d.spec === null || !Array.isArray(d.spec.widgets)) {
    throw new ImportError('the file has no widgets list')
  }
  return { hostpulse_dashboard: 1, name: d.name, description: d.description ?? '', spec: d.spec }
}

/** The file name an export is saved under. */
export function fileName(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'dashboard'
  return `${slug}.hostpulse.json`
}

// The rule editor's form: to and from the API's rule JSON, and the checks made before sending
// (the server checks again and its reasons are shown next to the fields; see problems.ts).
import type { AbsentRule, AggFn, CatalogMetric, ForecastRule, Op, Rule, Severity, ThresholdRule } from '../api/alerts'
import type { MessageKey } from '../i18n'
import { formatDuration, parseDuration } from './duration'
import { formatLabels, parseLabels } from './labels'

export type EditableKind = 'threshold' | 'absent' | 'forecast'
export const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
export const OPS: Op[] = ['>', '>=', '<', '<=']
export const AGG_FNS: AggFn[] = ['last', 'avg', 'min', 'max']

export interface RuleForm {
  kind: EditableKind
  id: string
  name: string
  description: string
  enabled: boolean
  hostsMode: 'all' | 'names' | 'labels'
  hostNames: string[]
  hostLabels: string
  metric: string
  labels: string
  op: Op
  warning: string
  critical: string
  for: string
  aggFn: AggFn
  aggWindow: string
  channels: string[]
  repeatInterval: string // '' = the global setting
  groupWait: string
  intervals: string
  severity: Severity
  window: string
  within: string
}

export function emptyRuleForm(): RuleForm {
  return {
    kind: 'threshold', id: '', name: '', description: '', enabled: true,
    hostsMode: 'all', hostNames: [], hostLabels: '',
    metric: 'cpu_busy_percent', labels: '', op: '>', warning: '', critical: '', for: '2m',
    aggFn: 'last', aggWindow: '0s', channels: [], repeatInterval: '', groupWait: '0s',
    intervals: '3', severity: 'critical', window: '6h', within: '24h',
  }
}

const dur = (v: number | string | null | undefined, dflt: string) =>
  v === null || v === undefined ? dflt : typeof v === 'number' ? formatDuration(v) : v
const num = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v))

/** The form for an existing rule; null for kinds the form does not edit (compound). */
export function formOf(rule: Rule): RuleForm | null {
  const f = emptyRuleForm()
  const kind = rule.kind ?? 'threshold'
  if (kind === 'compound') return null
  f.kind = kind
  f.id = rule.id
  f.name = rule.name ?? ''
  f.description = rule.description ?? ''
  f.enabled = rule.enabled ?? true
  const h = rule.hosts ?? { all: true, names: [], labels: {} }
  f.hostsMode = h.names?.length ? 'names' : Object.keys(h.labels ?? {}).length ? 'labels' : 'all'
  f.hostNames = [...(h.names ?? [])]
  f.hostLabels = formatLabels(h.labels)
  f.channels = [...(rule.channels ?? [])]
  f.repeatInterval = rule.repeat_interval === null || rule.repeat_interval === undefined ? '' : dur(rule.repeat_interval, '')
  f.groupWait = dur(rule.group_wait, '0s')
  if (kind === 'threshold') {
    const r = rule as ThresholdRule
    f.metric = r.metric
    f.labels = formatLabels(r.labels)
    f.op = r.op ?? '>'
    f.warning = num(r.warning)
    f.critical = num(r.critical)
    f.for = dur(r.for, '0s')
    f.aggFn = r.aggregation?.fn ?? 'last'
    f.aggWindow = dur(r.aggregation?.window, '0s')
  } else if (kind === 'absent') {
    const r = rule as AbsentRule
    f.intervals = String(r.intervals ?? 3)
    f.severity = r.severity ?? 'critical'
    f.groupWait = dur(r.group_wait, '30s')
  } else {
    const r = rule as ForecastRule
    f.metric = r.metric ?? 'filesystem_free_bytes'
    f.labels = formatLabels(r.labels)
    f.window = dur(r.window, '6h')
    f.within = dur(r.within, '24h')
    f.severity = r.severity ?? 'warning'
  }
  return f
}

/** The API body for a form that passed `validateRule`. */
export function ruleOf(f: RuleForm): Rule {
  const base = {
    id: f.id.trim(),
    name: f.name.trim(),
    description: f.description.trim(),
    enabled: f.enabled,
    hosts:
      f.hostsMode === 'names'
        ? { all: false, names: f.hostNames, labels: {} }
        : f.hostsMode === 'labels'
          ? { all: false, names: [], labels: parseLabels(f.hostLabels) ?? {} }
          : { all: true, names: [], labels: {} },
    channels: f.channels,
    repeat_interval: f.repeatInterval.trim() ? parseDuration(f.repeatInterval) : null,
    group_wait: parseDuration(f.groupWait) ?? 0,
  }
  if (f.kind === 'absent')
    return { ...base, kind: 'absent', intervals: Number(f.intervals), severity: f.severity }
  if (f.kind === 'forecast')
    return {
      ...base, kind: 'forecast', metric: f.metric, labels: parseLabels(f.labels) ?? {},
      window: parseDuration(f.window) ?? 0, within: parseDuration(f.within) ?? 0, severity: f.severity,
    }
  return {
    ...base,
    kind: 'threshold',
    metric: f.metric,
    labels: parseLabels(f.labels) ?? {},
    op: f.op,
    warning: f.warning.trim() === '' ? null : Number(f.warning),
    critical: f.critical.trim() === '' ? null : Number(f.critical),
    for: parseDuration(f.for) ?? 0,
    aggregation: { fn: f.aggFn, window: parseDuration(f.aggWindow) ?? 0 },
  }
}

export type RuleErrors = Partial<Record<string, { key: MessageKey; params?: Record<string, string | number> }>>

/** What is wrong with the form, per field (the same paths the server uses in its 422s). */
export function validateRule(f: RuleForm, catalog: CatalogMetric[]): RuleErrors {
  const e: RuleErrors = {}
  if (!RULE_ID.test(f.id.trim())) e.id = { key: 'rule.err.id' }
  if (f.hostsMode === 'names' && !f.hostNames.length) e['hosts.names'] = { key: 'rule.err.hosts' }
  if (f.hostsMode === 'labels') {
    const l = parseLabels(f.hostLabels)
    if (!l || !Object.keys(l).length) e['hosts.labels'] = { key: 'rule.err.labels' }
  }
  if (f.repeatInterval.trim() && parseDuration(f.repeatInterval) === null) e.repeat_interval = { key: 'rule.err.duration' }
  if (parseDuration(f.groupWait) === null) e.group_wait = { key: 'rule.err.duration' }
  if (f.kind === 'absent') {
    const n = Number(f.intervals)
    if (!f.intervals.trim() || !(n > 0 && n <= 1000)) e.intervals = { key: 'rule.err.intervals' }
    return e
  }
  const metric = catalog.find((m) => m.key === f.metric)
  if (!metric) e.metric = { key: 'rule.err.metric' }
  else if (metric.kind === 'info') e.metric = { key: 'rule.err.metricInfo' }
  const labels = parseLabels(f.labels)
  if (!labels) e.labels = { key: 'rule.err.labels' }
  else if (metric) {
    const bad = Object.keys(labels).find((k) => !metric.labels.includes(k))
    if (bad) e.labels = { key: 'rule.err.labelUnknown', params: { label: bad, known: metric.labels.join(', ') || '—' } }
  }
  if (f.kind === 'forecast') {
    for (const k of ['window', 'within'] as const) if (!(Number(parseDuration(f[k])) > 0)) e[k] = { key: 'rule.err.positive' }
    return e
  }
  const w = f.warning.trim() === '' ? null : Number(f.warning)
  const c = f.critical.trim() === '' ? null : Number(f.critical)
  if (w !== null && !Number.isFinite(w)) e.warning = { key: 'rule.err.number' }
  if (c !== null && !Number.isFinite(c)) e.critical = { key: 'rule.err.number' }
  if (w === null && c === null) e.warning = { key: 'rule.err.threshold' }
  if (w !== null && c !== null && Number.isFinite(w) && Number.isFinite(c)) {
    const up = f.op === '>' || f.op === '>='
    if (up ? c < w : c > w) e.critical = { key: up ? 'rule.err.critAbove' : 'rule.err.critBelow', params: { warning: w } }
  }
  if (parseDuration(f.for) === null) e.for = { key: 'rule.err.duration' }
  if (parseDuration(f.aggWindow) === null) e['aggregation.window'] = { key: 'rule.err.duration' }
  return e
}

/** Every field name the form can show a reason next to. */
export const RULE_FIELDS = [
  'id', 'name', 'hosts', 'hosts.names', 'hosts.labels', 'metric', 'labels', 'op', 'warning', 'critical', 'for',
  'aggregation.fn', 'aggregation.window', 'channels', 'repeat_interval', 'group_wait', 'intervals', 'severity', 'window', 'within',
] as const

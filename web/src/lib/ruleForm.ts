// The rule editor's form: to and from the API's rule JSON, and the checks made before sending
// (the server checks again and its reasons are shown next to the fields; see problems.ts).
import type { AbsentRule, AggFn, CatalogMetric, CompoundRule, Condition, ForecastRule, Op, Rule, Severity, ThresholdRule } from '../api/alerts'
import type { MessageKey } from '../i18n'
import { formatDuration, parseDuration } from './duration'
import { formatLabels, parseLabels } from './labels'

export type EditableKind = 'threshold' | 'compound' | 'absent' | 'forecast'
export const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
export const OPS: Op[] = ['>', '>=', '<', '<=']
export const AGG_FNS: AggFn[] = ['last', 'avg', 'min', 'max']
/** A compound rule joins 2 to 10 conditions (the server's bounds). */
export const MIN_CONDITIONS = 2
export const MAX_CONDITIONS = 10

/** One condition of a compound rule, as the form edits it. */
export interface ConditionForm {
  metric: string
  labels: string
  op: Op
  warning: string
  critical: string
  aggFn: AggFn
  aggWindow: string
}

export function emptyCondition(metric = 'cpu_busy_percent'): ConditionForm {
  return { metric, labels: '', op: '>', warning: '', critical: '', aggFn: 'last', aggWindow: '0s' }
}

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
  match: 'and' | 'or'
  conditions: ConditionForm[]
}

export function emptyRuleForm(): RuleForm {
  return {
    kind: 'threshold', id: '', name: '', description: '', enabled: true,
    hostsMode: 'all', hostNames: [], hostLabels: '',
    metric: 'cpu_busy_percent', labels: '', op: '>', warning: '', critical: '', for: '2m',
    aggFn: 'last', aggWindow: '0s', channels: [], repeatInterval: '', groupWait: '0s',
    intervals: '3', severity: 'critical', window: '6h', within: '24h',
    match: 'and', conditions: [emptyCondition('cpu_busy_percent'), emptyCondition('memory_usage_percent')],
  }
}

const dur = (v: number | string | null | undefined, dflt: string) =>
  v === null || v === undefined ? dflt : typeof v === 'number' ? formatDuration(v) : v
const num = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v))

function conditionForm(c: Condition): ConditionForm {
  return {
    metric: c.metric, labels: formatLabels(c.labels), op: c.op ?? '>', warning: num(c.warning), critical: num(c.critical),
    aggFn: c.aggregation?.fn ?? 'last', aggWindow: dur(c.aggregation?.window, '0s'),
  }
}

function conditionOf(c: ConditionForm): Required<Condition> {
  return {
    metric: c.metric,
    labels: parseLabels(c.labels) ?? {},
    op: c.op,
    warning: c.warning.trim() === '' ? null : Number(c.warning),
    critical: c.critical.trim() === '' ? null : Number(c.critical),
    aggregation: { fn: c.aggFn, window: parseDuration(c.aggWindow) ?? 0 },
  }
}

/** The form for an existing rule (every kind). */
export function formOf(rule: Rule): RuleForm {
  const f = emptyRuleForm()
  const kind = rule.kind ?? 'threshold'
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
  if (kind === 'compound') {
    const r = rule as CompoundRule
    f.match = r.match ?? 'and'
    f.conditions = (r.conditions ?? []).map(conditionForm)
    f.for = dur(r.for, '0s')
  } else if (kind === 'threshold') {
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
  if (f.kind === 'compound')
    return { ...base, kind: 'compound', match: f.match, conditions: f.conditions.map(conditionOf), for: parseDuration(f.for) ?? 0 }
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
  if (f.kind === 'compound') {
    if (f.conditions.length < MIN_CONDITIONS || f.conditions.length > MAX_CONDITIONS)
      e.conditions = { key: 'rule.err.conditions', params: { min: MIN_CONDITIONS, max: MAX_CONDITIONS } }
    f.conditions.forEach((c, i) => checkCondition(c, catalog, e, `conditions.${i}.`))
    if (parseDuration(f.for) === null) e.for = { key: 'rule.err.duration' }
    return e
  }
  if (f.kind === 'forecast') {
    checkMetric(f.metric, f.labels, catalog, e, '')
    for (const k of ['window', 'within'] as const) if (!(Number(parseDuration(f[k])) > 0)) e[k] = { key: 'rule.err.positive' }
    return e
  }
  checkCondition(f, catalog, e, '')
  if (parseDuration(f.for) === null) e.for = { key: 'rule.err.duration' }
  return e
}

function checkMetric(key: string, labelText: string, catalog: CatalogMetric[], e: RuleErrors, at: string) {
  const metric = catalog.find((m) => m.key === key)
  const custom = key.startsWith('custom:')
  if (!metric && !custom) e[`${at}metric`] = { key: 'rule.err.metric' }
  else if (metric?.kind === 'info') e[`${at}metric`] = { key: 'rule.err.metricInfo' }
  const labels = parseLabels(labelText)
  if (!labels) e[`${at}labels`] = { key: 'rule.err.labels' }
  else if (metric) {
    const bad = Object.keys(labels).find((k) => !metric.labels.includes(k))
    if (bad) e[`${at}labels`] = { key: 'rule.err.labelUnknown', params: { label: bad, known: metric.labels.join(', ') || '—' } }
  }
}

/** The checks of one threshold condition (a threshold rule's, or one of a compound rule's,
 * whose problems are named `conditions.<i>.<field>` as the server names them). */
function checkCondition(c: ConditionForm, catalog: CatalogMetric[], e: RuleErrors, at: string) {
  checkMetric(c.metric, c.labels, catalog, e, at)
  const w = c.warning.trim() === '' ? null : Number(c.warning)
  const cr = c.critical.trim() === '' ? null : Number(c.critical)
  if (w !== null && !Number.isFinite(w)) e[`${at}warning`] = { key: 'rule.err.number' }
  if (cr !== null && !Number.isFinite(cr)) e[`${at}critical`] = { key: 'rule.err.number' }
  if (w === null && cr === null) e[`${at}warning`] = { key: 'rule.err.threshold' }
  if (w !== null && cr !== null && Number.isFinite(w) && Number.isFinite(cr)) {
    const up = c.op === '>' || c.op === '>='
    if (up ? cr < w : cr > w) e[`${at}critical`] = { key: up ? 'rule.err.critAbove' : 'rule.err.critBelow', params: { warning: w } }
  }
  if (parseDuration(c.aggWindow) === null) e[`${at}aggregation.window`] = { key: 'rule.err.duration' }
}

/** Every field name the form can show a reason next to. */
export const RULE_FIELDS = [
  'id', 'name', 'hosts', 'hosts.names', 'hosts.labels', 'metric', 'labels', 'op', 'warning', 'critical', 'for',
  'aggregation.fn', 'aggregation.window', 'channels', 'repeat_interval', 'group_wait', 'intervals', 'severity', 'window', 'within',
  'match', 'conditions',
] as const

/** The field names of a compound rule's conditions (`conditions.0.metric`, …). */
export function conditionFields(n: number): string[] {
  const out: string[] = []
  for (let i = 0; i < n; i++) for (const k of ['metric', 'labels', 'op', 'warning', 'critical', 'aggregation.window']) out.push(`conditions.${i}.${k}`)
  return out
}

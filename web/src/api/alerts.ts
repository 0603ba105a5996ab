// The alerts API (/api/v1/alerts, src/hostpulse/server/api/alerts.py) and the metric catalog.
// Shapes follow src/hostpulse/alerts/schema.py and alerts/channels/*.py.
import type { ApiClient } from './client'

export type Severity = 'warning' | 'critical'
export type Op = '>' | '>=' | '<' | '<='
export type AggFn = 'last' | 'avg' | 'min' | 'max'
export type Source = 'default' | 'config' | 'api'

export interface HostSelector {
  all: boolean
  names: string[]
  labels: Record<string, string>
}

interface RuleBase {
  id: string
  name?: string
  description?: string
  enabled?: boolean
  hosts?: HostSelector
  channels?: string[]
  repeat_interval?: number | string | null
  group_wait?: number | string
}

export interface Condition {
  metric: string
  labels?: Record<string, string>
  op?: Op
  warning?: number | null
  critical?: number | null
  aggregation?: { fn: AggFn; window: number | string }
}

export interface ThresholdRule extends RuleBase, Condition {
  kind?: 'threshold'
  for?: number | string
}
export interface CompoundRule extends RuleBase {
  kind: 'compound'
  match: 'and' | 'or'
  conditions: Condition[]
  for?: number | string
}
export interface AbsentRule extends RuleBase {
  kind: 'absent'
  intervals?: number
  severity?: Severity
}
export interface ForecastRule extends RuleBase {
  kind: 'forecast'
  metric?: string
  labels?: Record<string, string>
  window?: number | string
  within?: number | string
  min_points?: number
  severity?: Severity
}
export type Rule = ThresholdRule | CompoundRule | AbsentRule | ForecastRule

interface Stored {
  source: Source
  created_ms: number
  updated_ms: number
}
export interface RuleOut extends Stored {
  rule: Rule
}

export type ChannelType = 'email' | 'slack' | 'discord' | 'webhook' | 'sms' | 'alertmanager'
/** A channel's settings (secrets come back as `********`; sending that back keeps them). */
export interface Channel {
  id: string
  type: ChannelType
  name?: string
  enabled?: boolean
  min_severity?: Severity
  send_resolved?: boolean
  [key: string]: unknown
}
export interface ChannelOut extends Stored {
  channel: Channel
}

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'
export interface Recurrence {
  days: Weekday[]
  start: string // "HH:MM"
  duration: number | string
  timezone: string
}
export interface Silence {
  hosts: string[]
  rules: string[]
  labels: Record<string, string>
  comment: string
  created_by: string
  starts_at: string | null
  ends_at: string | null
  recurring: Recurrence | null
}
export interface SilenceOut extends Stored {
  id: string
  active: boolean
  silence: Silence
}

export type AlertState = 'ok' | 'pending' | 'firing' | 'resolved'
export interface AlertOut {
  id: string
  rule_id: string
  rule_title: string
  host: string
  labels: Record<string, string>
  state: AlertState
  severity: Severity | null
  value: number | null
  pending_since_ms: number | null
  fired_at_ms: number | null
  acked_by: string | null
  acked_at_ms: number | null
  /** The host's hostname (its id when the server does not know the host). */
  host_name?: string
  /** A silence matches it: it shows, but no notification goes out (older servers omit it). */
  silenced?: boolean
  silence_id?: string | null
  silenced_until_ms?: number | null
}

export interface HistoryOut {
  id: number
  alert_id: string
  rule_id: string
  host: string
  labels: Record<string, string>
  from_state: AlertState
  to_state: AlertState
  severity: Severity | null
  value: number | null
  at_ms: number
}

export interface HistoryFilter {
  host?: string
  rule?: string
  state?: AlertState | ''
  since?: number // ms
  until?: number // ms
  limit?: number
}

export interface TestResult {
  ok: boolean
  status: number | null
  error: string | null
  duration_ms: number
}

export interface CatalogMetric {
  key: string
  prom_name: string
  subsystem: string
  unit: string
  kind: string
  help: string
  labels: string[]
  rate_of: string | null
}

const enc = encodeURIComponent

export class AlertsApi {
  constructor(private readonly api: ApiClient) {}

  active(): Promise<AlertOut[]> {
    return this.api.get('/alerts/active')
  }

  ack(id: string, by: string): Promise<AlertOut> {
    return this.api.post(`/alerts/active/${enc(id)}/ack`, { by })
  }

  history(f: HistoryFilter = {}): Promise<HistoryOut[]> {
    const p = new URLSearchParams()
    if (f.host) p.set('host', f.host)
    if (f.rule) p.set('rule', f.rule)
    if (f.state) p.set('state', f.state)
    if (f.since !== undefined) p.set('since', new Date(f.since).toISOString())
    if (f.until !== undefined) p.set('until', new Date(f.until).toISOString())
    p.set('limit', String(f.limit ?? 500))
    return this.api.get('/alerts/history', p)
  }

  rules(): Promise<RuleOut[]> {
    return this.api.get('/alerts/rules')
  }

  saveRule(rule: Rule, create: boolean): Promise<RuleOut> {
    return create ? this.api.post('/alerts/rules', rule) : this.api.put(`/alerts/rules/${enc(rule.id)}`, rule)
  }

  deleteRule(id: string): Promise<void> {
    return this.api.delete(`/alerts/rules/${enc(id)}`)
  }

  channels(): Promise<ChannelOut[]> {
    return this.api.get('/alerts/channels')
  }

  saveChannel(ch: Channel, create: boolean): Promise<ChannelOut> {
    return create ? this.api.post('/alerts/channels', ch) : this.api.put(`/alerts/channels/${enc(ch.id)}`, ch)
  }

  deleteChannel(id: string): Promise<void> {
    return this.api.delete(`/alerts/channels/${enc(id)}`)
  }

  testChannel(id: string): Promise<TestResult> {
    return this.api.post(`/alerts/channels/${enc(id)}/test`, {})
  }

  silences(): Promise<SilenceOut[]> {
    return this.api.get('/alerts/silences')
  }

  /** Create (no id) or replace a silence. */
  saveSilence(s: Silence, id?: string): Promise<SilenceOut> {
    return id ? this.api.put(`/alerts/silences/${enc(id)}`, s) : this.api.post('/alerts/silences', s)
  }

  deleteSilence(id: string): Promise<void> {
    return this.api.delete(`/alerts/silences/${enc(id)}`)
  }

  catalog(): Promise<CatalogMetric[]> {
    return this.api.get('/catalog')
  }
}

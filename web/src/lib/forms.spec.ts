import { describe, expect, it } from 'vitest'
import type { CatalogMetric } from '../api/alerts'
import { ApiError } from '../api/client'
import { channelOf, emptyChannelForm, formOfChannel, MASK, validateChannel } from './channelForm'
import { formatDuration, parseDuration } from './duration'
import { problemsOf } from './problems'
import { emptyRuleForm, formOf, RULE_FIELDS, ruleOf, validateRule } from './ruleForm'
import { emptySilenceForm, formOfSilence, silenceOf, spanSeconds, validateSilence } from './silenceForm'

const CATALOG: CatalogMetric[] = [
  { key: 'cpu_busy_percent', prom_name: '', subsystem: 'cpu', unit: 'percent', kind: 'gauge', help: '', labels: [], rate_of: null },
  { key: 'filesystem_usage_percent', prom_name: '', subsystem: 'disk', unit: 'percent', kind: 'gauge', help: '', labels: ['device', 'mountpoint'], rate_of: null },
  { key: 'host_info', prom_name: '', subsystem: 'system', unit: '', kind: 'info', help: '', labels: ['os'], rate_of: null },
]

describe('durations', () => {
  it('reads what the server reads and refuses the rest', () => {
    expect(parseDuration('2m')).toBe(120)
    expect(parseDuration('1h30m')).toBe(5400)
    expect(parseDuration(' 90 ')).toBe(90)
    expect(parseDuration('500ms')).toBe(0.5)
    expect(parseDuration('2q')).toBeNull()
    expect(parseDuration('m2')).toBeNull()
    expect(parseDuration('')).toBeNull()
    expect(formatDuration(5400)).toBe('1h30m')
    expect(formatDuration(0)).toBe('0s')
  })
})

describe('rule editor form', () => {
  const valid = () => ({ ...emptyRuleForm(), id: 'cpu_very_high', warning: '85', critical: '95', for: '1m' })

  it('accepts a good threshold rule and builds the API body', () => {
    const f = { ...valid(), hostsMode: 'names' as const, hostNames: ['db-1'], labels: '', aggFn: 'avg' as const, aggWindow: '5m' }
    expect(validateRule(f, CATALOG)).toEqual({})
    expect(ruleOf(f)).toMatchObject({
      id: 'cpu_very_high', kind: 'threshold', metric: 'cpu_busy_percent', op: '>', warning: 85, critical: 95, for: 60,
      aggregation: { fn: 'avg', window: 300 }, hosts: { all: false, names: ['db-1'], labels: {} }, repeat_interval: null,
    })
  })

  it('names each field that is wrong', () => {
    const e = validateRule({ ...valid(), id: 'bad id', warning: '', critical: '', for: 'soon', aggWindow: 'x' }, CATALOG)
    expect(Object.keys(e).sort()).toEqual(['aggregation.window', 'for', 'id', 'warning'])
    expect(e.warning?.key).toBe('rule.err.threshold')
    expect(validateRule({ ...valid(), warning: 'abc' }, CATALOG).warning?.key).toBe('rule.err.number')
  })

  it('wants critical beyond warning in the direction of the operator', () => {
    expect(validateRule({ ...valid(), warning: '90', critical: '80' }, CATALOG).critical).toEqual({ key: 'rule.err.critAbove', params: { warning: 90 } })
    expect(validateRule({ ...valid(), op: '<', warning: '10', critical: '20' }, CATALOG).critical?.key).toBe('rule.err.critBelow')
    expect(validateRule({ ...valid(), op: '<', warning: '20', critical: '10' }, CATALOG)).toEqual({})
  })

  it('checks the metric and its labels against the catalog', () => {
    expect(validateRule({ ...valid(), metric: 'nope' }, CATALOG).metric?.key).toBe('rule.err.metric')
    expect(validateRule({ ...valid(), metric: 'host_info' }, CATALOG).metric?.key).toBe('rule.err.metricInfo')
    const fs = { ...valid(), metric: 'filesystem_usage_percent' }
    expect(validateRule({ ...fs, labels: 'mountpoint=/' }, CATALOG)).toEqual({})
    expect(validateRule({ ...fs, labels: 'disk=sda' }, CATALOG).labels).toEqual({ key: 'rule.err.labelUnknown', params: { label: 'disk', known: 'device, mountpoint' } })
    expect(validateRule({ ...fs, labels: 'mountpoint' }, CATALOG).labels?.key).toBe('rule.err.labels')
  })

  it('needs hosts when it selects by name or label', () => {
    expect(validateRule({ ...valid(), hostsMode: 'names' }, CATALOG)['hosts.names']?.key).toBe('rule.err.hosts')
    expect(validateRule({ ...valid(), hostsMode: 'labels', hostLabels: '' }, CATALOG)['hosts.labels']?.key).toBe('rule.err.labels')
  })

  it('round-trips stored rules of every kind it edits, and leaves compound rules alone', () => {
    const threshold = { id: 'disk', kind: 'threshold' as const, metric: 'filesystem_usage_percent', labels: { mountpoint: '/' }, op: '>=' as const,
      warning: 80, critical: null, for: 60, aggregation: { fn: 'max' as const, window: 120 }, hosts: { all: false, names: [], labels: { env: 'prod' } },
      channels: ['ops'], repeat_interval: 0, group_wait: 0, name: 'Disk', description: '', enabled: false }
    const f = formOf(threshold)!
    expect(f).toMatchObject({ hostsMode: 'labels', hostLabels: 'env=prod', labels: 'mountpoint=/', for: '1m', aggWindow: '2m', repeatInterval: '0s', enabled: false })
    expect(ruleOf(f)).toEqual(threshold)
    const absent = ruleOf(formOf({ id: 'down', kind: 'absent', intervals: 5, severity: 'warning' })!)
    expect(absent).toMatchObject({ kind: 'absent', intervals: 5, severity: 'warning', group_wait: 30 })
    const forecast = ruleOf(formOf({ id: 'fill', kind: 'forecast', window: 3600, within: 7200 })!)
    expect(forecast).toMatchObject({ kind: 'forecast', metric: 'filesystem_free_bytes', window: 3600, within: 7200 })
  })

  it('edits compound rules: round-trips, checks each condition under its own path, bounds the count', () => {
    const compound = { id: 'busy', kind: 'compound' as const, match: 'or' as const, for: 120,
      conditions: [
        { metric: 'cpu_busy_percent', labels: {} as Record<string, string>, op: '>' as const, warning: 80, critical: 95, aggregation: { fn: 'avg' as const, window: 60 } },
        { metric: 'filesystem_usage_percent', labels: { mountpoint: '/' }, op: '>=' as const, warning: null, critical: 90, aggregation: { fn: 'last' as const, window: 0 } },
      ],
      hosts: { all: true, names: [], labels: {} }, channels: [], repeat_interval: null, group_wait: 0, name: '', description: '', enabled: true }
    const f = formOf(compound)
    expect(f).toMatchObject({ kind: 'compound', match: 'or', for: '2m' })
    expect(f.conditions[1]).toMatchObject({ labels: 'mountpoint=/', critical: '90', warning: '' })
    expect(ruleOf(f)).toEqual(compound)
    expect(validateRule(f, CATALOG)).toEqual({})
    const bad = { ...f, conditions: [{ ...f.conditions[0], warning: '', critical: '' }, { ...f.conditions[1], labels: 'disk=sda' }] }
    const e = validateRule(bad, CATALOG)
    expect(e['conditions.0.warning']?.key).toBe('rule.err.threshold')
    expect(e['conditions.1.labels']?.key).toBe('rule.err.labelUnknown')
    expect(validateRule({ ...f, conditions: [f.conditions[0]] }, CATALOG).conditions?.key).toBe('rule.err.conditions')
    // a new compound rule starts with two conditions
    expect(emptyRuleForm().conditions).toHaveLength(2)
  })
})

describe('silence schedule builder', () => {
  it('builds a weekly window from days and times, the end past midnight meaning the next day', () => {
    const f = { ...emptySilenceForm(), mode: 'recurring' as const, hosts: ['db-1'], days: ['sun' as const], start: '02:00', end: '04:00', timezone: 'Europe/Berlin' }
    expect(validateSilence(f, 0)).toEqual({})
    expect(silenceOf(f, 'ada')).toEqual({
      hosts: ['db-1'], rules: [], labels: {}, comment: '', created_by: 'ada', starts_at: null, ends_at: null,
      recurring: { days: ['sun'], start: '02:00', duration: 7200, timezone: 'Europe/Berlin' },
    })
    expect(spanSeconds('22:00', '02:00')).toBe(4 * 3600)
    expect(spanSeconds('02:00', '02:00')).toBe(86400)
    expect(spanSeconds('25:00', '02:00')).toBeNull()
    // days keep the week's order whatever order they were ticked in
    expect(silenceOf({ ...f, days: ['sun', 'mon'] }, '').recurring?.days).toEqual(['mon', 'sun'])
  })

  it('reads a stored window back into the builder', () => {
    const f = formOfSilence({ hosts: [], rules: ['cpu_high'], labels: { env: 'prod' }, comment: 'patching', created_by: 'ada', starts_at: null, ends_at: null,
      recurring: { days: ['sat', 'sun'], start: '23:30:00', duration: '3h', timezone: 'Asia/Seoul' } })
    expect(f).toMatchObject({ mode: 'recurring', rules: ['cpu_high'], labels: 'env=prod', days: ['sat', 'sun'], start: '23:30', end: '02:30', timezone: 'Asia/Seoul' })
  })

  it('makes one-off silences in absolute time', () => {
    const f = { ...emptySilenceForm(), rules: ['cpu_high'], startsAt: '', endsAt: '2026-12-01T06:00' }
    const s = silenceOf(f, 'ada')
    expect(s.recurring).toBeNull()
    expect(s.starts_at).toBeNull()
    expect(s.ends_at).toBe(new Date('2026-12-01T06:00').toISOString())
  })

  it('says what is missing or wrong', () => {
    const now = new Date('2026-11-22T12:00').getTime()
    expect(validateSilence({ ...emptySilenceForm(), endsAt: '2026-12-01T00:00' }, now)).toEqual({ hosts: 'silence.err.matcher' })
    expect(validateSilence({ ...emptySilenceForm(), hosts: ['a'], endsAt: '' }, now)).toEqual({ ends_at: 'silence.err.time' })
    expect(validateSilence({ ...emptySilenceForm(), hosts: ['a'], endsAt: '2026-11-01T00:00' }, now)).toEqual({ ends_at: 'silence.err.past' })
    expect(validateSilence({ ...emptySilenceForm(), hosts: ['a'], startsAt: '2026-12-02T00:00', endsAt: '2026-12-01T00:00' }, now)).toEqual({ ends_at: 'silence.err.order' })
    const rec = { ...emptySilenceForm(), mode: 'recurring' as const, hosts: ['a'] }
    expect(validateSilence({ ...rec, days: [], timezone: 'Mars/Base' }, now)).toEqual({ 'recurring.days': 'silence.err.days', 'recurring.timezone': 'silence.err.zone' })
  })
})

describe('channel form', () => {
  it('builds the body per type, leaving empty fields to the server defaults', () => {
    const f = { ...emptyChannelForm('email'), id: 'mail', values: { host: 'smtp.example.com', port: '465', sender: 'hp@example.com', to: 'a@example.com, b@example.com', password: '' } }
    expect(validateChannel(f)).toEqual({})
    expect(channelOf(f)).toEqual({ id: 'mail', type: 'email', name: '', enabled: true, min_severity: 'warning', send_resolved: true,
      host: 'smtp.example.com', port: 465, sender: 'hp@example.com', to: ['a@example.com', 'b@example.com'] })
  })

  it('keeps a masked secret as the mask (the server keeps the stored value)', () => {
    const f = formOfChannel({ id: 's', type: 'slack', url: MASK, min_severity: 'critical' })
    expect(f.min_severity).toBe('critical')
    expect(validateChannel(f)).toEqual({})
    expect(channelOf(f).url).toBe(MASK)
  })

  it('names missing and malformed fields', () => {
    expect(validateChannel({ ...emptyChannelForm('webhook'), id: 'w', values: { url: 'ftp://x' } })).toEqual({ url: 'channel.err.url' })
    expect(validateChannel({ ...emptyChannelForm('sms'), id: '' })).toMatchObject({ id: 'rule.err.id', account_sid: 'channel.err.required', to: 'channel.err.required' })
  })
})

describe("the server's reasons", () => {
  it('puts 422 problems next to the fields they name, dropping the union tag', () => {
    const err = new ApiError(422, '', '/alerts/rules', [
      { loc: ['body', 'threshold', 'metric'], msg: "unknown metric 'x'" },
      { loc: ['body', 'threshold'], msg: 'critical (80.0) must be at or above warning (90.0)' },
      { loc: ['body', 'recurring', 'timezone'], msg: 'unknown time zone' },
    ])
    expect(problemsOf(err, RULE_FIELDS)).toEqual({
      fields: { metric: "unknown metric 'x'" },
      form: ['critical (80.0) must be at or above warning (90.0)', 'recurring.timezone: unknown time zone'],
    })
  })

  it('reads "field: reason" texts and keeps other texts whole', () => {
    expect(problemsOf(new ApiError(422, "id: the body's id 'a' differs from the URL's", '/'), ['id']).fields.id).toBe("the body's id 'a' differs from the URL's")
    expect(problemsOf(new ApiError(409, "a rule with id 'x' already exists", '/'), ['id']).form).toEqual(["a rule with id 'x' already exists"])
    expect(problemsOf(new Error('boom'), []).form).toEqual(['boom'])
  })
})

// The silence editor: a one-off silence (from/until) or a weekly maintenance window built from
// days and a start and end time ("Sundays 02:00-04:00"); to and from the API's silence JSON.
import type { Silence, Weekday } from '../api/alerts'
import type { MessageKey } from '../i18n'
import { parseDuration } from './duration'
import { formatLabels, parseLabels } from './labels'

export const WEEKDAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
const DAY_S = 86400

export interface SilenceForm {
  mode: 'oneoff' | 'recurring'
  hosts: string[]
  rules: string[]
  labels: string
  comment: string
  /** datetime-local text in the browser's zone; '' = from now */
  startsAt: string
  endsAt: string
  days: Weekday[]
  start: string // HH:MM
  end: string // HH:MM; at or before start = the next day
  timezone: string
}

export function localZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  } catch {
    return 'UTC'
  }
}

export function emptySilenceForm(): SilenceForm {
  return {
    mode: 'oneoff', hosts: [], rules: [], labels: '', comment: '', startsAt: '', endsAt: '',
    days: ['sun'], start: '02:00', end: '04:00', timezone: localZone(),
  }
}

const pad = (n: number) => String(n).padStart(2, '0')

/** An ISO time as datetime-local text in the browser's zone. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

function minutes(hhmm: string): number | null {
  const m = /^(\d{1,2}):(\d{2})(?::\d{2})?$/.exec(hhmm.trim())
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) return null
  return Number(m[1]) * 60 + Number(m[2])
}

/** Seconds from start to end, end at or before start meaning the next day. */
export function spanSeconds(start: string, end: string): number | null {
  const a = minutes(start)
  const b = minutes(end)
  if (a === null || b === null) return null
  const d = (b - a) * 60
  return d > 0 ? d : d + DAY_S
}

export function formOfSilence(s: Silence): SilenceForm {
  const f = emptySilenceForm()
  f.hosts = [...s.hosts]
  f.rules = [...s.rules]
  f.labels = formatLabels(s.labels)
  f.comment = s.comment
  if (s.recurring) {
    f.mode = 'recurring'
    f.days = [...s.recurring.days]
    f.start = s.recurring.start.slice(0, 5)
    const span = parseDuration(s.recurring.duration) ?? 0
    const endMin = (minutes(f.start) ?? 0) + Math.round(span / 60)
    f.end = `${pad(Math.floor(endMin / 60) % 24)}:${pad(endMin % 60)}`
    f.timezone = s.recurring.timezone
  } else {
    f.startsAt = toLocalInput(s.starts_at)
    f.endsAt = toLocalInput(s.ends_at)
  }
  return f
}

export function silenceOf(f: SilenceForm, createdBy: string): Silence {
  const iso = (local: string) => (local ? new Date(local).toISOString() : null)
  const base = { hosts: f.hosts, rules: f.rules, labels: parseLabels(f.labels) ?? {}, comment: f.comment.trim(), created_by: createdBy }
  if (f.mode === 'recurring')
    return {
      ...base, starts_at: null, ends_at: null,
      recurring: { days: WEEKDAYS.filter((d) => f.days.includes(d)), start: f.start, duration: spanSeconds(f.start, f.end) ?? 0, timezone: f.timezone.trim() },
    }
  return { ...base, starts_at: iso(f.startsAt), ends_at: iso(f.endsAt), recurring: null }
}

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

export type SilenceErrors = Partial<Record<string, MessageKey>>

export function validateSilence(f: SilenceForm, nowMs: number): SilenceErrors {
  const e: SilenceErrors = {}
  const labels = parseLabels(f.labels)
  if (!labels) e.labels = 'rule.err.labels'
  else if (!f.hosts.length && !f.rules.length && !Object.keys(labels).length) e.hosts = 'silence.err.matcher'
  if (f.mode === 'oneoff') {
    const start = f.startsAt ? new Date(f.startsAt).getTime() : nowMs
    const end = f.endsAt ? new Date(f.endsAt).getTime() : NaN
    if (Number.isNaN(start)) e.starts_at = 'silence.err.time'
    if (Number.isNaN(end)) e.ends_at = 'silence.err.time'
    else if (end <= nowMs) e.ends_at = 'silence.err.past'
    else if (end <= start) e.ends_at = 'silence.err.order'
  } else {
    if (!f.days.length) e['recurring.days'] = 'silence.err.days'
    if (minutes(f.start) === null) e['recurring.start'] = 'silence.err.time'
    if (minutes(f.end) === null) e['recurring.duration'] = 'silence.err.time'
    if (!validZone(f.timezone.trim())) e['recurring.timezone'] = 'silence.err.zone'
  }
  return e
}

export const SILENCE_FIELDS = [
  'hosts', 'rules', 'labels', 'comment', 'starts_at', 'ends_at', 'recurring.days', 'recurring.start', 'recurring.duration', 'recurring.timezone',
] as const

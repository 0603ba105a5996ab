// The channel editor: the settings each channel type has (alerts/channels/*.py) as form fields.
import type { Channel, ChannelType } from '../api/alerts'
import type { MessageKey } from '../i18n'
import { formatLabels, parseLabels, parseList } from './labels'

export const CHANNEL_TYPES: ChannelType[] = ['webhook', 'slack', 'discord', 'email', 'sms', 'alertmanager']
export const MASK = '********'

export type FieldKind = 'text' | 'secret' | 'number' | 'bool' | 'list' | 'map' | 'select'
export interface ChannelField {
  name: string
  kind: FieldKind
  required?: boolean
  options?: string[]
  placeholder?: string
}

export const CHANNEL_FIELDS: Record<ChannelType, ChannelField[]> = {
  webhook: [
    { name: 'url', kind: 'text', required: true, placeholder: 'https://hooks.example.com/hostpulse' },
    { name: 'secret', kind: 'secret' },
    { name: 'headers', kind: 'map', placeholder: 'X-Team=ops' },
  ],
  slack: [{ name: 'url', kind: 'secret', required: true, placeholder: 'https://hooks.slack.com/services/…' }],
  discord: [
    { name: 'url', kind: 'secret', required: true, placeholder: 'https://discord.com/api/webhooks/…' },
    { name: 'username', kind: 'text' },
  ],
  email: [
    { name: 'host', kind: 'text', required: true, placeholder: 'smtp.example.com' },
    { name: 'port', kind: 'number' },
    { name: 'security', kind: 'select', options: ['starttls', 'tls', 'none'] },
    { name: 'username', kind: 'text' },
    { name: 'password', kind: 'secret' },
    { name: 'sender', kind: 'text', required: true, placeholder: 'hostpulse@example.com' },
    { name: 'to', kind: 'list', required: true, placeholder: 'ops@example.com, oncall@example.com' },
  ],
  sms: [
    { name: 'base_url', kind: 'text' },
    { name: 'account_sid', kind: 'text', required: true },
    { name: 'auth_token', kind: 'secret', required: true },
    { name: 'from_number', kind: 'text', required: true, placeholder: '+15550001111' },
    { name: 'to', kind: 'list', required: true, placeholder: '+15550002222' },
  ],
  alertmanager: [
    { name: 'url', kind: 'text', required: true, placeholder: 'http://alertmanager.internal:9093' },
    { name: 'extra_labels', kind: 'map', placeholder: 'team=ops' },
  ],
}

/** Form values: text for every field (lists comma-separated, maps as k=v), booleans as such. */
export interface ChannelForm {
  id: string
  type: ChannelType
  name: string
  enabled: boolean
  min_severity: 'warning' | 'critical'
  send_resolved: boolean
  values: Record<string, string>
}

export function emptyChannelForm(type: ChannelType = 'webhook'): ChannelForm {
  return { id: '', type, name: '', enabled: true, min_severity: type === 'sms' ? 'critical' : 'warning', send_resolved: true, values: {} }
}

export function formOfChannel(ch: Channel): ChannelForm {
  const f = emptyChannelForm(ch.type)
  f.id = ch.id
  f.name = ch.name ?? ''
  f.enabled = ch.enabled ?? true
  f.min_severity = ch.min_severity ?? f.min_severity
  f.send_resolved = ch.send_resolved ?? true
  for (const field of CHANNEL_FIELDS[ch.type]) {
    const v = ch[field.name]
    if (v === undefined || v === null) continue
    f.values[field.name] = Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? formatLabels(v as Record<string, string>) : String(v)
  }
  return f
}

/** The API body. Fields left empty are left out (the server's defaults apply); a secret left as
 * the mask keeps the stored one. */
export function channelOf(f: ChannelForm): Channel {
  const ch: Channel = { id: f.id.trim(), type: f.type, name: f.name.trim(), enabled: f.enabled, min_severity: f.min_severity, send_resolved: f.send_resolved }
  for (const field of CHANNEL_FIELDS[f.type]) {
    const raw = (f.values[field.name] ?? '').trim()
    if (!raw) continue
    if (field.kind === 'number') ch[field.name] = Number(raw)
    else if (field.kind === 'list') ch[field.name] = parseList(raw)
    else if (field.kind === 'map') ch[field.name] = parseLabels(raw) ?? {}
    else ch[field.name] = raw
  }
  return ch
}

export function validateChannel(f: ChannelForm): Partial<Record<string, MessageKey>> {
  const e: Partial<Record<string, MessageKey>> = {}
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(f.id.trim())) e.id = 'rule.err.id'
  for (const field of CHANNEL_FIELDS[f.type]) {
    const raw = (f.values[field.name] ?? '').trim()
    if (field.required && !raw) e[field.name] = 'channel.err.required'
    else if (raw && field.kind === 'number' && !Number.isFinite(Number(raw))) e[field.name] = 'rule.err.number'
    else if (raw && field.kind === 'map' && !parseLabels(raw)) e[field.name] = 'rule.err.labels'
    else if (raw && (field.name === 'url' || field.name === 'base_url') && raw !== MASK && !/^https?:\/\/[^/\s]+/.test(raw))
      e[field.name] = 'channel.err.url'
  }
  return e
}

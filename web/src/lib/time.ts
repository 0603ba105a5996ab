// Times for tables: absolute in the user's language, and "how long ago".
import type { Lang } from '../i18n'

export function when(ms: number | null | undefined, lang: Lang): string {
  if (ms === null || ms === undefined) return '–'
  return new Date(ms).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB', {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  })
}

/** "45s", "12m", "3h 5m", "2d 4h" since `ms`. */
export function since(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return '–'
  const s = Math.max(0, Math.floor((now - ms) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}

// Times for tables: absolute in the user's language, and "how long ago".
import type { Lang } from '../i18n'

// one formatter per language: `toLocaleString` with options builds a new one on every call,
// which every fleet card paid on every render (its "last seen" title)
const whenFormats = new Map<Lang, Intl.DateTimeFormat>()

export function when(ms: number | null | undefined, lang: Lang): string {
  if (ms === null || ms === undefined) return '–'
  let f = whenFormats.get(lang)
  if (!f) {
    f = new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', {
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    })
    whenFormats.set(lang, f)
  }
  return f.format(new Date(ms))
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

const locale = (lang: Lang) => (lang === 'ko' ? 'ko-KR' : 'en-GB')

// built once: every chart's axis asked for two new formatters on every redraw, and the live
// charts redraw every second (the most CPU of any function of the host page in a profile)
const axisFormats = new Map<string, Intl.DateTimeFormat>()
function axisFormat(key: string, make: () => Intl.DateTimeFormat): Intl.DateTimeFormat {
  let f = axisFormats.get(key)
  if (!f) axisFormats.set(key, (f = make()))
  return f
}

/** Tick labels of a chart's time axis (`splits` in seconds, `incr` the step between them):
 * in the user's language and 24-hour clock; the date under the first tick and where it
 * changes. (uPlot's own labels are English only: "5:05pm 12/5/26".) */
export function axisTimes(splits: number[], incr: number, lang: Lang): string[] {
  const clock = axisFormat(`${lang}|clock|${incr < 60}`, () => new Intl.DateTimeFormat(locale(lang), {
    hour: '2-digit', minute: '2-digit', ...(incr < 60 ? { second: '2-digit' } : {}), hourCycle: 'h23',
  }))
  const day = axisFormat(`${lang}|day`, () => new Intl.DateTimeFormat(locale(lang), { month: 'short', day: 'numeric' }))
  let lastDay = ''
  return splits.map((s) => {
    const d = new Date(s * 1000)
    const date = day.format(d)
    const newDay = date !== lastDay
    lastDay = date
    if (incr >= 86400) return date
    return newDay ? `${clock.format(d)}\n${date}` : clock.format(d)
  })
}

/** The time in a chart's legend (seconds since the epoch). */
export function chartTime(s: number | null | undefined, lang: Lang): string {
  if (s === null || s === undefined) return '–'
  return when(s * 1000, lang)
}

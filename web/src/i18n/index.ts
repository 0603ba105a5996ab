// A small typed i18n: one dictionary per language, `t(key, {param})`.
import { computed } from 'vue'
import { usePrefs } from '../stores/prefs'
import { en, type MessageKey, type Messages } from './en'
import { ko } from './ko'

export type Lang = 'en' | 'ko'
export const LANGS: Record<Lang, Messages> = { en, ko }

export function translate(lang: Lang, key: MessageKey, params?: Record<string, string | number>): string {
  let text = LANGS[lang][key] ?? en[key]
  if (params) for (const [k, v] of Object.entries(params)) text = text.replace(`{${k}}`, String(v))
  return text
}

export function useI18n() {
  const prefs = usePrefs()
  const lang = computed(() => prefs.lang)
  const t = (key: MessageKey, params?: Record<string, string | number>) => translate(prefs.lang, key, params)
  return { t, lang }
}

export type { MessageKey }

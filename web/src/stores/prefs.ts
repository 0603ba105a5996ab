// Theme and language, remembered in localStorage.
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import type { Lang } from '../i18n'

export type Theme = 'light' | 'dark'
const KEY = 'hostpulse.prefs'

function initial(): { theme: Theme; lang: Lang } {
  let saved: Partial<{ theme: Theme; lang: Lang }> = {}
  try {
    saved = JSON.parse(localStorage.getItem(KEY) ?? '{}')
  } catch {
    saved = {}
  }
  const dark = typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches
  const browserKo = typeof navigator !== 'undefined' && navigator.language?.startsWith('ko')
  return {
    theme: saved.theme === 'dark' || saved.theme === 'light' ? saved.theme : dark ? 'dark' : 'light',
    lang: saved.lang === 'ko' || saved.lang === 'en' ? saved.lang : browserKo ? 'ko' : 'en',
  }
}

export const usePrefs = defineStore('prefs', () => {
  const start = initial()
  const theme = ref<Theme>(start.theme)
  const lang = ref<Lang>(start.lang)

  function apply() {
    if (typeof document === 'undefined') return
    document.documentElement.dataset.theme = theme.value
    document.documentElement.lang = lang.value
  }
  watch([theme, lang], () => {
    localStorage.setItem(KEY, JSON.stringify({ theme: theme.value, lang: lang.value }))
    apply()
  })
  apply()

  const toggleTheme = () => (theme.value = theme.value === 'dark' ? 'light' : 'dark')
  const setLang = (l: Lang) => (lang.value = l)
  return { theme, lang, toggleTheme, setLang }
})

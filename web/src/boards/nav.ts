// The navigation's link to the boards: only its label, so the main bundle does not carry the
// boards pages' dictionary (boards/i18n.ts goes with the lazily loaded pages).
import { computed } from 'vue'
import { usePrefs } from '../stores/prefs'

const LABEL: Record<string, string> = { en: 'Boards', ko: '보드' }

export function useBoardsLabel() {
  const prefs = usePrefs()
  return computed(() => LABEL[prefs.lang] ?? LABEL.en)
}

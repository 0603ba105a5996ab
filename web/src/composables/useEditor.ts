// The save flow every editor shares (rules, channels, silences): check the form in the page,
// send it, put the server's 422 reasons next to the fields they name and the rest above the
// buttons. An editor supplies its checks, the field names the server may name, and the send.
import { computed, ref, type ComputedRef, type Ref } from 'vue'
import { problemsOf, type Problems } from '../lib/problems'

export interface EditorOptions<E> {
  /** The page's own checks: field name -> problem (no entry: fine). Re-run as the form changes. */
  check: () => Readonly<Record<string, E | undefined>>
  /** How a problem of `check` reads. */
  say: (problem: E) => string
  /** Field names the server's reasons may name (others go above the buttons). */
  fields: () => readonly string[]
  /** Send the form; resolve when saved. */
  send: () => Promise<unknown>
  /** After a save went through. */
  done: () => void
}

export interface Editor {
  tried: Ref<boolean>
  busy: Ref<boolean>
  server: Ref<Problems>
  /** The reason to show next to a field: the page's check first (once Save was pressed), then
   * the server's. */
  err: (field: string) => string | undefined
  /** The form-level reasons of the server. */
  formErrors: ComputedRef<string[]>
  save: () => Promise<void>
}

export function useEditor<E>(o: EditorOptions<E>): Editor {
  const tried = ref(false)
  const busy = ref(false)
  const server: Ref<Problems> = ref({ fields: {}, form: [] })
  const problems = computed(() => o.check())

  function err(field: string): string | undefined {
    const c = tried.value ? problems.value[field] : undefined
    return c !== undefined ? o.say(c) : server.value.fields[field]
  }

  async function save() {
    tried.value = true
    server.value = { fields: {}, form: [] }
    if (Object.values(problems.value).some((p) => p !== undefined)) return
    busy.value = true
    try {
      await o.send()
      o.done()
    } catch (e) {
      server.value = problemsOf(e, [...o.fields()])
    } finally {
      busy.value = false
    }
  }

  return { tried, busy, server, err, formErrors: computed(() => server.value.form), save }
}

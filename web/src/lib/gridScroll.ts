// Whether the grid around a component is being scrolled right now: cards put off work that can
// wait (reading sparkline history) until the user stops, so that scrolling through 10,000 hosts
// asks nothing for the cards that only flew by and every frame of the scroll stays short.
import { inject, provide, readonly, ref, type InjectionKey, type Ref } from 'vue'

/** How long after the last scroll event the grid counts as still. */
export const SCROLL_IDLE_MS = 150

const KEY: InjectionKey<Readonly<Ref<boolean>>> = Symbol('gridScrolling')

export interface Timers {
  set: (fn: () => void, ms: number) => unknown
  clear: (id: unknown) => void
}

const browserTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
}

/** For the grid: `scrolled()` on every scroll event; descendants see `scrolling` until the
 * grid has been still for `SCROLL_IDLE_MS`. */
export function provideGridScrolling(timers: Timers = browserTimers) {
  const scrolling = ref(false)
  let timer: unknown = null
  function scrolled() {
    if (timer !== null) timers.clear(timer)
    scrolling.value = true
    timer = timers.set(() => {
      timer = null
      scrolling.value = false
    }, SCROLL_IDLE_MS)
  }
  function stop() {
    if (timer !== null) timers.clear(timer)
    timer = null
    scrolling.value = false
  }
  provide(KEY, readonly(scrolling))
  return { scrolling, scrolled, stop }
}

/** Whether the grid around this component is scrolling (never, outside a grid). */
export function useGridScrolling(): Readonly<Ref<boolean>> {
  return inject(KEY, ref(false))
}

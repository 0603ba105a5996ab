// Gathers items that arrive between two frames and hands them over once, just before the next
// paint: a burst of live frames costs one store update and one render, not one each.

export interface FrameClock {
  request: (fn: () => void) => unknown
  cancel: (id: unknown) => void
  /** True while the page is not shown (no frames come then: hand items over at once). */
  hidden: () => boolean
}

const browserClock: FrameClock = {
  request: (fn) => requestAnimationFrame(fn),
  cancel: (id) => cancelAnimationFrame(id as number),
  hidden: () => document.visibilityState === 'hidden',
}

export interface FrameBatch<T> {
  push: (items: T[]) => void
  /** Hand over what is waiting now (and cancel the frame asked for). */
  flush: () => void
  /** Drop what is waiting (the consumer went away). */
  cancel: () => void
}

export function frameBatch<T>(apply: (items: T[]) => void, clock: FrameClock = browserClock): FrameBatch<T> {
  let waiting: T[] = []
  let frame: unknown = null

  function flush() {
    if (frame !== null) clock.cancel(frame)
    frame = null
    const items = waiting
    waiting = []
    if (items.length) apply(items)
  }

  return {
    push(items) {
      for (const it of items) waiting.push(it)
      // a hidden page gets no frames: what waits would only pile up
      if (clock.hidden()) flush()
      else if (frame === null) frame = clock.request(() => {
        frame = null
        flush()
      })
    },
    flush,
    cancel() {
      if (frame !== null) clock.cancel(frame)
      frame = null
      waiting = []
    },
  }
}

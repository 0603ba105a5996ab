import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h, nextTick } from 'vue'
import { createMemoryHistory } from 'vue-router'
import type { HostOut } from '../api/types'
import HostCard from '../components/HostCard.vue'
import { makeRouter } from '../router'
import { useFleet } from '../stores/fleet'
import { SCROLL_IDLE_MS, provideGridScrolling, useGridScrolling, type Timers } from './gridScroll'

function fakeTimers() {
  const due = new Map<number, () => void>()
  let next = 0
  const timers: Timers = {
    set: (fn) => (due.set(++next, fn), next),
    clear: (id) => void due.delete(id as number),
  }
  const fire = () => {
    const fns = [...due.values()]
    due.clear()
    fns.forEach((fn) => fn())
  }
  return { timers, fire, pending: () => due.size }
}

describe('provideGridScrolling', () => {
  it('is scrolling from a scroll event until the grid has been still for a while', () => {
    const t = fakeTimers()
    let grid!: ReturnType<typeof provideGridScrolling>
    let seen!: ReturnType<typeof useGridScrolling>
    const Child = defineComponent({ setup: () => ((seen = useGridScrolling()), () => h('i')) })
    mount(defineComponent({ setup: () => ((grid = provideGridScrolling(t.timers)), () => h(Child)) }))
    expect(seen.value).toBe(false)
    grid.scrolled()
    grid.scrolled()
    expect(seen.value).toBe(true)
    expect(t.pending()).toBe(1) // each scroll event restarts the one timer
    t.fire()
    expect(seen.value).toBe(false)
    grid.scrolled()
    grid.stop()
    expect(seen.value).toBe(false)
    expect(t.pending()).toBe(0)
  })

  it('is never scrolling outside a grid', () => {
    let seen!: ReturnType<typeof useGridScrolling>
    mount(defineComponent({ setup: () => ((seen = useGridScrolling()), () => h('i')) }))
    expect(seen.value).toBe(false)
  })
})

describe('HostCard in a scrolling grid', () => {
  const HOST = {
    host_id: 'web-1', hostname: 'web-1.example', status: 'online', last_seen_ms: 0, first_seen_ms: 0, interval_seconds: 5,
    os: '', kernel: '', arch: '', cpu_model: '', boot_time: 0, logical_cores: 1, memory_bytes: 0, labels: {}, agent_version: '', unsupported: [],
    online_within_seconds: 10, stale_within_seconds: 50,
  } as HostOut

  beforeEach(() => {
    setActivePinia(createPinia())
    vi.useFakeTimers()
  })
  afterEach(() => vi.useRealTimers())

  it('reads its sparkline history only once the grid has stopped scrolling', async () => {
    const fleet = useFleet()
    const fill = vi.spyOn(fleet, 'fillSparklines').mockResolvedValue()
    let grid!: ReturnType<typeof provideGridScrolling>
    const Grid = defineComponent({
      setup: () => ((grid = provideGridScrolling()), () => h(HostCard, { host: HOST })),
    })
    mount(Grid, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    for (let i = 0; i < 20; i++) {
      // a scroll event every frame for 20 frames of 50 ms: a second, far past the dwell
      grid.scrolled()
      await vi.advanceTimersByTimeAsync(50)
    }
    expect(fill).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(SCROLL_IDLE_MS + 250)
    await nextTick()
    expect(fill).toHaveBeenCalledTimes(1)
    expect(fill.mock.calls[0][0].host_id).toBe('web-1')
  })
})

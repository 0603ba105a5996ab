import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

// uPlot draws on a canvas (not in happy-dom): a stand-in that counts what the chart asks of it
const drawn = vi.hoisted(() => ({ built: 0, resized: [] as number[] }))
vi.mock('uplot', () => ({
  default: class {
    width: number
    height: number
    over = document.createElement('div')
    series: unknown[]
    constructor(opts: { width: number; height: number; series: unknown[] }) {
      drawn.built++
      this.width = opts.width
      this.height = opts.height
      this.series = opts.series
    }
    setSize({ width, height }: { width: number; height: number }) {
      drawn.resized.push(width)
      this.width = width
      this.height = height
    }
    setData() {}
    destroy() {}
  },
}))

let observed: (() => void) | null = null
class FakeObserver {
  constructor(cb: () => void) {
    observed = cb
  }
  observe() {}
  disconnect() {}
}

beforeEach(() => {
  setActivePinia(createPinia())
  drawn.built = 0
  drawn.resized = []
  vi.stubGlobal('ResizeObserver', FakeObserver)
})
afterEach(() => vi.unstubAllGlobals())

describe('time chart', () => {
  it('is drawn once at its size, and again only when its width changes', async () => {
    const { default: TimeChart } = await import('./TimeChart.vue')
    const w = mount(TimeChart, { props: { ts: [1000, 2000], values: [[1, 2]], series: [{ label: 'a', color: '#000' }], height: 120 } })
    const box = w.find('.chart').element as HTMLElement
    expect(drawn.built).toBe(1)
    // the observer's first call, at the size the chart was built at: nothing to redraw
    observed?.()
    expect(drawn.resized).toEqual([])
    Object.defineProperty(box, 'clientWidth', { configurable: true, value: 640 })
    observed?.()
    observed?.()
    expect(drawn.resized).toEqual([640])
    w.unmount()
  })
})

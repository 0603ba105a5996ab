import { describe, expect, it } from 'vitest'
import { frameBatch, type FrameClock } from './frameBatch'

function fakeClock() {
  const frames = new Map<number, () => void>()
  let next = 1
  let hidden = false
  const clock: FrameClock = {
    request: (fn) => {
      frames.set(next, fn)
      return next++
    },
    cancel: (id) => frames.delete(id as number),
    hidden: () => hidden,
  }
  return {
    clock,
    pending: () => frames.size,
    paint() {
      const due = [...frames.values()]
      frames.clear()
      due.forEach((fn) => fn())
    },
    hide: (h: boolean) => (hidden = h),
  }
}

describe('frameBatch', () => {
  it('hands everything that came between two frames over once, in order', () => {
    const c = fakeClock()
    const calls: number[][] = []
    const b = frameBatch<number>((items) => calls.push(items), c.clock)
    b.push([1, 2])
    b.push([3])
    b.push([4])
    expect(calls).toEqual([])
    expect(c.pending()).toBe(1) // one frame asked for, however many pushes
    c.paint()
    expect(calls).toEqual([[1, 2, 3, 4]])
    c.paint()
    expect(calls).toHaveLength(1)
    b.push([5])
    c.paint()
    expect(calls).toEqual([[1, 2, 3, 4], [5]])
  })

  it('applies at once while the page is hidden (no frames come then)', () => {
    const c = fakeClock()
    const calls: number[][] = []
    const b = frameBatch<number>((items) => calls.push(items), c.clock)
    b.push([1])
    c.hide(true)
    b.push([2])
    expect(calls).toEqual([[1, 2]])
    expect(c.pending()).toBe(0)
  })

  it('flush hands over what waits now; cancel drops it', () => {
    const c = fakeClock()
    const calls: number[][] = []
    const b = frameBatch<number>((items) => calls.push(items), c.clock)
    b.push([1])
    b.flush()
    expect(calls).toEqual([[1]])
    expect(c.pending()).toBe(0)
    b.push([2])
    b.cancel()
    c.paint()
    expect(calls).toEqual([[1]])
  })
})

import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Widget } from './api'
import BoardGrid from './BoardGrid.vue'

const w = (id: string, x: number, y: number, width: number, h: number): Widget => ({ id, type: 'hosts', title: id, x, y, w: width, h })
const layout = [w('a', 0, 0, 6, 2), w('b', 6, 0, 6, 2)]

function pointer(el: Element, type: string, x: number, y: number) {
  el.dispatchEvent(new PointerEvent(type, { clientX: x, clientY: y, button: 0, pointerId: 1, bubbles: true }))
}

// happy-dom lays nothing out: the grid is given the width of a desktop page (1208 px: columns of
// 93.3 px and a step of 101.3 px with the 8 px gaps)
const clientWidth = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientWidth')

describe('BoardGrid', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    Object.defineProperty(HTMLElement.prototype, 'clientWidth', { configurable: true, get: () => 1208 })
  })
  afterEach(() => {
    if (clientWidth) Object.defineProperty(HTMLElement.prototype, 'clientWidth', clientWidth)
  })

  it('a drag on the title bar moves the widget by whole cells, and a click moves nothing', async () => {
    const grid = mount(BoardGrid, { props: { widgets: layout, editing: true }, attachTo: document.body })
    const handle = grid.get('[data-widget="b"] [data-testid=widget-handle]').element
    pointer(handle, 'pointerdown', 500, 20)
    pointer(handle, 'pointerup', 500, 20)
    expect(grid.emitted('layout')).toBeUndefined()
    pointer(handle, 'pointerdown', 500, 20)
    pointer(handle, 'pointermove', 500 - 610, 20 + 140)
    await grid.vm.$nextTick()
    expect(grid.get('[data-widget="b"]').attributes('data-x')).toBe('0')
    pointer(handle, 'pointerup', 500 - 610, 20 + 140)
    const [[moved]] = grid.emitted('layout') as [[Widget[]]]
    expect(moved.find((x) => x.id === 'b')).toMatchObject({ x: 0, y: 2 })
    grid.unmount()
  })

  it('read-only: no handles, and a drag changes nothing', () => {
    const grid = mount(BoardGrid, { props: { widgets: layout, editing: false }, attachTo: document.body })
    expect(grid.find('[data-testid=widget-resize]').exists()).toBe(false)
    expect(grid.find('[data-testid=widget-settings]').exists()).toBe(false)
    const handle = grid.get('[data-widget="b"] [data-testid=widget-handle]').element
    pointer(handle, 'pointerdown', 500, 20)
    pointer(handle, 'pointermove', 0, 200)
    pointer(handle, 'pointerup', 0, 200)
    expect(grid.emitted('layout')).toBeUndefined()
    grid.unmount()
  })
})

import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import Sparkline from './Sparkline.vue'

const line = (w: ReturnType<typeof mount>) => w.findAll('path').at(-1)?.attributes('d') ?? ''
const ys = (d: string) => d.split(/[ML]/).filter(Boolean).map((p) => Number(p.split(' ')[1]))

describe('Sparkline', () => {
  it('draws one point per value, scaled to max, with the area under it', () => {
    const w = mount(Sparkline, { props: { values: [0, 50, 100, 150], max: 100, width: 120, height: 28 } })
    expect(w.attributes('data-points')).toBe('4')
    const d = line(w)
    expect(d.startsWith('M0.0 27.0')).toBe(true) // 0 at the bottom (one pixel above the edge)
    expect(ys(d)).toEqual([27, 14, 1, 1]) // values above max stay at the top
    expect(d.split('L').at(-1)).toBe('120.0 1.0') // the last point at the right edge
    expect(w.findAll('path')[0].attributes('d')).toBe(`${d}L120 28L0 28Z`)
  })

  it('draws nothing below two points, and redraws when values grew in place (rev)', async () => {
    const values = [10]
    const w = mount(Sparkline, { props: { values, max: 100, rev: 1 } })
    expect(w.findAll('path')).toHaveLength(0)
    values.push(20, 30)
    await w.setProps({ rev: 2 })
    expect(w.attributes('data-points')).toBe('3')
    expect(ys(line(w))).toHaveLength(3)
  })
})

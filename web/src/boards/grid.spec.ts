import { describe, expect, it } from 'vitest'
import { cellDelta, COLS, compact, fit, freeSpot, move, overlaps, resize, rows, type Box } from './grid'

const b = (id: string, x: number, y: number, w: number, h: number): Box => ({ id, x, y, w, h })
const noOverlap = (l: Box[]) => l.every((a) => l.every((c) => !overlaps(a, c)))
const at = (l: Box[], id: string) => l.find((x) => x.id === id)

describe('grid', () => {
  const layout = [b('a', 0, 0, 6, 2), b('c', 6, 0, 6, 2), b('d', 0, 2, 12, 3)]

  it('moving onto a widget pushes it down, and nothing overlaps', () => {
    const next = move(layout, 'd', 0, 0)
    expect(at(next, 'd')).toMatchObject({ x: 0, y: 0 })
    expect(at(next, 'a')?.y).toBe(3)
    expect(at(next, 'c')?.y).toBe(3)
    expect(noOverlap(next)).toBe(true)
  })

  it('widgets float up into the space a moved widget left', () => {
    const next = compact(move(layout, 'a', 6, 5))
    expect(at(next, 'c')).toMatchObject({ x: 6, y: 0 })
    expect(at(next, 'd')).toMatchObject({ y: 2 })
    expect(at(next, 'a')).toMatchObject({ x: 6, y: 5 })
    expect(noOverlap(next)).toBe(true)
  })

  it('keeps widgets inside the 12 columns', () => {
    expect(at(move(layout, 'a', 10, 0), 'a')).toMatchObject({ x: 6, w: 6 })
    expect(at(move(layout, 'a', -3, -3), 'a')).toMatchObject({ x: 0, y: 0 })
    expect(at(resize(layout, 'c', 9, 1), 'c')).toMatchObject({ w: 6, h: 1 })
    expect(at(resize(layout, 'a', 0, 0), 'a')).toMatchObject({ w: 1, h: 1 })
    expect(fit(b('z', 3.4, 1.6, 40, 99))).toEqual(b('z', 0, 2, COLS, 20))
  })

  it('resizing wider pushes the neighbour below', () => {
    const next = resize(layout, 'a', 8, 2)
    expect(at(next, 'a')).toMatchObject({ w: 8 })
    expect(noOverlap(next)).toBe(true)
    expect(at(next, 'c')!.y).toBeGreaterThanOrEqual(2)
  })

  it('finds the first free place for a new widget', () => {
    expect(freeSpot([b('a', 0, 0, 6, 2)], 6, 2)).toEqual({ x: 6, y: 0 })
    expect(freeSpot(layout, 3, 2)).toEqual({ x: 0, y: 5 })
    expect(freeSpot([], 12, 4)).toEqual({ x: 0, y: 0 })
    expect(rows(layout)).toBe(5)
  })

  it('turns pixels into cells', () => {
    // 1208 px wide, 8 px gaps: columns of 93.3 px, a step of 101.3 px; rows of 60 + 8
    expect(cellDelta(102 * 3 + 20, 68 * 2 - 20, 1208, 60, 8)).toEqual({ dx: 3, dy: 2 })
    expect(cellDelta(-40, 20, 1208, 60, 8)).toEqual({ dx: 0, dy: 0 })
  })

  it('any sequence of moves leaves no overlap', () => {
    let l: Box[] = Array.from({ length: 8 }, (_, i) => b(`w${i}`, (i % 3) * 4, Math.floor(i / 3) * 2, 4, 2))
    let seed = 7
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
    for (let i = 0; i < 200; i++) {
      const id = `w${rnd(8)}`
      l = i % 2 ? move(l, id, rnd(12), rnd(10)) : resize(l, id, 1 + rnd(12), 1 + rnd(5))
      expect(noOverlap(l)).toBe(true)
    }
    expect(noOverlap(compact(l))).toBe(true)
  })
})

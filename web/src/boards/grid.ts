// The board's grid, as pure functions over a layout (the widgets' x, y, w, h in cells): 12
// columns, rows of fixed height. Moving or resizing a widget pushes the ones it lands on down,
// then everything floats up into free space (a board never has holes nobody made), so any drag
// gives a layout without overlaps. BoardGrid.vue turns pointer movements into these calls.
export const COLS = 12
export const MAX_H = 20
export const MAX_ROW = 500

export interface Box {
  id: string
  x: number
  y: number
  w: number
  h: number
}

export function overlaps(a: Box, b: Box): boolean {
  return a.id !== b.id && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v))

/** The box kept inside the grid (width first, then the column it starts at). */
export function fit<B extends Box>(b: B): B {
  const w = clamp(Math.round(b.w), 1, COLS)
  const h = clamp(Math.round(b.h), 1, MAX_H)
  return { ...b, w, h, x: clamp(Math.round(b.x), 0, COLS - w), y: clamp(Math.round(b.y), 0, MAX_ROW) }
}

/** Every box as high up as it can go without overlapping one above it (top to bottom, the
 *  `pinned` box first at its own row, so a box being dragged stays under the pointer). */
export function compact<B extends Box>(layout: readonly B[], pinned?: string): B[] {
  const order = [...layout].sort((a, b) => (a.id === pinned ? -1 : b.id === pinned ? 1 : a.y - b.y || a.x - b.x))
  const placed: B[] = []
  for (const box of order) {
    let b = { ...box }
    if (b.id !== pinned) {
      while (b.y > 0 && !placed.some((p) => overlaps({ ...b, y: b.y - 1 }, p))) b = { ...b, y: b.y - 1 }
    }
    while (placed.some((p) => overlaps(b, p))) b = { ...b, y: b.y + 1 }
    placed.push(b)
  }
  const byId = new Map(placed.map((b) => [b.id, b]))
  return layout.map((b) => byId.get(b.id) as B)
}

function update<B extends Box>(layout: readonly B[], id: string, change: Partial<Box>): B[] {
  const next = layout.map((b) => (b.id === id ? fit({ ...b, ...change }) : { ...b }))
  return compact(next, id)
}

/** `id` moved to column x, row y. */
export function move<B extends Box>(layout: readonly B[], id: string, x: number, y: number): B[] {
  return update(layout, id, { x, y })
}

/** `id` made w columns wide and h rows high (from its top-left corner). */
export function resize<B extends Box>(layout: readonly B[], id: string, w: number, h: number): B[] {
  const b = layout.find((x) => x.id === id)
  if (!b) return [...layout]
  return update(layout, id, { w: clamp(w, 1, COLS - b.x), h })
}

/** Where a new w x h box goes: the first free place, row by row, left to right. */
export function freeSpot(layout: readonly Box[], w: number, h: number): { x: number; y: number } {
  const width = clamp(w, 1, COLS)
  for (let y = 0; y <= MAX_ROW; y++) {
    for (let x = 0; x + width <= COLS; x++) {
      const probe = { id: '\u0000new', x, y, w: width, h }
      if (!layout.some((b) => overlaps(probe, b))) return { x, y }
    }
  }
  return { x: 0, y: MAX_ROW }
}

/** Rows the layout covers (the grid's height). */
export function rows(layout: readonly Box[]): number {
  return layout.reduce((m, b) => Math.max(m, b.y + b.h), 0)
}

/** A pointer movement in pixels as whole cells, for a grid `width` px wide. */
export function cellDelta(dxPx: number, dyPx: number, width: number, rowPx: number, gapPx: number): { dx: number; dy: number } {
  const colPx = (width - gapPx * (COLS - 1)) / COLS + gapPx
  // + 0: no -0 for a small movement left or up
  return { dx: Math.round(dxPx / colPx) + 0, dy: Math.round(dyPx / (rowPx + gapPx)) + 0 }
}

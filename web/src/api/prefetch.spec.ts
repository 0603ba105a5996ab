import { describe, expect, it } from 'vitest'
import { takePrefetchedBoard } from './prefetch'

const json = (body: unknown, status = 200) => Promise.resolve(new Response(JSON.stringify(body), { status }))

describe('prefetched board', () => {
  it('is handed over once, to the page of that board only', async () => {
    window.__hpBoard = { id: 'b1', resp: json({ id: 'b1', name: 'ops' }) }
    expect(await takePrefetchedBoard('b1')).toEqual({ id: 'b1', name: 'ops' })
    expect(await takePrefetchedBoard('b1')).toBeNull()
    window.__hpBoard = { id: 'b1', resp: json({ id: 'b1' }) }
    expect(await takePrefetchedBoard('b2')).toBeNull()
    expect(window.__hpBoard).toBeUndefined()
  })

  it('is null when it failed (the page asks again, renewing the session)', async () => {
    window.__hpBoard = { id: 'b1', resp: json({ detail: 'authentication required' }, 401) }
    expect(await takePrefetchedBoard('b1')).toBeNull()
    window.__hpBoard = { id: 'b1', resp: Promise.resolve(null) }
    expect(await takePrefetchedBoard('b1')).toBeNull()
  })
})

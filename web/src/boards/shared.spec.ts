import { beforeEach, describe, expect, it } from 'vitest'
import { forgetShared, shared } from './shared'

describe('shared requests', () => {
  beforeEach(forgetShared)

  it('one request per key, whoever asks', async () => {
    let calls = 0
    const fetch = async () => ++calls
    const [a, b] = await Promise.all([shared('current 1 web-1', fetch), shared('current 1 web-1', fetch)])
    expect([a, b, calls]).toEqual([1, 1, 1])
    expect(await shared('current 2 web-1', fetch)).toBe(2) // a refresh (another range end) asks again
  })

  it('a failure is not kept', async () => {
    let calls = 0
    const failing = async () => {
      calls++
      throw new Error('503')
    }
    await expect(shared('k', failing)).rejects.toThrow('503')
    await expect(shared('k', failing)).rejects.toThrow('503')
    expect(calls).toBe(2)
  })
})

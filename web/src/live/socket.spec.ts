import { describe, expect, it } from 'vitest'
import { batch, fleetFrame, heartbeatFrame, samplesFrame, subscribedFrame, summary } from '../test/frames'
import { ScriptedSocket } from '../test/scriptedSocket'
import { LiveSocket, type ConnState, type Timers } from './socket'

class ManualTimers implements Timers {
  now = 0
  private seq = 0
  private pending = new Map<number, { at: number; fn: () => void }>()
  set = (fn: () => void, ms: number) => {
    const id = ++this.seq
    this.pending.set(id, { at: this.now + ms, fn })
    return id
  }
  clear = (id: unknown) => {
    this.pending.delete(id as number)
  }
  advance(ms: number) {
    const until = this.now + ms
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      this.pending.delete(due[0])
      this.now = due[1].at
      due[1].fn()
    }
    this.now = until
  }
}

function setup() {
  ScriptedSocket.all = []
  const timers = new ManualTimers()
  const states: ConnState[] = []
  const resumed: number[] = []
  const hosts: string[] = []
  const fleet: string[] = []
  const socket = new LiveSocket({
    url: 'ws://test/api/v1/ws',
    WebSocketImpl: ScriptedSocket as unknown as typeof WebSocket,
    timers,
    random: () => 0.5,
    minDelayMs: 100,
    maxDelayMs: 1000,
    handlers: {
      state: (s) => states.push(s),
      resumed: (ms) => resumed.push(ms),
      samples: (b) => hosts.push(b.host?.hostId ?? ''),
      fleet: (h) => fleet.push(...h.map((x) => x.hostId)),
    },
  })
  return { socket, timers, states, resumed, hosts, fleet, last: () => ScriptedSocket.all.at(-1) as ScriptedSocket }
}

describe('LiveSocket', () => {
  it('subscribes on open and hands decoded frames to the handlers', () => {
    const s = setup()
    s.socket.subscribe(['b', 'a', 'a'], true)
    s.socket.start()
    const ws = s.last()
    expect(ws.binaryType).toBe('arraybuffer')
    ws.open()
    expect(JSON.parse(ws.sent.at(-1) as string)).toEqual({ hosts: ['a', 'b'], fleet: true })
    ws.feed(subscribedFrame(1))
    expect(s.socket.state).toBe('live')
    ws.feed(samplesFrame(batch('a', [[1000, { cpu_busy_percent: 5 }]])))
    ws.feed(fleetFrame([summary('a', 1000, 5), summary('b', 1000, 7)]))
    expect(s.hosts).toEqual(['a'])
    expect(s.fleet).toEqual(['a', 'b'])
    s.socket.subscribe(['c'], false)
    expect(JSON.parse(ws.sent.at(-1) as string)).toEqual({ hosts: ['c'], fleet: false })
  })

  it('reconnects with growing, capped delays and reports the resume point', () => {
    const s = setup()
    s.socket.start()
    s.last().open()
    s.last().feed(subscribedFrame(1))
    s.last().feed(samplesFrame(batch('a', [[5000, { cpu_busy_percent: 5 }]])))
    s.last().drop()
    expect(s.socket.state).toBe('reconnecting')
    expect(ScriptedSocket.all.length).toBe(1)
    s.timers.advance(s.socket.delayFor(1) - 1)
    expect(ScriptedSocket.all.length).toBe(1)
    s.timers.advance(1)
    expect(ScriptedSocket.all.length).toBe(2)
    s.last().drop() // the server is still down
    s.timers.advance(s.socket.delayFor(2))
    expect(ScriptedSocket.all.length).toBe(3)
    expect(s.socket.delayFor(2)).toBeGreaterThan(s.socket.delayFor(1))
    expect(s.socket.delayFor(20)).toBeLessThanOrEqual(1000)
    s.last().open()
    expect(JSON.parse(s.last().sent[0])).toEqual({ hosts: [], fleet: false })
    expect(s.resumed).toEqual([])
    s.last().feed(subscribedFrame(1))
    // back-fill from the newest sample seen before the link broke
    expect(s.resumed).toEqual([5000])
    expect(s.states).toEqual(['connecting', 'live', 'reconnecting', 'live'])
  })

  it('treats a silent link (no heartbeat) as dead and reconnects', () => {
    const s = setup()
    s.socket.start()
    const first = s.last()
    first.open()
    first.feed(subscribedFrame(1)) // heartbeat every 1 s; silence limit 2.5 s
    s.timers.advance(2000)
    first.feed(heartbeatFrame(123_000))
    s.timers.advance(2000)
    expect(first.closed).toBeNull()
    s.timers.advance(600)
    expect(first.closed).toBe(4000)
    expect(s.socket.state).toBe('reconnecting')
    s.timers.advance(s.socket.delayFor(1))
    expect(ScriptedSocket.all.length).toBe(2)
    s.last().open()
    s.last().feed(subscribedFrame(1))
    expect(s.resumed).toEqual([123_000])
  })

  it('stops for good: no reconnect after stop()', () => {
    const s = setup()
    s.socket.start()
    s.last().open()
    s.socket.stop()
    expect(s.last().closed).toBe(1000)
    s.last().drop()
    s.timers.advance(60_000)
    expect(ScriptedSocket.all.length).toBe(1)
    expect(s.socket.state).toBe('stopped')
  })
})

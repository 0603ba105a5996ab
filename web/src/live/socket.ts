// The live WebSocket: subscribe, decode LiveFrames, notice silence (no heartbeat), reconnect with
// backoff, and tell the caller from when to back-fill after a reconnect.
import { fromBinary } from '@bufbuild/protobuf'
import { LiveFrameSchema, type AlertEvents, type HostSummary } from '../gen/hostpulse/v1/live_pb'
import type { HostBatch } from '../gen/hostpulse/v1/metrics_pb'

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'stopped'

export interface LiveHandlers {
  samples?: (batch: HostBatch) => void
  fleet?: (hosts: HostSummary[]) => void
  /** Alert events (subscribed with `alerts`): a snapshot first, then what changed. */
  alerts?: (events: AlertEvents) => void
  state?: (s: ConnState) => void
  /** After a reconnect: data from `sinceMs` (server time of the last frame) may be missing. */
  resumed?: (sinceMs: number) => void
  error?: (message: string) => void
}

export interface Timers {
  set: (fn: () => void, ms: number) => unknown
  clear: (id: unknown) => void
}

export interface LiveOptions {
  /** Where to connect; a function is asked again on every reconnect. */
  url: string | (() => string)
  /** The WebSocket subprotocols to offer, asked on every (re)connect: the access token goes
   * here as `bearer.<token>` (see `liveProtocols`), never in the URL where it gets logged. */
  protocols?: () => string[]
  handlers: LiveHandlers
  WebSocketImpl?: typeof WebSocket
  timers?: Timers
  now?: () => number
  random?: () => number
  minDelayMs?: number
  maxDelayMs?: number
  /** Silence (no frame at all) longer than this many heartbeats means the link is dead. */
  silenceFactor?: number
}

const defaultTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
}

export class LiveSocket {
  private ws: WebSocket | null = null
  private hosts: string[] = []
  private fleetWanted = false
  private alertsWanted = false
  private stateNow: ConnState = 'stopped'
  private attempt = 0
  private reconnectTimer: unknown = null
  private watchdog: unknown = null
  private heartbeatMs = 15_000
  private lastFrameServerMs = 0
  private wasLive = false
  private readonly o: Required<Omit<LiveOptions, 'handlers' | 'url' | 'protocols'>> & LiveOptions

  constructor(opts: LiveOptions) {
    this.o = {
      WebSocketImpl: globalThis.WebSocket,
      timers: defaultTimers,
      now: () => Date.now(),
      random: Math.random,
      minDelayMs: 500,
      maxDelayMs: 10_000,
      silenceFactor: 2.5,
      ...opts,
    }
  }

  get state(): ConnState {
    return this.stateNow
  }

  start(): void {
    if (this.stateNow !== 'stopped') return
    this.open('connecting')
  }

  stop(): void {
    this.setState('stopped')
    this.clearTimers()
    const ws = this.ws
    this.ws = null
    if (ws) ws.close(1000, 'bye')
  }

  subscribe(hosts: string[], fleet: boolean, alerts = false): void {
    const sorted = [...new Set(hosts)].sort()
    const same = sorted.join('\n') === this.hosts.join('\n') && fleet === this.fleetWanted && alerts === this.alertsWanted
    this.hosts = sorted
    this.fleetWanted = fleet
    this.alertsWanted = alerts
    // the same subscription again would only make the server send a new alert snapshot
    if (!same) this.sendSubscription()
  }

  /** Delay before reconnect attempt `n` (1-based): exponential with jitter, capped. */
  delayFor(n: number): number {
    const base = Math.min(this.o.maxDelayMs, this.o.minDelayMs * 2 ** (n - 1))
    return Math.round(base / 2 + (this.o.random() * base) / 2)
  }

  private open(state: ConnState): void {
    this.setState(state)
    const url = typeof this.o.url === 'function' ? this.o.url() : this.o.url
    const protocols = this.o.protocols?.() ?? []
    const ws = protocols.length ? new this.o.WebSocketImpl(url, protocols) : new this.o.WebSocketImpl(url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    ws.onopen = () => {
      if (this.ws !== ws) return
      this.sendSubscription()
      this.armWatchdog()
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return
      this.onFrame(ev.data)
    }
    ws.onclose = () => {
      if (this.ws !== ws) return
      this.ws = null
      this.scheduleReconnect()
    }
    ws.onerror = () => {
      /* onclose follows and reconnects */
    }
  }

  private onFrame(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return
    const frame = fromBinary(LiveFrameSchema, new Uint8Array(data))
    this.armWatchdog()
    const k = frame.kind
    switch (k.case) {
      case 'subscribed': {
        if (k.value.heartbeatSeconds > 0) this.heartbeatMs = k.value.heartbeatSeconds * 1000
        this.armWatchdog()
        if (this.stateNow !== 'live') {
          const resumed = this.wasLive
          this.attempt = 0
          this.wasLive = true
          this.setState('live')
          if (resumed && this.lastFrameServerMs > 0) this.o.handlers.resumed?.(this.lastFrameServerMs)
        }
        break
      }
      case 'heartbeat':
        this.lastFrameServerMs = Number(k.value.serverTimeMs)
        break
      case 'samples': {
        const snaps = k.value.snapshots
        if (snaps.length) this.noteTime(Number(snaps[snaps.length - 1].timestampMs))
        this.o.handlers.samples?.(k.value)
        break
      }
      case 'fleet':
        for (const h of k.value.hosts) this.noteTime(Number(h.timestampMs))
        this.o.handlers.fleet?.(k.value.hosts)
        break
      case 'alerts':
        this.o.handlers.alerts?.(k.value)
        break
      case 'error':
        this.o.handlers.error?.(k.value.message)
        break
    }
  }

  private noteTime(ms: number): void {
    if (ms > this.lastFrameServerMs) this.lastFrameServerMs = ms
  }

  private sendSubscription(): void {
    const ws = this.ws
    if (!ws || ws.readyState !== 1) return
    const msg: { hosts: string[]; fleet: boolean; alerts?: boolean } = { hosts: this.hosts, fleet: this.fleetWanted }
    if (this.alertsWanted) msg.alerts = true
    ws.send(JSON.stringify(msg))
  }

  private armWatchdog(): void {
    if (this.watchdog !== null) this.o.timers.clear(this.watchdog)
    this.watchdog = this.o.timers.set(() => {
      this.watchdog = null
      const ws = this.ws
      if (!ws || this.stateNow === 'stopped') return
      // silent for too long: treat as dead, reconnect at once
      this.ws = null
      ws.close(4000, 'heartbeat missed')
      this.scheduleReconnect()
    }, this.heartbeatMs * this.o.silenceFactor)
  }

  private scheduleReconnect(): void {
    if (this.stateNow === 'stopped') return
    this.clearTimers()
    this.attempt += 1
    this.setState('reconnecting')
    this.reconnectTimer = this.o.timers.set(() => {
      this.reconnectTimer = null
      if (this.stateNow !== 'stopped') this.open('reconnecting')
    }, this.delayFor(this.attempt))
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) this.o.timers.clear(this.reconnectTimer)
    if (this.watchdog !== null) this.o.timers.clear(this.watchdog)
    this.reconnectTimer = null
    this.watchdog = null
  }

  private setState(s: ConnState): void {
    if (s === this.stateNow) return
    this.stateNow = s
    this.o.handlers.state?.(s)
  }
}

/** ws(s)://<this origin>/api/v1/ws (protobuf frames). */
export function liveUrl(loc: Location = window.location): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${loc.host}/api/v1/ws`
}

/** The subprotocols that carry the access token: the server answers with `hostpulse`. */
export function liveProtocols(token: string | null | undefined): string[] {
  return token ? ['hostpulse', `bearer.${token}`] : ['hostpulse']
}

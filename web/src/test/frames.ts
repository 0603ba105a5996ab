// Builders of LiveFrames for the specs (the same encoding the server sends).
import { create, toBinary } from '@bufbuild/protobuf'
import { ActiveAlertSchema, HostSummarySchema, LiveFrameSchema, type ActiveAlert, type HostSummary } from '../gen/hostpulse/v1/live_pb'
import { HostBatchSchema, HostSchema, LabelSchema, SeriesDefSchema, SnapshotSchema } from '../gen/hostpulse/v1/metrics_pb'

export function batch(host: string, points: [number, Record<string, number>][], labels: Record<string, Record<string, string>> = {}) {
  const keys = [...new Set(points.flatMap(([, v]) => Object.keys(v)))]
  return create(HostBatchSchema, {
    host: create(HostSchema, { hostId: host, hostname: `${host}.test`, intervalSeconds: 1 }),
    series: keys.map((k) =>
      create(SeriesDefSchema, {
        metric: k.split('#')[0],
        labels: Object.entries(labels[k] ?? {}).map(([name, value]) => create(LabelSchema, { name, value })),
      }),
    ),
    snapshots: points.map(([ts, vals]) =>
      create(SnapshotSchema, {
        timestampMs: BigInt(ts),
        seriesIndex: Object.keys(vals).map((k) => keys.indexOf(k)),
        values: Object.values(vals),
      }),
    ),
  })
}

export function samplesFrame(b: ReturnType<typeof batch>): ArrayBuffer {
  return buf(toBinary(LiveFrameSchema, create(LiveFrameSchema, { kind: { case: 'samples', value: b } })))
}

export function summary(host: string, ts: number, cpu: number, extra: Partial<HostSummary> = {}): HostSummary {
  return create(HostSummarySchema, { hostId: host, hostname: host, timestampMs: BigInt(ts), intervalSeconds: 1, cpuPercent: cpu, ...extra })
}

export function fleetFrame(hosts: HostSummary[]): ArrayBuffer {
  return buf(toBinary(LiveFrameSchema, create(LiveFrameSchema, { kind: { case: 'fleet', value: { hosts } } })))
}

export function subscribedFrame(heartbeatSeconds = 1): ArrayBuffer {
  return buf(
    toBinary(LiveFrameSchema, create(LiveFrameSchema, { kind: { case: 'subscribed', value: { hosts: [], fleet: true, heartbeatSeconds } } })),
  )
}

export function heartbeatFrame(serverTimeMs: number): ArrayBuffer {
  return buf(toBinary(LiveFrameSchema, create(LiveFrameSchema, { kind: { case: 'heartbeat', value: { serverTimeMs: BigInt(serverTimeMs) } } })))
}

export function activeAlert(id: string, over: Partial<Omit<ActiveAlert, '$typeName' | '$unknown'>> = {}): ActiveAlert {
  return create(ActiveAlertSchema, {
    id, ruleId: 'cpu_high', ruleTitle: 'CPU usage high', host: 'web-1', hostName: 'web-1.test', state: 'firing', severity: 'critical',
    value: 97.5, pendingSinceMs: 1000n, firedAtMs: 2000n, ...over,
  })
}

export function alertsFrame(alerts: ActiveAlert[], ended: string[] = [], snapshot = false): ArrayBuffer {
  return buf(toBinary(LiveFrameSchema, create(LiveFrameSchema, { kind: { case: 'alerts', value: { alerts, ended, snapshot, serverTimeMs: 5000n } } })))
}

function buf(u: Uint8Array): ArrayBuffer {
  return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer
}

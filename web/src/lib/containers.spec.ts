import { describe, expect, it } from 'vitest'
import { containerRows, customMetrics } from './containers'
import { SeriesBuffer } from './series'

const web = { id: 'a1b2c3d4e5f6', name: 'web', image: 'nginx:1.27', runtime: 'docker' }
const db = { id: 'ffeeddccbbaa', name: 'db', image: 'postgres:16', runtime: 'podman' }

describe('containers table', () => {
  it('gathers each container\'s values, sums interfaces, takes the newest state', () => {
    const b = new SeriesBuffer()
    b.add('container_cpu_usage_percent', web, 1000, 12.5)
    b.add('container_cpu_usage_percent', db, 1000, 80)
    b.add('container_memory_usage_bytes', web, 1000, 256 << 20)
    b.add('container_spec_memory_limit_bytes', web, 1000, 1 << 30)
    b.add('container_memory_usage_bytes', db, 1000, 2 << 30)
    b.add('container_oom_events', db, 1000, 3)
    b.add('container_network_receive_bytes_per_second', { ...web, interface: 'eth0' }, 1000, 100)
    b.add('container_network_receive_bytes_per_second', { ...web, interface: 'eth1' }, 1000, 50)
    b.add('container_fs_writes_bytes_per_second', db, 1000, 4096)
    b.add('container_state', { ...web, state: 'running' }, 500, 1)
    b.add('container_state', { ...web, state: 'paused' }, 1000, 1)
    b.add('container_state', { ...db, state: 'running' }, 1000, 1)
    const rows = containerRows(b, 15_000)
    expect(rows.map((r) => r.name)).toEqual(['db', 'web']) // busiest first
    const [d, w] = rows
    expect(w).toMatchObject({ id: web.id, image: 'nginx:1.27', runtime: 'docker', state: 'paused', cpu: 12.5, rx: 150, memPct: 25 })
    expect(w.tx).toBeUndefined()
    expect(d).toMatchObject({ state: 'running', oom: 3, write: 4096, mem: 2 << 30 })
    expect(d.memPct).toBeUndefined() // no limit
  })

  it('drops a container that stopped reporting', () => {
    const b = new SeriesBuffer()
    b.add('container_cpu_usage_percent', web, 1000, 1)
    b.add('container_cpu_usage_percent', db, 100_000, 1)
    expect(containerRows(b, 15_000).map((r) => r.name)).toEqual(['db'])
    expect(containerRows(new SeriesBuffer(), 15_000)).toEqual([])
  })

  it('lists custom metrics with their series', () => {
    const b = new SeriesBuffer()
    b.add('custom:queue_depth', {}, 1, 7)
    b.add('custom:backup_age_seconds', { job: 'a' }, 1, 10)
    b.add('custom:backup_age_seconds', { job: 'b' }, 1, 20)
    b.add('cpu_busy_percent', {}, 1, 5)
    expect(customMetrics(b)).toEqual([
      { metric: 'custom:backup_age_seconds', series: 2, value: undefined },
      { metric: 'custom:queue_depth', series: 1, value: 7 },
    ])
  })
})

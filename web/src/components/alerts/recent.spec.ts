import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi } from '../../api'
import type { HistoryOut } from '../../api/alerts'
import { ApiClient } from '../../api/client'
import { makeRouter } from '../../router'
import { useAlerts } from '../../stores/alerts'
import RecentAlerts from './RecentAlerts.vue'

function row(id: number, to: HistoryOut['to_state'], host = 'web-1'): HistoryOut {
  return { id, alert_id: `a${id}`, rule_id: 'cpu_high', host, labels: { mountpoint: '/var' }, from_state: 'ok', to_state: to, severity: 'critical', value: 95, at_ms: 1000 }
}

let served: HistoryOut[] | number = []
let calls: string[] = []
beforeEach(() => {
  setActivePinia(createPinia())
  calls = []
  setApi(
    new ApiClient({
      fetch: async (input: RequestInfo | URL) => {
        const u = String(input)
        calls.push(u)
        if (u.includes('/alerts/history')) {
          return typeof served === 'number' ? new Response('{"detail":"no"}', { status: served }) : new Response(JSON.stringify(served))
        }
        return new Response('[]')
      },
    }),
  )
})
afterEach(() => vi.useRealTimers())

describe('RecentAlerts', () => {
  it('lists the newest transitions and re-reads them once per burst of pushed changes', async () => {
    vi.useFakeTimers()
    served = [row(2, 'firing'), row(1, 'resolved', 'db-1')]
    const w = mount(RecentAlerts, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    await flushPromises()
    const items = w.findAll('li')
    expect(items.map((i) => i.attributes('data-state'))).toEqual(['firing', 'resolved'])
    expect(items[0].text()).toContain('/var')
    const history = () => calls.filter((c) => c.includes('/alerts/history')).length
    expect(history()).toBe(1)
    expect(calls.find((c) => c.includes('/alerts/history'))).toContain('limit=5')
    const alerts = useAlerts()
    served = [row(3, 'firing', 'db-2'), ...served]
    alerts.changes++
    alerts.changes++
    alerts.changes++
    await vi.advanceTimersByTimeAsync(400)
    await flushPromises()
    expect(history()).toBe(2)
    expect(w.findAll('li')).toHaveLength(3)
  })

  it('stays hidden on a server without alerts, and retries after another failure', async () => {
    vi.useFakeTimers()
    served = 503
    const w = mount(RecentAlerts, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    await flushPromises()
    expect(w.find('[data-testid=recent-alerts]').exists()).toBe(false)
    served = 500
    const v = mount(RecentAlerts, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    await flushPromises()
    served = [row(1, 'firing')]
    await vi.advanceTimersByTimeAsync(5000)
    await flushPromises()
    expect(v.findAll('li')).toHaveLength(1)
  })
})

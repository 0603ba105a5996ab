import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import type { HostOut } from '../api/types'
import { translate } from '../i18n'
import { en } from '../i18n/en'
import { ko } from '../i18n/ko'
import { makeRouter } from '../router'
import { useFleet } from '../stores/fleet'
import { usePrefs } from '../stores/prefs'
import { summary } from '../test/frames'
import Gauge from './Gauge.vue'
import HostCard from './HostCard.vue'
import VirtualGrid from './VirtualGrid.vue'

beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  setApi(new ApiClient({ fetch: async () => new Response(JSON.stringify([HOST])) }))
})

const HOST: HostOut = {
  host_id: 'web-1', hostname: 'web-1.example', status: 'online', last_seen_ms: 0, first_seen_ms: 0, interval_seconds: 1,
  os: '', kernel: '', arch: '', cpu_model: '', boot_time: 0, logical_cores: 1, memory_bytes: 0, labels: {}, agent_version: '', unsupported: [],
  online_within_seconds: 2, stale_within_seconds: 10,
}

describe('HostCard', () => {
  it('shows live values, status and thresholds of its host', async () => {
    const fleet = useFleet()
    const router = makeRouter(createMemoryHistory())
    fleet.applySummaries([summary('web-1', 50_000, 93.25, { memoryPercent: 40, diskPercent: 81 })])
    fleet.tick(50_500)
    const w = mount(HostCard, { props: { host: HOST }, global: { plugins: [router] } })
    expect(w.text()).toContain('web-1.example')
    expect(w.find('.v-cpu').text()).toBe('93.3 %')
    expect(w.classes()).toContain('online')
    expect(w.find('.crit .v-cpu').exists()).toBe(true)
    expect(w.attributes('href')).toBe('/hosts/web-1')
    fleet.tick(50_000 + 20_000) // silent for 20 intervals
    await w.vm.$nextTick()
    expect(w.classes()).toContain('offline')
  })
})

describe('VirtualGrid', () => {
  it('renders only the rows in view', () => {
    const items = Array.from({ length: 1000 }, (_, i) => `h${i}`)
    const w = mount(VirtualGrid, {
      props: { items, itemKey: (s: unknown) => String(s), minWidth: 100, rowHeight: 100, gap: 0, overscan: 1 },
      slots: { default: '<span class="item">{{ params.item }}</span>' },
    })
    const rendered = w.findAll('.item').length
    expect(rendered).toBeGreaterThan(0)
    expect(rendered).toBeLessThan(200)
    expect(w.find('.space').attributes('style')).toContain('height')
  })
})

describe('Gauge', () => {
  it('clamps and colours by level', () => {
    expect(mount(Gauge, { props: { label: 'CPU', value: 95 } }).classes()).toContain('crit')
    expect(mount(Gauge, { props: { label: 'CPU', value: 85 } }).classes()).toContain('warn')
    const w = mount(Gauge, { props: { label: 'CPU', value: 140 } })
    expect(w.attributes('aria-valuenow')).toBe('100')
    expect(mount(Gauge, { props: { label: 'x', value: undefined } }).text()).toContain('–')
  })
})

describe('i18n and preferences', () => {
  it('has every English key in Korean and fills parameters', () => {
    expect(Object.keys(ko).sort()).toEqual(Object.keys(en).sort())
    expect(translate('ko', 'fleet.count', { shown: 3, total: 10 })).toBe('호스트 10개 중 3개')
    expect(translate('en', 'fleet.count', { shown: 3, total: 10 })).toBe('3 of 10 hosts')
  })

  it('applies and remembers theme and language', async () => {
    const prefs = usePrefs()
    prefs.setLang('ko')
    prefs.theme = 'light'
    prefs.toggleTheme()
    await Promise.resolve()
    expect(document.documentElement.dataset.theme).toBe('dark')
    expect(document.documentElement.lang).toBe('ko')
    expect(JSON.parse(localStorage.getItem('hostpulse.prefs') ?? '{}')).toEqual({ theme: 'dark', lang: 'ko' })
    setActivePinia(createPinia())
    expect(usePrefs().lang).toBe('ko')
  })
})

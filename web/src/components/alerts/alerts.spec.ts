import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi } from '../../api'
import { ApiClient } from '../../api/client'
import { makeRouter } from '../../router'
import { useAlertConfig } from '../../stores/alertConfig'
import { useAlerts } from '../../stores/alerts'
import { usePrefs } from '../../stores/prefs'
import { useSession } from '../../stores/session'
import { alert, fakeServer, type FakeServer } from '../../test/fakeServer'
import NavLinks from '../NavLinks.vue'
import ActiveAlerts from './ActiveAlerts.vue'
import ChannelList from './ChannelList.vue'
import RuleEditor from './RuleEditor.vue'
import RuleList from './RuleList.vue'

let srv: FakeServer
beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  usePrefs().setLang('en')
})

/** A user of this role on a server that enforces it. */
async function as(role: 'viewer' | 'editor' | 'admin') {
  srv = fakeServer({ role, username: `${role}-1`, active: [alert('a1'), alert('a2', { acked_by: 'zoe', acked_at_ms: Date.UTC(2026, 10, 22, 9, 30) })] })
  setApi(new ApiClient({ fetch: srv.fetch }))
  const session = useSession()
  session.user = { username: `${role}-1`, role }
  await session.probe()
}
const router = () => makeRouter(createMemoryHistory())
const post = () => srv.calls.filter((c) => c.method !== 'GET')

describe('active alerts', () => {
  it('lets an editor acknowledge, sending their name, and shows the ack to everybody', async () => {
    await as('editor')
    const w = mount(ActiveAlerts, { global: { plugins: [router()] } })
    await flushPromises()
    const rows = w.findAll('tbody tr')
    expect(rows.map((r) => r.attributes('data-alert'))).toEqual(['a1', 'a2'])
    expect(rows[0].text()).toContain('critical')
    expect(rows[0].text()).toContain('97.50')
    expect(rows[1].find('[data-testid=acked]').text()).toContain('Acknowledged by zoe')
    expect(rows[1].find('.ack-btn').exists()).toBe(false)
    await rows[0].find('.ack-btn').trigger('click')
    await flushPromises()
    expect(post()).toEqual([{ method: 'POST', path: '/alerts/active/a1/ack', body: { by: 'editor-1' } }])
    expect(w.find('[data-alert=a1] [data-testid=acked]').text()).toContain('Acknowledged by editor-1')
    w.unmount()
  })

  it('shows a viewer the alerts and acks but no acknowledge button', async () => {
    await as('viewer')
    const w = mount(ActiveAlerts, { global: { plugins: [router()] } })
    await flushPromises()
    expect(w.findAll('tbody tr').length).toBe(2)
    expect(w.find('.ack-btn').exists()).toBe(false)
    expect(w.text()).toContain('Acknowledged by zoe')
    w.unmount()
  })

  it('says so plainly when loading fails', async () => {
    await as('viewer')
    srv.alertsDown = 500
    const w = mount(ActiveAlerts, { global: { plugins: [router()] } })
    await flushPromises()
    expect(w.find('[role=alert]').text()).toContain('alerts are not running')
    w.unmount()
  })
})

describe('rules', () => {
  it('shows write controls to editors only', async () => {
    await as('viewer')
    await useAlertConfig().load()
    const viewer = mount(RuleList, { props: { hosts: [] }, global: { plugins: [router()] } })
    expect(viewer.find('[data-rule=cpu_high]').text()).toContain('cpu_busy_percent > ⚠ 80 / ‼ 90 for 2m')
    expect(viewer.find('[data-testid=new-rule]').exists()).toBe(false)
    expect(viewer.findAll('button').length).toBe(0)
    setActivePinia(createPinia())
    await as('editor')
    await useAlertConfig().load()
    const editor = mount(RuleList, { props: { hosts: [] }, global: { plugins: [router()] } })
    expect(editor.find('[data-testid=new-rule]').exists()).toBe(true)
    expect(editor.findAll('[data-rule=cpu_high] button').map((b) => b.text())).toEqual(['Edit', 'Delete'])
    await editor.find('[data-testid=new-rule]').trigger('click')
    expect(editor.find('[data-testid=rule-editor]').exists()).toBe(true)
  })

  it('checks the form before sending and puts each reason next to its field', async () => {
    await as('editor')
    await useAlertConfig().load()
    const w = mount(RuleEditor, { props: { rule: null, hosts: ['db-1', 'db-2'] }, global: { plugins: [router()] } })
    await w.find('input[name=id]').setValue('bad id')
    await w.find('input[name=warning]').setValue('90')
    await w.find('input[name=critical]').setValue('80')
    await w.find('input[name=for]').setValue('soon')
    await w.find('form').trigger('submit')
    const near = (name: string) => w.find(`[name=${name}]`).element.closest('.field')!.querySelector('.err')?.textContent
    expect(near('id')).toContain('Letters, digits')
    expect(near('critical')).toBe('Critical must be at or above warning (90) for this operator.')
    expect(near('for')).toContain('Not a duration')
    expect(post()).toEqual([])
    // fixed: it is sent, with the hosts picked
    await w.find('input[name=id]').setValue('cpu_very_high')
    await w.find('input[name=critical]').setValue('95')
    await w.find('input[name=for]').setValue('30s')
    await w.find('input[value=names]').setValue()
    // the host picker searches, and a click picks
    await w.find('[data-testid=host-picker] input[type=search]').setValue('db-2')
    expect(w.findAll('[data-testid=host-picker] button[data-host]').map((b) => b.attributes('data-host'))).toEqual(['db-2'])
    await w.find('[data-testid=host-picker] button[data-host=db-2]').trigger('click')
    await w.find('form').trigger('submit')
    await flushPromises()
    expect(post()).toHaveLength(1)
    expect(post()[0].body).toMatchObject({ id: 'cpu_very_high', metric: 'cpu_busy_percent', warning: 90, critical: 95, for: 30, hosts: { all: false, names: ['db-2'] } })
    expect(w.emitted('done')).toHaveLength(1)
    expect(useAlertConfig().rules.map((r) => r.rule.id)).toContain('cpu_very_high')
  })

  it("shows the server's refusal next to the field it names, or above the buttons", async () => {
    await as('editor')
    await useAlertConfig().load()
    const cfg = useAlertConfig()
    cfg.catalog = [...cfg.catalog, { key: 'nope', prom_name: '', subsystem: 'x', unit: '', kind: 'gauge', help: '', labels: [], rate_of: null }]
    const w = mount(RuleEditor, { props: { rule: null, hosts: [] }, global: { plugins: [router()] } })
    await w.find('input[name=id]').setValue('cpu_high')
    await w.find('input[name=warning]').setValue('1')
    await w.find('form').trigger('submit')
    await flushPromises()
    expect(w.find('[data-testid=rule-error]').text()).toBe("a rule with id 'cpu_high' already exists")
    await w.find('input[name=id]').setValue('fresh')
    await w.find('select[name=metric]').setValue('nope')
    await w.find('form').trigger('submit')
    await flushPromises()
    const metricField = w.find('select[name=metric]').element.closest('.field')!
    expect(metricField.querySelector('.err')?.textContent).toBe("unknown metric 'nope' (see hostpulse.catalog)")
    expect(w.emitted('done')).toBeUndefined()
  })
})

describe('channels', () => {
  it("sends a test and shows the server's answer on the channel's row", async () => {
    await as('editor')
    const cfg = useAlertConfig()
    await cfg.load()
    cfg.channels = [{ source: 'api', created_ms: 1, updated_ms: 1, channel: { id: 'ops', type: 'webhook', url: 'https://hooks.example.com/x' } }]
    const w = mount(ChannelList, { global: { plugins: [router()] } })
    await w.findAll('[data-channel=ops] button').find((b) => b.text() === 'Send test')!.trigger('click')
    await flushPromises()
    expect(post()).toEqual([{ method: 'POST', path: '/alerts/channels/ops/test', body: {} }])
    expect(w.find('[data-testid=test-result]').text()).toBe('Test failed: HTTP 500: down')
    expect(w.find('[data-testid=test-result]').classes()).toContain('error')
  })

  it('offers a viewer no test, edit or delete', async () => {
    await as('viewer')
    const cfg = useAlertConfig()
    cfg.channels = [{ source: 'api', created_ms: 1, updated_ms: 1, channel: { id: 'ops', type: 'webhook' } }]
    const w = mount(ChannelList, { global: { plugins: [router()] } })
    expect(w.findAll('button').length).toBe(0)
  })
})

describe('nav', () => {
  it('shows Settings to admins only, and the number of firing alerts', async () => {
    for (const role of ['viewer', 'editor', 'admin'] as const) {
      setActivePinia(createPinia())
      await as(role)
      await useAlerts().load()
      const w = mount(NavLinks, { global: { plugins: [router()] } })
      expect(w.find('[data-nav=settings]').exists()).toBe(role === 'admin')
      expect(w.find('[data-testid=alert-count]').text()).toBe('2')
      w.unmount()
    }
  })

  it("takes the role from the server's /auth/me over the one saved at login", async () => {
    srv = fakeServer({ role: 'editor', username: 'ada' })
    setApi(new ApiClient({ fetch: srv.fetch }))
    const session = useSession()
    session.user = { username: 'ada', role: 'admin' }
    expect(session.can('admin')).toBe(true)
    await session.probe()
    expect(session.user).toEqual({ username: 'ada', role: 'editor' })
    expect(session.can('admin')).toBe(false)
    expect(session.can('editor')).toBe(true)
    expect(session.actor).toBe('ada')
  })

  it('shows every alert control on a server without authentication, but not Settings', async () => {
    srv = fakeServer({ role: 'viewer', active: [alert('a1')] })
    const fetch = srv.fetch
    setApi(new ApiClient({ fetch: (i, init) => (i.endsWith('/auth/me') ? Promise.resolve(new Response('{"detail":"Not Found"}', { status: 404 })) : fetch(i, init)) }))
    const session = useSession()
    await session.probe()
    expect(session.authless).toBe(true)
    expect(session.can('editor')).toBe(true)
    expect(session.can('admin')).toBe(false)
    expect(session.actor).toBe('anonymous')
  })
})

vi.stubGlobal('confirm', () => true)

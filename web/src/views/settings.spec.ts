import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import { makeRouter } from '../router'
import { usePrefs } from '../stores/prefs'
import { useSession } from '../stores/session'
import { fakeServer, type FakeServer } from '../test/fakeServer'
import SettingsView from './SettingsView.vue'

let srv: FakeServer
const writes = () => srv.calls.filter((c) => c.method !== 'GET')
beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  usePrefs().setLang('en')
  vi.stubGlobal('confirm', () => true)
})

async function open(role: 'viewer' | 'editor' | 'admin') {
  srv = fakeServer({ role, username: 'ada' })
  setApi(new ApiClient({ fetch: srv.fetch }))
  const s = useSession()
  s.user = { username: 'ada', role }
  await s.probe()
  const w = mount(SettingsView, { global: { plugins: [makeRouter(createMemoryHistory())] } })
  await flushPromises()
  return w
}

describe('Settings', () => {
  it('shows non-admins an "admins only" page and asks the server nothing', async () => {
    for (const role of ['viewer', 'editor'] as const) {
      const w = await open(role)
      expect(w.find('[data-testid=admins-only]').text()).toContain('Admins only')
      expect(w.find('[data-testid=users]').exists()).toBe(false)
      expect(srv.calls.map((c) => c.path)).toEqual(['/auth/me'])
    }
  })

  it('adds a user only with a password of 12 characters or more, and changes roles', async () => {
    const w = await open('admin')
    expect(w.find('[data-user=ada]').text()).toContain('(you)')
    const form = w.find('[data-testid=add-user]')
    await form.find('[name=new-username]').setValue('bob')
    await form.find('[name=new-password]').setValue('elevenchars')
    await form.find('[name=new-role]').setValue('editor')
    await form.trigger('submit')
    expect(form.find('.err').text()).toBe('The password needs at least 12 characters.')
    expect(writes()).toEqual([])
    await form.find('[name=new-password]').setValue('twelve chars')
    await form.trigger('submit')
    await flushPromises()
    expect(writes()).toEqual([{ method: 'POST', path: '/users', body: { username: 'bob', password: 'twelve chars', role: 'editor' } }])
    expect(w.find('[data-user=bob]').exists()).toBe(true)
    await w.find('[data-user=bob] select').setValue('viewer')
    await flushPromises()
    expect(writes()[1]).toEqual({ method: 'PATCH', path: '/users/bob', body: { role: 'viewer' } })
    expect(w.text()).toContain('bob is now viewer.')
    // the server's refusal is shown plainly
    await w.find('[data-user=ada] .danger').trigger('click')
    await flushPromises()
    expect(w.find('[data-user=ada] [role=alert]').text()).toBe('cannot remove the last admin')
  })

  it('resets a password with the same minimum', async () => {
    const w = await open('admin')
    const row = () => w.find('[data-user=ada]')
    await row().findAll('button').find((b) => b.text() === 'Reset password')!.trigger('click')
    await row().find('input[type=password]').setValue('short')
    await row().find('.primary').trigger('click')
    expect(row().find('[role=alert]').text()).toContain('at least 12')
    expect(writes()).toEqual([])
    await row().find('input[type=password]').setValue('a-new-long-password')
    await row().find('.primary').trigger('click')
    await flushPromises()
    expect(writes()).toEqual([{ method: 'PATCH', path: '/users/ada', body: { password: 'a-new-long-password' } }])
  })

  it('creates an enrollment token and shows the exact command once, with a copy button', async () => {
    const writeText = vi.fn(async () => undefined)
    vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText } })
    const w = await open('admin')
    const panel = w.find('[data-testid=enrollment]')
    await panel.find('[name=enroll-host]').setValue('db-7')
    await panel.find('[name=enroll-ttl]').setValue('900')
    await panel.find('form').trigger('submit')
    await flushPromises()
    expect(writes()).toEqual([{ method: 'POST', path: '/enrollment-tokens', body: { host_id: 'db-7', ttl_seconds: 900, single_use: true } }])
    const install = w.find('[data-testid=install-command]').text()
    expect(install).toBe('curl -fsSL http://hp.test/install/agent.sh | sudo sh -s -- --token hpe_t1')
    const cmd = w.find('[data-testid=command]').text()
    expect(cmd).toBe('hostpulse agent --server http://hp.test --enroll hpe_t1')
    await w.find('[data-testid=enroll-command] button').trigger('click')
    await flushPromises()
    expect(writeText).toHaveBeenCalledWith(install)
    expect(w.find('[data-testid=enroll-command]').text()).toContain('Copied')
    expect(w.find('[data-token=t1]').text()).toContain('db-7')
    await w.findAll('[data-testid=enroll-command] button').find((b) => b.text() === 'Done')!.trigger('click')
    expect(w.find('[data-testid=command]').exists()).toBe(false)
    await w.find('[data-token=t1] .danger').trigger('click')
    await flushPromises()
    expect(w.find('[data-token=t1]').exists()).toBe(false)
    vi.unstubAllGlobals()
  })

  it('rotates an agent key showing the new key once, and revokes keys', async () => {
    const w = await open('admin')
    await w.findAll('[data-key=k1] button').find((b) => b.text() === 'Rotate')!.trigger('click')
    await flushPromises()
    expect(w.find('[data-testid=new-key-value]').text()).toBe('hpk_new1_secretsecret')
    expect(w.find('[data-key=k1]').text()).toContain('revoked')
    expect(w.find('[data-key=k2]').text()).toContain('hpk_new1…')
    await w.findAll('[data-testid=new-key] button').find((b) => b.text() === 'Done')!.trigger('click')
    expect(w.find('[data-testid=new-key]').exists()).toBe(false)
    await w.findAll('[data-key=k2] button').find((b) => b.text() === 'Revoke')!.trigger('click')
    await flushPromises()
    expect(writes().map((c) => `${c.method} ${c.path}`)).toEqual(['POST /agent-keys/k1/rotate', 'POST /agent-keys/k2/revoke'])
    expect(w.find('[data-key=k2]').text()).toContain('revoked')
  })

  it('shows an admin whose role the server no longer grants the same "admins only" page', async () => {
    srv = fakeServer({ role: 'editor' })
    setApi(new ApiClient({ fetch: srv.fetch }))
    useSession().user = { username: 'ada', role: 'admin' } // stale: the server says editor
    const w = mount(SettingsView, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    await flushPromises()
    expect(w.find('[data-testid=admins-only]').exists()).toBe(true)
  })
})

import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import { makeRouter } from '../router'
import { usePrefs } from '../stores/prefs'
import { useSession } from '../stores/session'
import { fakeServer } from '../test/fakeServer'
import AccountView from './AccountView.vue'

beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  usePrefs().setLang('en')
})

describe('Account', () => {
  it('lets a viewer change their own password, with the current one', async () => {
    const srv = fakeServer({ role: 'viewer', username: 'vic' })
    setApi(new ApiClient({ fetch: srv.fetch, token: () => 'tok' }))
    useSession().user = { username: 'vic', role: 'viewer' }
    const w = mount(AccountView, { global: { plugins: [makeRouter(createMemoryHistory())] } })
    const fill = async (cur: string, next: string, again: string) => {
      await w.find('input[name=current-password]').setValue(cur)
      await w.find('input[name=new-password]').setValue(next)
      await w.find('input[name=new-password-again]').setValue(again)
      await w.find('form').trigger('submit')
      await flushPromises()
    }
    // checked in the page first: nothing is sent
    await fill('', 'short', 'other')
    expect(w.findAll('.err').map((e) => e.text())).toHaveLength(3)
    expect(srv.calls.filter((c) => c.method === 'PATCH')).toEqual([])
    // a wrong current password: the server refuses, the page says so
    await fill('not-it', 'a-new-password-1', 'a-new-password-1')
    expect(w.find('[role=alert]').text()).toContain('current password is not right')
    await fill('the-old-password', 'a-new-password-1', 'a-new-password-1')
    const patch = srv.calls.filter((c) => c.method === 'PATCH').at(-1)
    expect(patch?.path).toBe('/users/vic')
    expect(patch?.body).toEqual({ password: 'a-new-password-1', current_password: 'the-old-password' })
    expect(w.find('[data-testid=password-changed]').exists()).toBe(true)
    expect(srv.password).toBe('a-new-password-1')
  })
})

// Settings, logout and roles end to end: the admin adds a viewer and creates an enrollment
// token (the page shows the command to run on the new host); logging out returns to the login
// page and the app stays closed; the viewer signs in, sees no rule editor, no acknowledge
// button and no Settings; then the admin signs in again for the steps that follow.
import { join } from 'node:path'
import { check, poll, squeezedCells } from './browser.mjs'

const VIEWER = 'e2e-viewer'
const VIEWER_PASSWORD = 'viewer-e2e-password-1'
const NEW_HOST = 'e2e-new-host'

export async function signIn(page, url, user, password) {
  await page.goto(`${url}/login`)
  await page.locator('input[name=username]').fill(user)
  await page.locator('input[name=password]').fill(password)
  await page.locator('form button[type=submit]').click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))
}

async function signOut(page) {
  await page.locator('button.logout').click()
  await page.waitForURL('**/login**')
}

export async function settingsSteps(page, { url, step, admin, shots }) {
  step('settings: the admin adds a viewer')
  await page.locator('[data-nav=settings]').click()
  await page.waitForURL('**/settings')
  const users = page.getByTestId('users')
  await users.locator(`tr[data-user="${admin.user}"]`).waitFor()
  const form = page.getByTestId('add-user')
  // a password under 12 characters is refused before it is sent
  await form.locator('[name=new-username]').fill(VIEWER)
  await form.locator('[name=new-password]').fill('short')
  await form.locator('[name=new-role]').selectOption('viewer')
  await form.locator('button[type=submit]').click()
  await form.locator('.field.bad', { has: page.locator('[name=new-password]') }).waitFor()
  await form.locator('[name=new-password]').fill(VIEWER_PASSWORD)
  await form.locator('button[type=submit]').click()
  const row = users.locator(`tr[data-user="${VIEWER}"]`)
  await row.waitFor()
  check((await row.locator('select').inputValue()) === 'viewer', 'the new user is a viewer')

  step('settings: agent keys are listed, an enrollment token shows its command once')
  const keys = page.getByTestId('agent-keys')
  await poll(async () => (await keys.locator('tbody tr').count()) > 0, { what: 'agent keys listed' })
  check(!/hpk_[A-Za-z0-9_-]{20,}/.test(await keys.innerText()), 'a whole agent key is listed')
  const enrollment = page.getByTestId('enrollment')
  await enrollment.locator('[name=enroll-host]').fill(NEW_HOST)
  await enrollment.locator('button[type=submit]').click()
  const command = await page.getByTestId('command').innerText()
  check(
    command.startsWith(`hostpulse agent --server ${url} --host-id ${NEW_HOST} --enroll hpe_`) && command.length > 80,
    `enrollment command: ${command}`,
  )
  const install = await page.getByTestId('install-command').innerText()
  const token = command.split(' --enroll ')[1]
  check(
    install === `curl -fsSL ${url}/install/agent.sh | sudo sh -s -- --token ${token} --host ${NEW_HOST}`,
    `install command: ${install}`,
  )
  await enrollment.locator('tbody tr', { hasText: NEW_HOST }).waitFor()
  await page.screenshot({ path: join(shots, 'settings.png'), fullPage: true })

  step('settings on a phone: every table turns into cards')
  const size = page.viewportSize()
  await page.setViewportSize({ width: 375, height: 740 })
  await page.waitForTimeout(300)
  for (const id of ['users', 'agent-keys', 'enrollment']) {
    const squeezed = await squeezedCells(page, `[data-testid=${id}]`)
    check(squeezed.length === 0, `settings ${id}: cells squeezed or cut off on a phone: ${squeezed.join('; ')}`)
  }
  await page.setViewportSize(size)

  step('logout: back to the login page, and the app stays closed')
  await signOut(page)
  await page.goto(`${url}/alerts`)
  await page.waitForURL('**/login**')
  const saved = await page.evaluate(() => localStorage.getItem('hostpulse.session'))
  check(saved === null, 'the session is forgotten on logout')

  step('viewer: sees alerts but no editor, no acknowledge, no Settings')
  await signIn(page, url, VIEWER, VIEWER_PASSWORD)
  check((await page.locator('[data-nav=settings]').count()) === 0, 'a viewer sees Settings in the nav')
  await page.locator('[data-nav=alerts]').click()
  await page.waitForURL('**/alerts')
  await page.getByTestId('active-alerts').locator('tr[data-state=firing]').first().waitFor({ timeout: 20000 })
  check((await page.getByTestId('active-alerts').locator('button').count()) === 0, 'a viewer sees acknowledge buttons')
  await page.locator('[data-tab=rules]').click()
  await page.getByTestId('rules').locator('tbody tr').first().waitFor()
  check((await page.getByTestId('new-rule').count()) === 0, 'a viewer sees the rule editor button')
  check((await page.getByTestId('rules').locator('button').count()) === 0, 'a viewer sees rule edit controls')
  await page.goto(`${url}/settings`)
  await page.getByTestId('admins-only').waitFor()
  // and the server refuses the viewer's writes too, whatever the page shows
  const status = await page.evaluate(async () => {
    const s = JSON.parse(localStorage.getItem('hostpulse.session'))
    const r = await fetch('/api/v1/alerts/rules', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.access}` },
      body: JSON.stringify({ id: 'by_viewer', metric: 'cpu_busy_percent', op: '>', warning: 1, critical: 2 }),
    })
    return r.status
  })
  check(status === 403, `a viewer's rule write got ${status}`)
  await signOut(page)

  await signIn(page, url, admin.user, admin.password)
}

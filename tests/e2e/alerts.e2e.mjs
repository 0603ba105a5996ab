// The Alerts page end to end: a rule made in the editor fires on the simulated hosts, shows on
// the Alerts page, the nav and the fleet cards, and is acknowledged. Runs on a page that has
// already loaded the app (a login step, when the server needs one, goes before it).
import { join } from 'node:path'
import { check, poll, squeezedCells } from './browser.mjs'

const RULE = 'e2e_memory_used'

export async function alertsSteps(page, { url, hostId, shots, step, receiver }) {
  step('alerts: create a rule in the editor')
  await page.locator('[data-nav=alerts]').click()
  await page.waitForURL('**/alerts')
  await page.locator('[data-tab=rules]').click()
  await page.locator('[data-testid=new-rule]').click()
  const editor = page.locator('[data-testid=rule-editor]')
  // the client refuses a bad form before sending
  await editor.locator('[name=id]').fill('not valid!')
  await editor.locator('button[type=submit]').click()
  await editor.locator('.field.bad', { has: page.locator('[name=id]') }).waitFor()
  // a threshold every simulated host breaches all the time (they use 25 % of memory or more,
  // the busier ones over half), so the alert neither resolves nor flaps during the run
  await editor.locator('[name=id]').fill(RULE)
  await editor.locator('[name=name]').fill('Memory used (E2E)')
  await editor.locator('[name=metric]').selectOption('memory_usage_percent')
  await editor.locator('[name=op]').selectOption('>')
  await editor.locator('[name=warning]').fill('10')
  await editor.locator('[name=critical]').fill('50')
  await editor.locator('[name=for]').fill('0s')
  await editor.locator('button[type=submit]').click()
  await page.locator(`[data-testid=rules] [data-rule=${RULE}]`).waitFor()
  check(!(await editor.isVisible()), 'the editor closes after saving')

  step('alerts: the rule fires and shows on the Alerts page')
  await page.locator('[data-tab=active]').click()
  const row = page.locator(`[data-testid=active-alerts] tr[data-rule=${RULE}][data-host="${hostId}"][data-state=firing]`)
  await row.waitFor({ timeout: 20000 })
  const badge = Number(await page.getByTestId('alert-count').innerText())
  check(badge >= 1, `the nav counts ${badge} firing alerts`)

  step('alerts: acknowledge, and others see who and when')
  await row.locator('.ack-btn').click()
  await row.getByTestId('acked').waitFor()
  const acked = await row.getByTestId('acked').innerText()
  check(/Acknowledged by \S+ at/.test(acked), `ack text: ${acked}`)
  // a fresh page (another operator) reads the acknowledgement from the server
  await page.goto(`${url}/alerts`)
  await row.getByTestId('acked').waitFor({ timeout: 10000 })
  check(!(await row.locator('.ack-btn').count()), 'an acknowledged alert has no acknowledge button')
  await page.waitForTimeout(500)
  await page.screenshot({ path: join(shots, 'alerts.png') })

  step('alerts: the fleet card of the host shows the firing alert')
  await page.goto(url)
  await page.locator(`.card[data-host="${hostId}"] [data-testid=card-alerts]`).waitFor({ timeout: 10000 })

  step('alerts: a webhook channel and its test send')
  await page.goto(`${url}/alerts?tab=channels`)
  await page.getByRole('button', { name: 'New channel' }).click()
  const ch = page.locator('[data-testid=channel-editor]')
  await ch.locator('[name=id]').fill('e2e-hook')
  await ch.locator('[name=type]').selectOption('webhook')
  await ch.locator('[name=url]').fill(receiver)
  await ch.locator('button[type=submit]').click()
  const chRow = page.locator('[data-testid=channels] tr[data-channel=e2e-hook]')
  await chRow.waitFor()
  await chRow.getByRole('button', { name: 'Send test' }).click()
  const result = await poll(async () => {
    const text = await chRow.getByTestId('test-result').innerText().catch(() => '')
    return text && !text.startsWith('Sending') ? text : 0
  }, { what: 'test send result' })
  check(/^Test sent \(\d+ ms\)/.test(result), `test send said: ${result}`)

  step('alerts: dark theme and phone width')
  await page.goto(`${url}/alerts`)
  await row.waitFor()
  await page.locator('button.theme').click()
  await page.waitForTimeout(300)
  await page.screenshot({ path: join(shots, 'alerts-dark.png') })
  const size = page.viewportSize()
  await page.setViewportSize({ width: 375, height: 740 })
  await page.waitForTimeout(300)
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(overflow <= 0, `alerts page wider than the phone by ${overflow}px`)
  check(await row.locator('[data-testid=acked]').isVisible(), 'the acknowledgement is visible on a phone')
  await page.screenshot({ path: join(shots, 'alerts-phone-dark.png') })
  for (const tab of ['history', 'rules', 'channels', 'silences']) {
    await page.locator(`[data-tab=${tab}]`).click()
    await page.locator(`[data-testid=${tab === 'history' ? 'alert-history' : tab}]`).waitFor()
    const o = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    check(o <= 0, `alerts ${tab} tab wider than the phone by ${o}px`)
    const squeezed = await squeezedCells(page, `[data-testid=${tab === 'history' ? 'alert-history' : tab}]`)
    check(squeezed.length === 0, `alerts ${tab} tab: cells squeezed or cut off on a phone: ${squeezed.join('; ')}`)
  }
  // the history has the rule's firing
  await page.locator('[data-tab=history]').click()
  await page.locator(`[data-testid=alert-history] tr[data-rule=${RULE}]`).first().waitFor({ timeout: 10000 })
  // back to how the rest of the run expects the page
  await page.setViewportSize(size)
  await page.locator('button.theme').click()
  await poll(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light', { what: 'light theme again' })
}

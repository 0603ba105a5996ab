// The explorer, pushed alerts and the containers table end to end in headless Chromium, against
// the server the pytest driver (test_explore_e2e.py) fed with exact samples. The driver pushes
// the sample that fires the alert when this script prints "WAITING for the alert".
// Env: HP_URL, HP_USER, HP_PASSWORD, HP_COMPARE (3 host ids), HP_NAMES (their hostnames),
// HP_BOX (the host with containers), HP_RULE (the rule on custom:queue_depth), HP_SHOTS.
import { join } from 'node:path'
import { check, launch, poll } from './browser.mjs'

const url = process.env.HP_URL
const compare = process.env.HP_COMPARE.split(',')
const names = process.env.HP_NAMES.split(',')
const box = process.env.HP_BOX
const rule = process.env.HP_RULE
const shots = process.env.HP_SHOTS
const step = (name) => console.log(`STEP ${name}`)
const SIX_H = 6 * 3600e3

const b = await launch({ width: 1280, height: 900 })
const page = b.context.pages()[0] ?? (await b.context.newPage())
const errors = []
page.on('pageerror', (e) => errors.push(e.stack ?? e.message))

async function api(path, { method = 'GET', body } = {}) {
  const login = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: process.env.HP_USER, password: process.env.HP_PASSWORD }),
  })
  const { access_token: token } = await login.json()
  const r = await fetch(url + path, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  check(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`)
  return r.json()
}

async function clippedCells(p) {
  return p.locator('td, th').evaluateAll((cells) =>
    cells
      .filter((c) => {
        const r = c.getBoundingClientRect()
        if (r.width === 0) return false
        return c.scrollWidth > c.clientWidth + 1 || r.right > window.innerWidth + 1
      })
      .map((c) => `${c.tagName} "${c.innerText.slice(0, 30)}" (${c.scrollWidth}>${c.clientWidth})`),
  )
}

try {
  await page.emulateMedia({ colorScheme: 'light' })
  await page.goto(`${url}/login`)
  await page.locator('input[name=username]').fill(process.env.HP_USER)
  await page.locator('input[name=password]').fill(process.env.HP_PASSWORD)
  await page.locator('form button[type=submit]').click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))

  step('the explorer compares three hosts through a copied URL')
  await page.locator('[data-nav=explore]').click()
  await page.waitForURL('**/explore')
  await page.getByTestId('explore-empty').waitFor()
  await page.getByTestId('explore-metric').selectOption('cpu_busy_percent')
  for (const id of compare) await page.locator(`[data-testid=host-picker] button[data-host="${id}"]`).click()
  await page.getByTestId('explore-agg').selectOption('max')
  await page.locator('[data-range="6h"]').click()
  const chart = '[data-testid=explore-chart]'
  const attr = (p, name) => p.locator(chart).getAttribute(name)
  await poll(async () => (await attr(page, 'data-lines')) === '3' && Number(await attr(page, 'data-points')) > 20, { what: 'three hosts on the chart' })
  const copied = page.url()
  check(copied.includes('metric=cpu_busy_percent') && copied.includes('agg=max') && copied.includes('range=6h'), `state in the URL: ${copied}`)
  check(compare.every((id) => decodeURIComponent(copied).includes(id)), `the three hosts in the URL: ${copied}`)
  await page.screenshot({ path: join(shots, 'explore.png'), fullPage: true })
  // another tab opens the copied link: the same view
  const other = await b.context.newPage()
  other.on('pageerror', (e) => errors.push(e.stack ?? e.message))
  await other.goto(copied)
  await poll(async () => (await attr(other, 'data-lines')) === '3' && Number(await attr(other, 'data-points')) > 20, { what: 'the copied view' })
  check((await other.getByTestId('explore-metric').inputValue()) === 'cpu_busy_percent', 'the metric from the URL')
  check((await other.getByTestId('explore-agg').inputValue()) === 'max', 'the aggregation from the URL')
  const span = Number(await attr(other, 'data-range-end')) - Number(await attr(other, 'data-range-start'))
  check(span === SIX_H, `the copied view spans 6 h: ${span}`)
  const legend = await other.locator(chart).innerText()
  check(names.every((n) => legend.includes(n)), `the legend names the hosts: ${legend}`)
  await other.close()

  step('a pushed alert appears without reload')
  await page.goto(`${url}/alerts`)
  await page.getByTestId('active-alerts').waitFor()
  await page.waitForLoadState('networkidle')
  const row = page.locator(`[data-testid=active-alerts] tr[data-rule=${rule}][data-host="${box}"]`)
  check((await row.count()) === 0, 'no alert before the sample')
  await page.evaluate(() => (window.__notReloaded = true))
  let polls = 0
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/alerts/active')) polls++
  })
  console.log('WAITING for the alert')
  await row.waitFor({ timeout: 30000 })
  check(await page.evaluate(() => window.__notReloaded === true), 'the page was not reloaded')
  check(polls === 0, `the alert came over the WebSocket, not from ${polls} polls`)
  check((await row.getAttribute('data-state')) === 'firing' && (await row.getAttribute('data-silenced')) === 'false', 'firing, not silenced')
  check(Number(await page.getByTestId('alert-count').innerText()) >= 1, 'the nav badge counts it')

  step('a silenced alert shows as silenced')
  const silence = await api('/api/v1/alerts/silences', { method: 'POST', body: { hosts: [box], ends_at: '2999-01-01T00:00:00Z', comment: 'e2e' } })
  await page.locator(`[data-testid=active-alerts] tr[data-rule=${rule}][data-silenced=true]`).waitFor({ timeout: 20000 })
  await row.getByTestId('silenced').waitFor()
  check(polls === 0, `silenced pushed, not polled (${polls} polls)`)
  await page.screenshot({ path: join(shots, 'alerts-silenced.png') })
  // the home page lists it among the recent alerts
  await page.goto(url)
  const recent = page.locator(`[data-testid=recent-alerts] li[data-host="${box}"][data-state=firing]`)
  await recent.waitFor({ timeout: 20000 }).catch(async (e) => {
    console.log('history:', JSON.stringify(await api('/api/v1/alerts/history?limit=5')))
    console.log('recent:', await page.locator('main').innerText())
    throw e
  })
  await page.screenshot({ path: join(shots, 'fleet-recent-alerts.png') })
  await api(`/api/v1/alerts/silences/${silence.id}`, { method: 'DELETE' }).catch(() => null)

  step('the containers table')
  await page.goto(`${url}/hosts/${box}`)
  const table = page.getByTestId('containers')
  await table.locator('tr[data-container=web]').waitFor({ timeout: 20000 })
  check((await table.locator('tbody tr').count()) === 3, 'three containers')
  const pg = table.locator('tr[data-container="postgres-primary-with-a-long-name"]')
  const pgText = await pg.innerText()
  check(pgText.includes('postgres:16') && pgText.includes('running') && pgText.includes('80.0') && pgText.includes('/'), `postgres row: ${pgText}`)
  check((await pg.locator('td').nth(5).innerText()).trim() === '2', 'two OOM kills')
  check((await table.locator('tr[data-container=batch]').getAttribute('data-state')) === 'paused', 'batch is paused')
  // bytes/s of network and block I/O, the first container the busiest
  check((await table.locator('tbody tr').first().getAttribute('data-container')) === 'postgres-primary-with-a-long-name', 'busiest first')
  await page.getByTestId('custom-metrics').locator('tr[data-metric="custom:queue_depth"]').waitFor()
  await page.screenshot({ path: join(shots, 'host-containers.png'), fullPage: true })
  // a container's name opens its history in the explorer
  await table.locator('tr[data-container=web] a').click()
  await page.waitForURL('**/explore?**')
  check(page.url().includes('label.id=a1b2c3d4e5f6'), `filtered by the container: ${page.url()}`)
  await poll(async () => (await attr(page, 'data-lines')) === '1', { what: 'the container history' })

  step('a compound rule is made and edited in the rule editor')
  await page.goto(`${url}/alerts?tab=rules`)
  await page.getByTestId('new-rule').click()
  const editor = page.locator('[data-testid=rule-editor]')
  await editor.locator('[name=kind]').selectOption('compound')
  await editor.locator('[name=id]').fill('busy_and_full')
  await editor.locator('[name=match]').selectOption('and')
  await editor.locator('[name="conditions.0.metric"]').selectOption('cpu_busy_percent')
  await editor.locator('[name="conditions.0.warning"]').fill('80')
  await editor.locator('[name="conditions.1.metric"]').selectOption('filesystem_usage_percent')
  await editor.locator('[name="conditions.1.labels"]').fill('mountpoint=/')
  await editor.locator('[name="conditions.1.critical"]').fill('90')
  await editor.locator('button[type=submit]').click()
  const ruleRow = page.locator('[data-testid=rules] [data-rule=busy_and_full]')
  await ruleRow.waitFor()
  await ruleRow.getByRole('button', { name: 'Edit' }).click()
  check((await editor.locator('[name="conditions.1.labels"]').inputValue()) === 'mountpoint=/', 'the stored condition is read back')
  await editor.getByTestId('add-condition').click()
  await editor.locator('[name="conditions.2.metric"]').selectOption('memory_usage_percent')
  await editor.locator('[name="conditions.2.warning"]').fill('90')
  await editor.locator('[name=match]').selectOption('or')
  await editor.locator('button[type=submit]').click()
  await editor.waitFor({ state: 'detached' })
  const stored = (await api('/api/v1/alerts/rules/busy_and_full')).rule
  check(stored.kind === 'compound' && stored.match === 'or' && stored.conditions.length === 3, `stored: ${JSON.stringify(stored)}`)
  check(stored.conditions[1].labels.mountpoint === '/' && stored.conditions[2].metric === 'memory_usage_percent', 'the conditions as edited')

  step('375 px: no clipped cell')
  await page.setViewportSize({ width: 375, height: 740 })
  const clipped = []
  for (const path of [`/hosts/${box}`, new URL(copied).pathname + new URL(copied).search, '/alerts', '/']) {
    await page.goto(url + path)
    await page.waitForLoadState('networkidle')
    await page.waitForTimeout(300)
    for (const x of await clippedCells(page)) clipped.push(`${path}: ${x}`)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    check(overflow <= 0, `${path} is wider than the phone by ${overflow}px`)
    if (path.startsWith('/hosts')) {
      await page.getByTestId('containers').scrollIntoViewIfNeeded()
      await page.screenshot({ path: join(shots, 'containers-phone.png') })
    }
    if (path.startsWith('/explore')) await page.screenshot({ path: join(shots, 'explore-phone.png'), fullPage: true })
  }
  check(clipped.length === 0, `clipped cells at 375 px:\n${clipped.join('\n')}`)

  check(errors.length === 0, `page errors: ${errors.join('; ')}`)
  console.log('E2E OK')
} finally {
  await b.close()
}
process.exit(0)

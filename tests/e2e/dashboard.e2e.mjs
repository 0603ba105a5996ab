// The dashboard end to end in headless Chromium, against the real server the pytest driver
// started (fed by `hostpulse simulate`). Steps print "STEP <name>"; at "RESTART" the driver
// restarts the server and answers on stdin.
// Env: HP_URL (server), HP_USER and HP_PASSWORD (the admin the server was started with),
// HP_HOSTS (comma-separated hostnames), HP_HOST_ID (a host to open), HP_INTERVAL_MS,
// HP_SHOTS (where screenshots go), HP_RECEIVER (a webhook receiver's URL).
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { alertsSteps } from './alerts.e2e.mjs'
import { settingsSteps } from './settings.e2e.mjs'
import { check, launch, poll } from './browser.mjs'

const url = process.env.HP_URL
const hosts = process.env.HP_HOSTS.split(',')
const hostId = process.env.HP_HOST_ID
const intervalMs = Number(process.env.HP_INTERVAL_MS ?? 1000)
const shots = process.env.HP_SHOTS
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const step = (name) => console.log(`STEP ${name}`)

const b = await launch({ width: 1400, height: 900 })
const page = b.context.pages()[0] ?? (await b.context.newPage())
const errors = []
page.on('pageerror', (e) => errors.push(e.stack ?? e.message))
// the server's Content-Security-Policy must not block anything the dashboard does
const violations = []
await page.exposeFunction('__hpCspViolation', (v) => violations.push(v))
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__hpCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`)
  })
})
page.on('console', (m) => {
  if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) violations.push(m.text())
})
const connState = () => page.locator('.conn').getAttribute('data-state')
const lastOf = async (sel) => Number((await page.locator(sel).getAttribute('data-last')) || 0)

try {
  step('sign in: a wrong password is refused, the admin password gets in')
  await page.emulateMedia({ colorScheme: 'light' })
  // a first visit goes to the login page without a request that fails (each is a console error)
  const early = []
  const onResponse = (r) => r.status() >= 400 && early.push(`${r.status()} ${r.url()}`)
  const onConsole = (m) => ['error', 'warning'].includes(m.type()) && early.push(m.text())
  page.on('response', onResponse)
  page.on('console', onConsole)
  const first = await page.goto(url)
  const csp = first.headers()['content-security-policy'] ?? ''
  check(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'"), `CSP header: ${csp}`)
  await page.waitForURL('**/login**')
  await page.locator('input[name=username]').waitFor()
  await page.waitForTimeout(500)
  page.off('response', onResponse)
  page.off('console', onConsole)
  check(early.length === 0, `the first visit failed requests or logged errors: ${early.join('; ')}`)
  await page.locator('input[name=username]').fill(process.env.HP_USER)
  await page.locator('input[name=password]').fill('not-the-password')
  await page.locator('form button[type=submit]').click()
  await page.getByRole('alert').waitFor()
  await page.locator('input[name=password]').fill(process.env.HP_PASSWORD)
  await page.locator('form button[type=submit]').click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))

  step('fleet shows every simulated host')
  await poll(async () => (await connState()) === 'live', { what: 'live connection' })
  for (const name of hosts) {
    await page.locator('.card', { hasText: name }).first().waitFor({ timeout: 20000 })
  }
  const count = await page.getByTestId('fleet-count').innerText()
  check(count.includes(`${hosts.length} of ${hosts.length}`), `fleet count says ${count}`)
  // the cards update live: a card's CPU sparkline gains points
  const spark = page.locator('.card').first().locator('.spark').first()
  const before = Number(await spark.getAttribute('data-points'))
  await poll(async () => Number(await spark.getAttribute('data-points')) > before, { what: 'sparkline points' })
  // and it is drawn: one line segment per point after the first
  const points = Number(await spark.getAttribute('data-points'))
  const line = await spark.locator('path').last().getAttribute('d')
  check(points >= 2 && (line ?? '').split('L').length >= points, `sparkline of ${points} points drawn as ${line}`)
  await page.waitForTimeout(6000) // a few more sparkline points for the picture
  await page.screenshot({ path: join(shots, 'fleet.png') })

  step('search and filter')
  await page.getByPlaceholder('Search hosts').fill(hosts[0])
  await poll(async () => (await page.locator('.card').count()) === 1, { what: 'one card after search' })
  await page.getByPlaceholder('Search hosts').fill('')

  await alertsSteps(page, { url, hostId, shots, step, receiver: process.env.HP_RECEIVER })
  await settingsSteps(page, {
    url,
    step,
    shots,
    admin: { user: process.env.HP_USER, password: process.env.HP_PASSWORD },
  })
  await page.goto(url)

  step('host page: live chart gains points every interval')
  await page.locator(`.card[data-host="${hostId}"]`).click()
  await page.waitForURL(`**/hosts/${hostId}`)
  const live = '[data-testid=live-cpu]'
  await poll(async () => (await lastOf(live)) > 0, { what: 'live chart data' })
  let last = await lastOf(live)
  for (let i = 0; i < 3; i++) {
    const next = await poll(async () => {
      const v = await lastOf(live)
      return v > last ? v : 0
    }, { timeout: intervalMs * 5 + 2000, what: `live point ${i + 1}` })
    last = next
  }

  step('processes: live, and at a past time')
  const procRows = () => page.locator('[data-testid=processes] tbody tr td.num').count()
  await poll(async () => (await procRows()) > 0, { what: 'live process rows' })
  await page.locator('[data-testid=processes] button', { hasText: 'At' }).click()
  const past = new Date(Date.now() - 20_000)
  const pad = (n) => String(n).padStart(2, '0')
  const local = `${past.getFullYear()}-${pad(past.getMonth() + 1)}-${pad(past.getDate())}T${pad(past.getHours())}:${pad(past.getMinutes())}:${pad(past.getSeconds())}`
  await page.locator('[data-testid=processes] input[type=datetime-local]').fill(local)
  await poll(async () => {
    const stamp = await page.locator('[data-testid=processes] .proc-head .muted').innerText().catch(() => '')
    return stamp && (await procRows()) > 0 ? stamp : 0
  }, { what: 'process list at a past time' })

  step('history: 7 days draws from a rollup tier')
  await page.locator('[data-range="7d"]').click()
  await poll(async () => {
    const tier = await page.getByTestId('tier').getAttribute('data-tier')
    const pts = Number(await page.locator('[data-testid=history-cpu]').getAttribute('data-points'))
    return tier !== 'raw' && pts > 10 ? `${tier}:${pts}` : 0
  }, { what: '7-day history' })
  await page.evaluate(() => window.scrollTo(0, 0))
  await page.waitForTimeout(500)
  await page.screenshot({ path: join(shots, 'host.png'), fullPage: true })

  step('reconnect after a server restart, back-filling the gap')
  console.log('RESTART')
  await poll(async () => (await connState()) !== 'live', { timeout: 15000, what: 'connection lost' })
  const answer = await lines.next()
  check(answer.value === 'restarted', `driver said ${answer.value}`)
  await poll(async () => (await connState()) === 'live', { timeout: 30000, what: 'reconnected' })
  const afterRestart = Date.now()
  await poll(async () => (await lastOf(live)) >= afterRestart - intervalMs, { timeout: 15000, what: 'live points after reconnect' })

  step('dark theme, Korean, phone width')
  await page.locator('button.theme').click()
  await page.locator('select.lang').selectOption('ko')
  await page.goto(url)
  await page.getByRole('heading', { name: '전체 호스트' }).waitFor()
  await page.setViewportSize({ width: 375, height: 740 })
  await page.locator('.card').first().waitFor()
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(overflow <= 0, `page wider than the phone by ${overflow}px`)
  await page.waitForTimeout(1200)
  await page.screenshot({ path: join(shots, 'fleet-phone-dark-ko.png') })
  await page.goto(`${url}/hosts/${hostId}`)
  await poll(async () => (await lastOf(live)) > 0, { what: 'live chart on the phone' })
  const hostOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(hostOverflow <= 0, `host page wider than the phone by ${hostOverflow}px`)
  // the charts speak Korean too (uPlot's own legend says "Time" and its axes "5:05pm")
  // off the chart the legend names only the series; over it, the time and values (in Korean)
  await page.locator('[data-testid=live-cpu] .u-over').hover()
  const legendTime = await page.locator('[data-testid=live-cpu] .u-legend .u-series').first().innerText()
  check(legendTime.includes('시간') && !/time/i.test(legendTime), `chart legend in Korean: ${legendTime}`)

  step('unknown paths fall back to the app')
  await page.goto(`${url}/no/such/page`)
  await page.getByRole('heading', { name: '페이지를 찾을 수 없습니다' }).waitFor()

  check(errors.length === 0, `page errors: ${errors.join('; ')}`)
  check(violations.length === 0, `CSP violations: ${violations.join('; ')}`)
  // and the policy is really enforced: an inline script injected now is refused
  await page.evaluate(() => {
    const s = document.createElement('script')
    s.textContent = 'window.__hpInlineRan = true'
    document.head.appendChild(s)
  })
  await poll(async () => violations.length > 0, { timeout: 5000, what: 'the inline script refused' })
  check(!(await page.evaluate(() => window.__hpInlineRan === true)), 'an inline script ran')
  console.log('E2E OK')
} finally {
  await b.close()
}
process.exit(0)

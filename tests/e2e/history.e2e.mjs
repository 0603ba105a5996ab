// History and names end to end in headless Chromium, against the server the pytest driver
// (test_history_e2e.py) fed with exact samples: a fresh host with one sample, and a host with a
// 6-minute outage. Env: HP_URL, HP_USER, HP_PASSWORD, HP_FRESH, HP_GAPPY (host ids), HP_SHOTS.
import { join } from 'node:path'
import { check, launch, poll } from './browser.mjs'

const url = process.env.HP_URL
const fresh = process.env.HP_FRESH
const gappy = process.env.HP_GAPPY
const shots = process.env.HP_SHOTS
const step = (name) => console.log(`STEP ${name}`)
const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3, '1y': 365 * 86400e3 }

const b = await launch({ width: 1280, height: 900 })
const page = b.context.pages()[0] ?? (await b.context.newPage())
const errors = []
page.on('pageerror', (e) => errors.push(e.stack ?? e.message))
const attr = (sel, name) => page.locator(sel).first().getAttribute(name)

try {
  await page.emulateMedia({ colorScheme: 'light' })
  await page.goto(`${url}/login`)
  await page.locator('input[name=username]').fill(process.env.HP_USER)
  await page.locator('input[name=password]').fill(process.env.HP_PASSWORD)
  await page.locator('form button[type=submit]').click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))

  step('a fresh host at every range')
  await page.goto(`${url}/hosts/${fresh}`)
  const cpu = '[data-testid=history-cpu]'
  await page.locator(cpu).waitFor()
  for (const [key, span] of Object.entries(RANGES)) {
    await page.locator(`[data-range="${key}"]`).click()
    const got = await poll(async () => {
      const a = Number(await attr(cpu, 'data-range-start'))
      const z = Number(await attr(cpu, 'data-range-end'))
      return z - a === span && !(await page.locator('.history .charts.busy').count()) ? [a, z] : 0
    }, { what: `the ${key} axis` })
    check(key === '1h' || page.url().includes(`range=${key}`), `the range is in the URL: ${page.url()}`)
    // the axis labels: the chosen range's clock times or dates, never a year
    const axis = (await attr(cpu, 'data-x-labels')) ?? ''
    check(axis.trim().length > 0 && !/\b(19|20)\d\d\b/.test(axis), `${key} axis labels: ${JSON.stringify(axis)}`)
    const empty = await attr(cpu, 'data-empty')
    const points = Number(await attr(cpu, 'data-points'))
    // the one sample is drawn where a tier holds it; otherwise the chart says there is no data
    check(points >= 1 || (empty === 'true' && (await page.locator(`${cpu} [data-testid=no-data]`).isVisible())), `${key}: ${points} points, empty=${empty}`)
    if (key === '1h') check(points === 1 && empty === 'false', `the fresh host's single sample at 1h: ${points}`)
    if (key === '7d') await page.screenshot({ path: join(shots, 'host-fresh-7d.png'), fullPage: true })
    console.log(`range ${key}: ${new Date(got[0]).toISOString()} .. ${new Date(got[1]).toISOString()}, ${points} points`)
  }
  // a copied link shows the same view
  await page.locator('[data-range="6h"]').click()
  await page.goto(page.url())
  await poll(async () => Number(await attr(cpu, 'data-range-end')) - Number(await attr(cpu, 'data-range-start')) === RANGES['6h'], { what: 'the 6h view from its URL' })

  step('an outage is a gap')
  await page.goto(`${url}/hosts/${gappy}?range=1h`)
  await poll(async () => Number(await attr(cpu, 'data-points')) > 100, { what: 'history of the gappy host' })
  check(Number(await attr(cpu, 'data-gaps')) >= 1, 'the 6-minute outage is a gap in the history chart')
  const live = '[data-testid=live-cpu]'
  await poll(async () => Number(await attr(live, 'data-points')) > 10, { what: 'live chart back-filled' })
  check(Number(await attr(live, 'data-gaps')) >= 1, 'the outage is a gap in the live chart')
  await page.evaluate(() => window.scrollTo(0, 0))
  await page.screenshot({ path: join(shots, 'host-outage.png'), fullPage: true })

  step('one name per host')
  const title = page.locator('.host .title h1')
  check((await title.innerText()) === 'gappy.example', `host page title: ${await title.innerText()}`)
  check((await title.getAttribute('title')) === gappy, 'the id on hover')
  for (const path of ['/', `/hosts/${fresh}`, '/settings', '/alerts?tab=history']) {
    await page.goto(url + path)
    await page.waitForLoadState('networkidle')
    if (path === '/') await page.locator(`.card[data-host="${fresh}"] .name`).waitFor()
    if (path === '/settings') await page.getByText('fresh.example').first().waitFor()
    const text = await page.locator('main').innerText()
    check(!text.includes(fresh) && !text.includes(gappy), `${path} shows a machine id instead of the hostname`)
  }
  check((await page.locator(`.card`).count()) >= 0, 'cards')

  step('375 px: no clipped cell')
  await page.setViewportSize({ width: 375, height: 740 })
  const clipped = []
  for (const path of ['/', `/hosts/${gappy}`, '/alerts', '/alerts?tab=rules', '/alerts?tab=channels', '/alerts?tab=silences', '/settings', '/account']) {
    await page.goto(url + path)
    await page.waitForLoadState('networkidle')
    await page.waitForTimeout(300)
    const bad = await page.locator('td, th').evaluateAll((cells) =>
      cells
        .filter((c) => {
          const r = c.getBoundingClientRect()
          if (r.width === 0) return false // hidden on a phone
          return c.scrollWidth > c.clientWidth + 1 || r.right > window.innerWidth + 1
        })
        .map((c) => `${c.tagName} "${c.innerText.slice(0, 30)}" (${c.scrollWidth}>${c.clientWidth}, right ${Math.round(c.getBoundingClientRect().right)})`),
    )
    for (const x of bad) clipped.push(`${path}: ${x}`)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    check(overflow <= 0, `${path} is wider than the phone by ${overflow}px`)
  }
  check(clipped.length === 0, `clipped cells at 375 px:\n${clipped.join('\n')}`)
  await page.goto(`${url}/hosts/${gappy}`)
  await poll(async () => Number(await attr(live, 'data-points')) > 10, { what: 'live chart on the phone' })
  await page.screenshot({ path: join(shots, 'host-phone.png'), fullPage: false })
  await page.goto(`${url}/account`)
  await page.locator('input[name=current-password]').waitFor()
  await page.screenshot({ path: join(shots, 'account-phone.png') })

  check(errors.length === 0, `page errors: ${errors.join('; ')}`)
  console.log('E2E OK')
} finally {
  await b.close()
}
process.exit(0)

// Boards end to end in headless Chromium, against the server test_boards_e2e.py fed: an editor
// builds a board by drag and drop (adds widgets, moves one, resizes one), saves it, reloads it
// and finds the same layout, shares it read-only; a viewer then sees it with no way to change it.
// Env: HP_URL, HP_EDITOR/HP_EDITOR_PASSWORD, HP_VIEWER/HP_VIEWER_PASSWORD, HP_HOSTS (how many
// hosts the simulator feeds), HP_SHOTS.
import { join } from 'node:path'
import { check, launch, poll } from './browser.mjs'

const url = process.env.HP_URL
const shots = process.env.HP_SHOTS
const step = (name) => console.log(`STEP ${name}`)
const errors = []

async function signIn(user, password, viewport) {
  const b = await launch(viewport)
  const page = b.context.pages()[0] ?? (await b.context.newPage())
  page.on('pageerror', (e) => errors.push(e.stack ?? e.message))
  await page.emulateMedia({ colorScheme: 'light' })
  await page.goto(`${url}/login`)
  await page.locator('input[name=username]').fill(user)
  await page.locator('input[name=password]').fill(password)
  await page.locator('form button[type=submit]').click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  return { b, page }
}

const widget = (page, id) => page.locator(`[data-widget="${id}"]`)
async function box(page, id) {
  const w = widget(page, id)
  const [x, y, wd, h] = await Promise.all(['data-x', 'data-y', 'data-w', 'data-h'].map((a) => w.getAttribute(a)))
  return { x: Number(x), y: Number(y), w: Number(wd), h: Number(h) }
}
async function layout(page) {
  const ids = await page.locator('[data-widget]').evaluateAll((els) => els.map((e) => e.dataset.widget))
  const out = {}
  for (const id of ids) out[id] = await box(page, id)
  return out
}
function overlapping(l) {
  const list = Object.entries(l)
  for (const [a, p] of list)
    for (const [b, q] of list)
      if (a < b && p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) return `${a} and ${b}`
  return null
}
/** Press the mouse on `from`'s centre, move in steps by (dx, dy) px, release. */
async function settled(locator) {
  // widgets glide to their new cells (a 0.12 s CSS transition): grab a handle where it stays
  let last = null
  for (let i = 0; i < 40; i++) {
    const r = await locator.boundingBox()
    if (last && r && JSON.stringify(r) === JSON.stringify(last)) return r
    last = r
    await new Promise((done) => setTimeout(done, 50))
  }
  throw new Error('a widget kept moving for 2 s')
}
async function dragBy(page, from, dx, dy) {
  const r = await settled(from)
  const x0 = r.x + r.width / 2
  const y0 = r.y + r.height / 2
  await page.mouse.move(x0, y0)
  await page.mouse.down()
  for (let i = 1; i <= 8; i++) await page.mouse.move(x0 + (dx * i) / 8, y0 + (dy * i) / 8)
  await page.mouse.up()
}
async function addWidget(page, type) {
  await page.locator('[data-testid=add-widget]').selectOption(type)
  await page.locator('[data-testid=widget-editor]').waitFor()
  await page.locator('[data-testid=widget-apply]').click()
  await page.locator('[data-testid=widget-editor]').waitFor({ state: 'detached' })
}

const editor = await signIn(process.env.HP_EDITOR, process.env.HP_EDITOR_PASSWORD, { width: 1280, height: 900 })
let viewer = null
try {
  const page = editor.page
  step('build a board by drag and drop')
  await page.goto(`${url}/boards`)
  await page.locator('[data-testid=new-board]').click()
  await page.waitForURL((u) => /\/boards\/[0-9a-f]+/.test(u.pathname))
  const boardUrl = page.url().split('?')[0]
  await page.locator('[data-testid=board-name]').fill('E2E board')
  for (const type of ['timeseries', 'stat', 'hosts']) await addWidget(page, type)
  let l = await layout(page)
  console.log('added:', JSON.stringify(l))
  check(l['timeseries-1'].x === 0 && l['stat-1'].x === 6 && l['hosts-1'].y >= 4, `new widgets placed: ${JSON.stringify(l)}`)

  // the stat widget dragged by its title bar to the left, under the time series
  const grid = await page.locator('[data-testid=board-grid]').boundingBox()
  const colPx = (grid.width + 8) / 12
  await dragBy(page, widget(page, 'stat-1').locator('[data-testid=widget-handle] h3'), -6 * colPx, 4.2 * 68)
  l = await layout(page)
  console.log('after move:', JSON.stringify(l))
  check(l['stat-1'].x === 0 && l['stat-1'].y >= 4, `stat moved to the left column below: ${JSON.stringify(l['stat-1'])}`)
  check(!overlapping(l), `no overlap after the move: ${overlapping(l)}`)

  // the time series made wider and taller from its corner
  await dragBy(page, widget(page, 'timeseries-1').locator('[data-testid=widget-resize]'), 3 * colPx, 68)
  l = await layout(page)
  console.log('after resize:', JSON.stringify(l))
  check(l['timeseries-1'].w === 9 && l['timeseries-1'].h === 5, `time series resized to 9x5: ${JSON.stringify(l['timeseries-1'])}`)
  check(!overlapping(l), `no overlap after the resize: ${overlapping(l)}`)
  await page.locator('[data-testid=unsaved]').waitFor()
  await poll(async () => Number(await page.locator('[data-widget="timeseries-1"] .chart-box').getAttribute('data-points')) > 10, { what: 'the new time series drawn' })
  await page.screenshot({ path: join(shots, 'board-edit.png'), fullPage: true })

  step('save and reload')
  await page.locator('[data-testid=board-sharing]').selectOption('view')
  await page.locator('[data-testid=board-save]').click()
  await page.locator('[data-testid=saved]').waitFor()
  const saved = await layout(page)
  await page.goto(boardUrl)
  await page.locator('[data-testid=board-title]').waitFor()
  check((await page.locator('[data-testid=board-title]').innerText()) === 'E2E board', 'the name survives a reload')
  await poll(async () => Object.keys(await layout(page)).length === 3, { what: 'the widgets after reload' })
  const reloaded = await layout(page)
  check(JSON.stringify(reloaded) === JSON.stringify(saved), `the layout survives a reload: ${JSON.stringify(reloaded)} vs ${JSON.stringify(saved)}`)
  // the widgets show the fleet's data
  const chart = '[data-widget="timeseries-1"] .chart-box'
  await poll(async () => Number(await page.locator(chart).getAttribute('data-points')) > 10, { what: 'the time series widget drawn from history' })
  await poll(async () => /\d/.test(await page.locator('[data-widget="stat-1"] [data-testid=stat-value]').innerText()), { what: 'the stat value' })
  const hosts = Number(process.env.HP_HOSTS)
  await poll(async () => (await page.locator('[data-widget="hosts-1"] [data-host]').count()) === hosts, { what: 'the host grid' })
  await poll(async () => (await page.locator('[data-widget="hosts-1"] li.online').count()) === hosts, { what: 'live hosts in the grid' })
  await page.screenshot({ path: join(shots, 'board.png'), fullPage: true })

  step('a viewer sees it read-only')
  viewer = await signIn(process.env.HP_VIEWER, process.env.HP_VIEWER_PASSWORD, { width: 1280, height: 900 })
  const vp = viewer.page
  await vp.goto(`${url}/boards`)
  await vp.getByText('E2E board').click()
  await vp.locator('[data-testid=read-only]').waitFor()
  check((await vp.locator('[data-testid=board-edit]').count()) === 0, 'no Edit button for a viewer')
  check((await vp.locator('[data-testid=board-save]').count()) === 0, 'no Save button for a viewer')
  check((await vp.locator('[data-testid=widget-resize]').count()) === 0, 'no resize handles for a viewer')
  await poll(async () => Object.keys(await layout(vp)).length === 3, { what: "the viewer's widgets" })
  const before = await layout(vp)
  await dragBy(vp, widget(vp, 'stat-1').locator('[data-testid=widget-handle] h3'), 4 * colPx, -2 * 68)
  check(JSON.stringify(await layout(vp)) === JSON.stringify(before), 'dragging changes nothing for a viewer')
  check(JSON.stringify(before) === JSON.stringify(saved), "the viewer sees the editor's layout")
  const put = await vp.evaluate(async (id) => {
    const token = JSON.parse(localStorage.getItem('hostpulse.session') ?? '{}').access
    const r = await fetch(`/api/v1/dashboards/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ name: 'hijacked', sharing: 'view', spec: { widgets: [] } }),
    })
    return r.status
  }, boardUrl.split('/').pop())
  check(put === 403 || put === 401, `a viewer's save is refused by the server: ${put}`)
  await poll(async () => Number(await vp.locator(chart).getAttribute('data-points')) > 10, { what: "the viewer's chart" })
  await vp.evaluate(() => window.getSelection()?.removeAllRanges())
  await vp.screenshot({ path: join(shots, 'board-viewer.png'), fullPage: true })

  step('375 px: the board stacks')
  await vp.setViewportSize({ width: 375, height: 740 })
  await vp.waitForTimeout(300)
  const overflow = await vp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(overflow <= 0, `the board is wider than the phone by ${overflow}px`)
  await vp.screenshot({ path: join(shots, 'board-phone.png'), fullPage: false })
  await vp.locator('button.theme').click()
  await vp.locator('select.lang').selectOption('ko')
  await vp.locator('[data-testid=read-only]', { hasText: '읽기 전용' }).waitFor()
  await vp.locator('nav [data-nav=boards]', { hasText: '보드' }).waitFor()
  const overflowKo = await vp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(overflowKo <= 0, `the Korean board is wider than the phone by ${overflowKo}px`)
  await vp.screenshot({ path: join(shots, 'board-phone-dark-ko.png'), fullPage: false })

  step('a template with a $host variable')
  await page.goto(`${url}/boards`)
  await page.locator('[data-template=host] button').click()
  await page.waitForURL((u) => /\/boards\/[0-9a-f]+/.test(u.pathname))
  await page.locator('[data-testid=board-edit]').click() // leave edit mode: the board as people see it
  const pick = page.locator('select[data-var=host]')
  await pick.waitFor()
  const options = await pick.locator('option').evaluateAll((os) => os.map((o) => o.value))
  check(options.length === hosts, `the $host picker offers every host: ${options}`)
  await pick.selectOption(options[1])
  await page.waitForURL((u) => u.searchParams.get('var-host') === options[1])
  const cpuChart = '[data-widget="cpu"] .chart-box'
  await poll(async () => Number(await page.locator(cpuChart).getAttribute('data-points')) > 10, { what: "the chosen host's CPU" })
  await poll(async () => (await page.locator('[data-widget="procs"] tbody tr').count()) > 1, { what: "the chosen host's processes" })
  await poll(async () => (await page.locator('[data-widget="fs"] .bars li').count()) >= 1, { what: "the chosen host's filesystems" })
  // the link with ?var-host shows the same host after a reload
  await page.reload()
  await page.locator('select[data-var=host]').waitFor()
  check((await page.locator('select[data-var=host]').inputValue()) === options[1], 'the variable comes back from the URL')
  await poll(async () => Number(await page.locator(cpuChart).getAttribute('data-points')) > 10, { what: 'the CPU chart after reload' })
  await page.screenshot({ path: join(shots, 'board-template-host.png'), fullPage: true })

  check(errors.length === 0, `page errors: ${errors.join('; ')}`)
  console.log('E2E OK')
} finally {
  await editor.b.close()
  await viewer?.b.close()
}
process.exit(0)

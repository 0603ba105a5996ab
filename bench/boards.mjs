// Times cold loads of one board in Debian's Chromium (driven by bench/boards.py): navigation
// start until every widget shows its data. Prints one JSON line.
// Env: HP_URL, HP_BOARD (board id), HP_SESSION (the signed-in session kept in localStorage),
// HP_LOADS.
import { launch } from '../tests/e2e/browser.mjs'

const url = process.env.HP_URL
const loads = Number(process.env.HP_LOADS ?? 5)

/** Inside the page: every widget has its data (checked on each animation frame). */
function watchDrawn() {
  const done = () => {
    const widgets = [...document.querySelectorAll('[data-widget]')]
    if (widgets.length < 12) return false
    return widgets.every((w) => {
      const type = w.dataset.type
      if (type === 'timeseries') return Number(w.querySelector('.chart-box')?.dataset.points ?? 0) > 0
      if (type === 'stat') return /\d/.test(w.querySelector('[data-testid=stat-value]')?.textContent ?? '')
      if (type === 'gauge') return /\d/.test(w.querySelector('figure')?.textContent ?? '')
      if (type === 'bar') return w.querySelectorAll('.bars li .fill').length > 0
      if (type === 'table') return w.querySelectorAll('tbody tr').length > 0
      if (type === 'hosts') return w.querySelectorAll('[data-host]').length > 0
      return true
    })
  }
  const tick = () => {
    if (done()) window.__drawn = performance.now()
    else requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
}

const times = []
let requests = 0
for (let i = 0; i < loads; i++) {
  const b = await launch({ width: 1400, height: 900 })
  try {
    await b.context.addInitScript((saved) => localStorage.setItem('hostpulse.session', saved), process.env.HP_SESSION)
    await b.context.addInitScript(watchDrawn)
    const page = b.context.pages()[0] ?? (await b.context.newPage())
    let n = 0
    const kinds = {}
    page.on('request', (r) => {
      if (!r.url().includes('/api/v1/')) return
      n++
      const kind = new URL(r.url()).pathname.replace(/\/hosts\/[^/]+/, '/hosts/*')
      kinds[kind] = (kinds[kind] ?? 0) + 1
    })
    await page.goto(`${url}/boards/${process.env.HP_BOARD}`)
    await page.waitForFunction(() => window.__drawn !== undefined, null, { timeout: 60000 })
    times.push(await page.evaluate(() => window.__drawn))
    requests = n
    console.error(JSON.stringify(kinds))
  } finally {
    await b.close()
  }
}
console.log(JSON.stringify({ loads_ms: times, requests }))

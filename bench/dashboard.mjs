// Measures the dashboard in Debian's Chromium (driven by bench/dashboard.py). Prints one JSON line.
// Env: HP_URL, HP_HOST_ID, HP_HOSTS (expected count), HP_LOADS, HP_SECONDS, HP_WEB_DIR,
// HP_SESSION (the signed-in session the dashboard keeps in localStorage: a logged-in user's load).
import { launch as launchBrowser } from '../tests/e2e/browser.mjs'

async function launch(opts) {
  const b = await launchBrowser(opts)
  await b.context.addInitScript((saved) => {
    if (!localStorage.getItem('hostpulse.session')) localStorage.setItem('hostpulse.session', saved)
  }, process.env.HP_SESSION)
  return b
}

const url = process.env.HP_URL
const hostId = process.env.HP_HOST_ID
const expected = Number(process.env.HP_HOSTS)
const loads = Number(process.env.HP_LOADS ?? 5)
const seconds = Number(process.env.HP_SECONDS ?? 20)

async function coldLoad() {
  const b = await launch({ width: 1400, height: 900 })
  try {
    const page = b.context.pages()[0] ?? (await b.context.newPage())
    await page.addInitScript((n) => {
      const marks = (window.__hp = {})
      const f = window.fetch
      window.fetch = async (...a) => {
        const r = await f(...a)
        if (String(a[0]).endsWith('/api/v1/hosts') && !marks.hosts) {
          marks.hosts = performance.now()
          const json = r.json.bind(r)
          r.json = async () => {
            const out = await json()
            marks.parsed = performance.now()
            return out
          }
        }
        return r
      }
      new MutationObserver(() => {
        if (!marks.card && document.querySelector('.card')) marks.card = performance.now()
        if (!marks.app && document.querySelector('.bar')) marks.app = performance.now()
        const count = document.querySelector('[data-testid=fleet-count]')?.textContent ?? ''
        if (!marks.shown && marks.card && count.includes(`${n} of ${n}`)) marks.shown = performance.now()
      }).observe(document, { childList: true, subtree: true, characterData: true })
    }, expected)
    await page.goto(url, { waitUntil: 'commit' })
    await page.waitForFunction(
      (n) =>
        document.querySelectorAll('.card').length > 0 &&
        (document.querySelector('[data-testid=fleet-count]')?.textContent ?? '').includes(`${n} of ${n}`),
      expected,
      { polling: 'raf', timeout: 60000 },
    )
    return await page.evaluate(() => {
      const shown = window.__hp.shown ?? performance.now()
      const res = performance.getEntriesByType('resource')
      const js = res.filter((r) => r.name.endsWith('.js'))
      const hosts = res.find((r) => r.name.endsWith('/api/v1/hosts'))
      const nav = performance.getEntriesByType('navigation')[0]
      return {
        shown_ms: shown,
        js_transfer: js.reduce((a, r) => a + r.transferSize, 0),
        js_body_gz: js.reduce((a, r) => a + r.encodedBodySize, 0),
        js_body_raw: js.reduce((a, r) => a + r.decodedBodySize, 0),
        js_files: js.length,
        marks: window.__hp,
        html_transfer: nav ? nav.transferSize : 0,
        hosts_api_ms: hosts ? hosts.responseEnd - hosts.requestStart : null,
        hosts_api_start_ms: hosts ? hosts.requestStart : null,
        html_done_ms: nav ? nav.responseEnd : null,
        dom_ready_ms: nav ? nav.domContentLoadedEventEnd : null,
        hosts_api_bytes: hosts ? hosts.transferSize : null,
      }
    })
  } finally {
    await b.close()
  }
}

/** Frames per second on the fleet page for `seconds`, while the cards update from the stream;
 * with `scroll`, the grid is also scrolled by `scroll` px every frame (down, then back up at the
 * end), so the virtual grid renders new rows all the time. */
async function fleetFps(page, scroll = 0) {
  await page.goto(url)
  await page.waitForFunction(() => document.querySelectorAll('.card').length > 0, null, { timeout: 60000 })
  await page.waitForTimeout(3000)
  // the renderer's CPU time per frame: it depends much less on how busy the rest of the
  // machine is than frames per second do
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Performance.enable')
  const before = await mainThread(cdp)
  const out = await page.evaluate(async ([secs, step]) => {
    let frames = 0
    let longest = 0
    let last = performance.now()
    let updates = 0
    let longTaskMs = 0
    let scrolled = 0
    const scroller = document.querySelector('.scroller')
    let dir = 1
    let longTasks = 0
    const obs = new PerformanceObserver((l) =>
      l.getEntries().forEach((e) => {
        longTaskMs += e.duration
        longTasks++
      }),
    )
    obs.observe({ type: 'longtask', buffered: false })
    const mo = new MutationObserver((m) => (updates += m.length))
    document.querySelectorAll('.v-cpu').forEach((el) => mo.observe(el, { characterData: true, childList: true, subtree: true }))
    const end = performance.now() + secs * 1000
    await new Promise((resolve) => {
      const tick = (t) => {
        frames++
        longest = Math.max(longest, t - last)
        last = t
        if (step && scroller) {
          const max = scroller.scrollHeight - scroller.clientHeight
          if (scroller.scrollTop >= max - 1) dir = -1
          else if (scroller.scrollTop <= 0) dir = 1
          scroller.scrollTop += dir * step
          scrolled += step
        }
        if (t < end) requestAnimationFrame(tick)
        else resolve()
      }
      requestAnimationFrame(tick)
    })
    obs.disconnect()
    mo.disconnect()
    return {
      fps: frames / secs,
      frames,
      longest_frame_ms: longest,
      long_task_ms_per_s: longTaskMs / secs,
      long_tasks: longTasks,
      visible_cards: document.querySelectorAll('.card').length,
      card_updates_per_s: updates / secs,
      scrolled_px: scrolled,
    }
  }, [seconds, scroll])
  const after = await mainThread(cdp)
  await cdp.detach()
  for (const [k, v] of Object.entries(after)) out[`${k}_ms_per_frame`] = (v - before[k]) / Math.max(1, out.frames)
  return out
}

/** The renderer so far, in ms: main-thread CPU time, the whole renderer process's CPU time
 * (raster and compositor threads included), and the main thread's script and style+layout
 * time (wall time spent in them: these two grow with the machine's load, the CPU times less). */
async function mainThread(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics')
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]))
  return {
    cpu: m.ThreadTime * 1000,
    process_cpu: m.ProcessTime * 1000,
    script: m.ScriptDuration * 1000,
    style_layout: (m.RecalcStyleDuration + m.LayoutDuration) * 1000,
  }
}

async function liveLatency(page) {
  await page.goto(`${url}/hosts/${hostId}`)
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=live-cpu]')?.getAttribute('data-last') || 0) > 0, null, { timeout: 60000 })
  // the live path, not the page's own load: the samples of its first seconds waited behind
  // the back-fill and the charts being built (long tasks of up to 360 ms; those samples took
  // 0.5-1 s, the ones after 20-100 ms on the same loaded machine), as the fps windows wait too
  await page.waitForTimeout(3000)
  return await page.evaluate(async (secs) => {
    const el = document.querySelector('[data-testid=live-cpu]')
    const seen = []
    let prev = Number(el.getAttribute('data-last'))
    const mo = new MutationObserver(() => {
      const ts = Number(el.getAttribute('data-last'))
      if (ts > prev) {
        prev = ts
        // the DOM has it; the next frame paints it
        requestAnimationFrame(() => seen.push(Date.now() - ts))
      }
    })
    mo.observe(el, { attributes: true, attributeFilter: ['data-last'] })
    await new Promise((r) => setTimeout(r, secs * 1000))
    mo.disconnect()
    return seen
  }, seconds)
}

const cold = []
for (let i = 0; i < loads; i++) cold.push(await coldLoad())
const b = await launch({ width: 1400, height: 900 })
let fps, scrolling, latency
try {
  const page = b.context.pages()[0] ?? (await b.context.newPage())
  fps = await fleetFps(page)
  scrolling = await fleetFps(page, 40)
  latency = await liveLatency(page)
} finally {
  await b.close()
}
console.log(JSON.stringify({ cold, fps, scrolling, latency }))

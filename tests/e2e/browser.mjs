// Shared launcher: Debian's chromium through playwright-core (never a browser download).
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const webDir = process.env.HP_WEB_DIR ?? resolve(import.meta.dirname, '../../web')
const { chromium } = createRequire(join(webDir, 'package.json'))('playwright-core')

export const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** A persistent context in a fresh user-data-dir; `close()` removes the dir. */
export async function launch({ width = 1400, height = 900 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hostpulse-chromium-'))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.HP_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS, // playwright passes the fresh dir as --user-data-dir
    viewport: { width, height },
  })
  return {
    context,
    async close() {
      await context.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`)
}

export async function poll(fn, { timeout = 20000, interval = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  let last
  while (Date.now() < deadline) {
    last = await fn()
    if (last) return last
    await new Promise((r) => setTimeout(r, interval))
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`)
}

/** Cells of the tables under `selector` squeezed or cut off (on a phone a table turns into one
 * card per row, each cell as wide as the card): "column: text" of each offender. */
export async function squeezedCells(page, selector) {
  return page.locator(`${selector} td`).evaluateAll((tds) =>
    tds
      .filter((td) => {
        const r = td.getBoundingClientRect()
        return r.width > 0 && (r.right > window.innerWidth + 1 || r.width < 120)
      })
      .map((td) => `${td.dataset.label ?? '?'}: ${td.innerText.slice(0, 30)} (${Math.round(td.getBoundingClientRect().width)}px)`),
  )
}

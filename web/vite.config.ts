/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url'
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import vue from '@vitejs/plugin-vue'
import { defineConfig, type Plugin } from 'vite'

// `npm run build` writes into the Python package (committed, so `pip install` needs no Node).
// HP_OUT_DIR redirects it (CI builds into a temp dir and compares).
const outDir = process.env.HP_OUT_DIR ?? fileURLToPath(new URL('../src/hostpulse/web', import.meta.url))

// The API docs pages (/docs, /redoc) load Swagger UI and ReDoc from the package, not from a CDN:
// a monitor is often on a network with no way out.
const apiDocsAssets: Record<string, string> = {
  'swagger-ui-bundle.js': 'swagger-ui-dist/swagger-ui-bundle.js',
  'swagger-ui.css': 'swagger-ui-dist/swagger-ui.css',
  'redoc.standalone.js': 'redoc/bundles/redoc.standalone.js',
}

function copyApiDocsAssets(): Plugin {
  return {
    name: 'hostpulse-api-docs-assets',
    apply: 'build',
    writeBundle() {
      const dest = join(outDir, 'api-docs')
      mkdirSync(dest, { recursive: true })
      for (const [name, from] of Object.entries(apiDocsAssets)) {
        copyFileSync(fileURLToPath(new URL(`node_modules/${from}`, import.meta.url)), join(dest, name))
      }
    },
  }
}

// A board opened by its URL waited for the app's code to run before its own chunks (the board
// view, uPlot) were even asked for. index.html names them (<meta name="hp-board-assets">) and
// public/prefetch.js preloads them on a /boards/<id> URL, alongside the app's code; other pages
// load nothing more.
const BOARD_VIEW = '/src/boards/BoardView.vue'

function boardAssets(): Plugin {
  return {
    name: 'hostpulse-board-assets',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(html, ctx) {
        const bundle = ctx.bundle ?? {}
        const chunks = Object.values(bundle).filter((c) => c.type === 'chunk')
        const view = chunks.find((c) => c.facadeModuleId?.endsWith(BOARD_VIEW))
        const script = '<script src="/prefetch.js"></script>'
        if (!view || !html.includes(script)) return html
        const files = new Set<string>()
        const visit = (name: string) => {
          const c = bundle[name]
          if (!c || c.type !== 'chunk' || files.has(c.fileName) || c.isEntry) return
          files.add(c.fileName)
          for (const css of c.viteMetadata?.importedCss ?? []) files.add(css)
          c.imports.forEach(visit)
        }
        visit(view.fileName)
        // what index.html loads anyway is left out
        const content = [...files]
          .filter((f) => !html.includes(`/${f}"`))
          .map((f) => `/${f}`)
          .join(' ')
        // before the script that reads it
        return html.replace(script, `<meta name="hp-board-assets" content="${content}" />\n    ${script}`)
      },
    },
  }
}

export default defineConfig({
  plugins: [vue(), copyApiDocsAssets(), boardAssets()],
  base: '/',
  build: {
    outDir,
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/api': { target: process.env.HP_SERVER ?? 'http://127.0.0.1:8400', ws: true } },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.spec.ts'],
  },
})

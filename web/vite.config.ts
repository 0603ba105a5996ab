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

export default defineConfig({
  plugins: [vue(), copyApiDocsAssets()],
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

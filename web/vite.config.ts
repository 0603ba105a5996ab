/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

// `npm run build` writes into the Python package (committed, so `pip install` needs no Node).
// HP_OUT_DIR redirects it (CI builds into a temp dir and compares).
const outDir = process.env.HP_OUT_DIR ?? fileURLToPath(new URL('../src/hostpulse/web', import.meta.url))

export default defineConfig({
  plugins: [vue()],
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

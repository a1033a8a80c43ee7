/**
 * Build of the inspector page (`npx vite build --config inspector/vite.config.ts`, run by
 * scripts/setup.sh when its inputs change): Preact with React's API names mapped to preact/compat
 * (for @rjsf/core), relative asset URLs so the page works under any kernel prefix, output in
 * inspector/dist (served by plugins/inspector.ts).
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: {
    alias: {
      'react-dom/test-utils': 'preact/test-utils',
      'react-dom': 'preact/compat',
      'react/jsx-runtime': 'preact/jsx-runtime',
      react: 'preact/compat',
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // rjsf marks modules "use client" (a React server-components hint that means nothing here)
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning)
      },
    },
  },
})

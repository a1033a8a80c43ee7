#!/usr/bin/env node
// The `workspace-kernel` command: runs the compiled server (dist/, from `npm run build`) when
// present, else the TypeScript source through tsx. Options: `workspace-kernel --help`.
import { existsSync } from 'node:fs'

const dist = new URL('../dist/server.js', import.meta.url)
if (existsSync(dist)) {
  await import(dist.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(new URL('../server.ts', import.meta.url).href)
}

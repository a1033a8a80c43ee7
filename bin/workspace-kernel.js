#!/usr/bin/env node
// The `workspace-kernel` command (options: `workspace-kernel --help`). The installed package runs
// its compiled JavaScript (dist/server.js); a clone, which has the TypeScript sources, runs
// server.ts through tsx, its dev dependency.
import { existsSync } from 'node:fs'

const source = new URL('../server.ts', import.meta.url)
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api')
  register()
  await import(source.href)
} else {
  await import(new URL('../dist/server.js', import.meta.url).href)
}

#!/usr/bin/env node
// The `workspace-kernel` command: runs server.ts through tsx (a runtime dependency), next to the
// wasm-runtime addon it loads from wasm-runtime/build/. Options: `workspace-kernel --help`.
import { register } from 'tsx/esm/api'

register()
await import(new URL('../server.ts', import.meta.url).href)

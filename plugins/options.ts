import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { kernelError } from './errors.js'

/**
 * A plugin's options with every default of its TypeBox options `schema` filled in (a given value
 * wins; a top-level `undefined` counts as not given), then checked against that schema — the one
 * way every plugin reads its options, so a default lives only in the schema.
 * The caller's object is not modified (nested objects are cloned; functions are kept as they are).
 * @throws KernelError INVALID_CONFIG "<plugin>: <option path> <what is wrong>" for the first bad value
 */
export function pluginOptions<T extends TSchema>(plugin: string, schema: T, given: object): Static<T> {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined))
  const options = Value.Default(schema, Value.Clone(defined)) as Static<T>
  const bad = Value.Errors(schema, options).First()
  if (bad) throw kernelError('INVALID_CONFIG', `${plugin}: ${bad.path.slice(1).replace(/\//g, '.') || 'options'} ${bad.message}`)
  return options
}

import { Ajv, type ValidateFunction } from 'ajv'
import { kernelError } from '../errors.js'

/** Checks a value against a tool's args JSON Schema; returns an error text, or undefined when valid. */
export type ArgsCheck = (args: unknown) => string | undefined

/**
 * Compiles tools' args JSON Schemas with ajv (the validator fastify itself uses).
 * Schemas are compiled once per tool at panel creation, then dropped from ajv's registry so
 * deleted panels leave nothing behind and two panels may reuse the same `$id`.
 */
export class ArgsValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: false, useDefaults: false })

  /**
   * @param schema JSON Schema of the args; undefined accepts any value
   * @throws KernelError 400 INVALID_ARGS_SCHEMA when ajv rejects the schema (message names the tool)
   */
  compile(tool: string, schema: Record<string, unknown> | undefined): ArgsCheck {
    if (schema === undefined) return () => undefined
    let validate: ValidateFunction
    try {
      validate = this.ajv.compile(schema)
    } catch (err) {
      throw kernelError('INVALID_ARGS_SCHEMA', `tool "${tool}": args is not a valid JSON Schema: ${(err as Error).message}`, { tool })
    } finally {
      this.ajv.removeSchema(schema)
    }
    return (args) => (validate(args) ? undefined : this.ajv.errorsText(validate.errors, { dataVar: 'args' }))
  }
}

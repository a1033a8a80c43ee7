import { Type, type SchemaOptions, type Static, type TLiteral, type TNull, type TSchema, type TUnion } from '@sinclair/typebox'

/**
 * A union of string literals, e.g. `Literals(['a', 'b'])` is `Type.Union([Type.Literal('a'), Type.Literal('b')])`:
 * the same schema (`anyOf` of `{ type: 'string', const }`), typed `'a' | 'b'`.
 */
export function Literals<const T extends string[]>(values: T, options?: SchemaOptions): TUnion<{ [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((value) => Type.Literal(value)), options) as TUnion<{ [K in keyof T]: TLiteral<T[K]> }>
}

/** `schema` or `null` (`anyOf [schema, { type: 'null' }]`), e.g. an exit code before the process exits. */
export function Nullable<T extends TSchema>(schema: T, options?: SchemaOptions): TUnion<[T, TNull]> {
  return Type.Union([schema, Type.Null()], options)
}

/**
 * Body of every HTTP error reply: `{ statusCode, code, error, message }`.
 * `code` is a stable machine-readable code (e.g. `PANEL_NOT_FOUND`), `error` the HTTP reason phrase.
 */
export const ErrorReply = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'ErrorReply' },
)
export type ErrorReply = Static<typeof ErrorReply>

/** Reply schemas for the error statuses a route may answer with. */
export function errorReplies(...statuses: number[]): Record<number, typeof ErrorReply> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorReply]))
}

/** Reply of `GET /health`. `uptimeMs` in ms; `extensions` = names of registered extensions. */
export const HealthReply = Type.Object(
  {
    status: Type.Literal('ok'),
    version: Type.String(),
    uptimeMs: Type.Integer({ minimum: 0 }),
    authEnabled: Type.Boolean(),
    extensions: Type.Array(Type.String()),
  },
  { $id: 'HealthReply' },
)
export type HealthReply = Static<typeof HealthReply>

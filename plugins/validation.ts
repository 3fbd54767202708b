import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifyServerOptions } from 'fastify'

type Ajv = AjvCompiler.Ajv

/**
 * Adds the `x-max-bytes` keyword: a UTF-8 byte limit for strings, which
 * `maxLength` (it counts characters) cannot express, measured on the Unicode
 * NFC form (the form passwords are hashed in).
 */
function maxBytesKeyword (ajv: Ajv): Ajv {
  return ajv.addKeyword({
    keyword: 'x-max-bytes',
    type: 'string',
    schemaType: 'number',
    error: { message: ({ schemaCode }) => `must NOT be longer than ${String(schemaCode)} bytes in UTF-8` },
    validate: (maxBytes: number, data: string) => Buffer.byteLength(data.normalize('NFC')) <= maxBytes
  })
}

// One selector each, kept for the process: a selector pools its Ajv instances
// by the shared schemas, and Fastify asks for a validator once per
// encapsulation context: a new selector per call would build a set of Ajv
// instances for each, at start-up.
const strictSelector = AjvCompiler()
const coercingSelector = AjvCompiler()

/**
 * Fastify's Ajv defaults drop unknown fields silently and coerce types
 * everywhere (`{ "password": 123 }` would pass as "123"). Bodies get a strict,
 * non-coercing validator; querystring, params and headers, which are strings
 * on the wire, keep coercion. Unknown fields are never removed, so
 * `additionalProperties: false` refuses them with a 400.
 */
export const schemaController: FastifyServerOptions['schemaController'] = {
  compilersFactory: {
    buildValidator (externalSchemas) {
      const compileStrict = strictSelector(externalSchemas, {
        customOptions: { coerceTypes: false, removeAdditional: false },
        plugins: [maxBytesKeyword]
      })
      const compileCoercing = coercingSelector(externalSchemas, {
        customOptions: { coerceTypes: 'array', removeAdditional: false },
        plugins: [maxBytesKeyword]
      })
      return (routeSchema) => routeSchema.httpPart === 'body' ? compileStrict(routeSchema) : compileCoercing(routeSchema)
    }
  }
}

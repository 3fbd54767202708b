import { EnvSchema } from '../schemas/config.js'

interface PropertySchema {
  default?: unknown
  description?: string
  type?: string
  anyOf?: Array<{ const?: unknown }>
  minimum?: number
  maximum?: number
}

function describeType (schema: PropertySchema): string {
  if (schema.anyOf) return schema.anyOf.map((option) => `\`${String(option.const)}\``).join(' \\| ')
  if (schema.type === 'integer') return `integer ${schema.minimum ?? ''}–${schema.maximum ?? ''}`
  return schema.type ?? 'string'
}

/** The configuration table of docs/configuration.md, generated from the config schema. */
export function renderConfigTable (): string {
  const rows = Object.entries(EnvSchema.properties).map(([name, property]) => {
    const schema = property as PropertySchema
    const fallback = schema.default === undefined ? '—' : `\`${String(schema.default)}\``
    return `| \`${name}\` | ${describeType(schema)} | ${fallback} | ${schema.description ?? ''} |`
  })
  return ['| variable | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(renderConfigTable())
}

import { randomBytes } from 'node:crypto'
import { Value } from '@sinclair/typebox/value'
import { EnvSchema, type Env } from './schemas/config.js'

export interface Config {
  nodeEnv: Env['NODE_ENV']
  host: string
  port: number
  logLevel: string
  mongodb: {
    url: string
    serverSelectionTimeoutMs: number
  }
  jwt: {
    secret: string
    /** True when no secret was configured and one was generated for this process only. */
    secretIsEphemeral: boolean
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
    allowQueryToken: boolean
  }
  bcryptCost: number
  bodyLimitBytes: number
  shutdownGraceMs: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const MIN_SECRET_BYTES = 32
const MIN_PRODUCTION_BCRYPT_COST = 10

/**
 * Reads every setting from the environment once: defaults, conversion from
 * strings, then a check against `EnvSchema`. Throws a `ConfigError` whose
 * message names the offending variable (and never echoes a secret's value).
 */
export function loadConfig (source: Record<string, string | undefined>): Config {
  const known: Record<string, unknown> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    const value = source[name]
    // An empty variable (`PORT=` in a .env file) means "unset", not "the empty string".
    if (value !== undefined && value !== '') known[name] = value
  }

  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, known))
  const firstError = Value.Errors(EnvSchema, converted).First()
  if (firstError) {
    const name = firstError.path.replace(/^\//, '') || 'environment'
    const allowed = (firstError.schema.anyOf as Array<{ const?: unknown }> | undefined)?.map((option) => option.const)
    const problem = allowed ? `must be one of ${allowed.join(', ')}` : firstError.message.toLowerCase()
    throw new ConfigError(`Invalid configuration: ${name} ${problem}`)
  }
  const env = converted as Env

  const isProduction = env.NODE_ENV === 'production'
  let secret = env.JWT_SECRET
  if (secret === undefined) {
    if (isProduction) {
      throw new ConfigError('Invalid configuration: JWT_SECRET is required when NODE_ENV=production')
    }
    secret = randomBytes(48).toString('base64url')
  } else if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`Invalid configuration: JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  if (isProduction && env.BCRYPT_COST < MIN_PRODUCTION_BCRYPT_COST) {
    throw new ConfigError(`Invalid configuration: BCRYPT_COST must be at least ${MIN_PRODUCTION_BCRYPT_COST} when NODE_ENV=production`)
  }

  return {
    nodeEnv: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    mongodb: {
      url: env.MONGODB_URL,
      serverSelectionTimeoutMs: env.MONGODB_SERVER_SELECTION_TIMEOUT_MS
    },
    jwt: {
      secret,
      secretIsEphemeral: env.JWT_SECRET === undefined,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      allowQueryToken: env.ALLOW_QUERY_TOKEN
    },
    bcryptCost: env.BCRYPT_COST,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS
  }
}

import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Value } from '@sinclair/typebox/value'
import { Type, type Static } from '@sinclair/typebox'
import { EnvSchema, type Env } from './schemas/config.js'
import { ScopeSchema } from './schemas/admin.js'
import { refreshTokenKey } from './plugins/sessions/token-crypto.js'
import {
  generateSigningKey, parseSigningKey, parseVerificationKeys,
  type AsymmetricAlgorithm, type SigningAlgorithm, type SigningKey, type VerificationKey
} from './keys.js'

export interface Config {
  nodeEnv: Env['NODE_ENV']
  host: string
  port: number
  logLevel: string
  mongodb: {
    url: string
    /** The database named in the URL's path, or `auth` when it names none. */
    database: string
    serverSelectionTimeoutMs: number
  }
  jwt: {
    algorithm: SigningAlgorithm
    /** The HS256 secret; only with `algorithm: 'HS256'`. */
    secret?: string
    /** The active key pair; only with an asymmetric algorithm. */
    signingKey?: SigningKey
    /** Every key that verifies tokens (the active one first); empty with HS256. */
    verificationKeys: VerificationKey[]
    /** True when no key or secret was configured and one was generated for this process only. */
    ephemeral: boolean
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
    verifyCacheSize: number
    allowQueryToken: boolean
  }
  sessions: {
    ttlSeconds: number
    refreshGraceSeconds: number
    purgeIntervalSeconds: number
    /** How long a revocation must be served: until the last access token of the session has expired. */
    accessTokenTtlSeconds: number
    /** The refresh tokens' MAC key, derived from the signing secret or key. */
    refreshTokenKey: Buffer
  }
  trustProxy: boolean | number | string[]
  corsOrigins: string[]
  rateLimit: {
    windowSeconds: number
    ipMax: number
    emailWindowSeconds: number
    emailMax: number
    accountMax: number
    /** Messages /password/forgot and /email/verification queue per address and window. */
    messageRequestMax: number
    /** Tokens a service client gets from POST /oauth/token per window. */
    clientTokenMax: number
    redisUrl?: string
    redisKeyPrefix: string
  }
  email: {
    smtpUrl?: string
    from: string
    /** The domain of EMAIL_FROM's address, which names every Message-ID. */
    messageIdDomain: string
    productName: string
    templatesDir?: string
    passwordResetUrl?: string
    verifyUrl?: string
    requireVerification: boolean
    resetCodeTtlSeconds: number
    verificationCodeTtlSeconds: number
    maxAttempts: number
    retryBaseSeconds: number
    claimTimeoutSeconds: number
    pollIntervalMs: number
  }
  /** Lower-cased: verified accounts with these addresses hold the role `admin`. */
  adminEmails: string[]
  clients: {
    secretOverlapSeconds: number
    declared: DeclaredClient[]
  }
  revocationSyncIntervalMs: number
  revocationStalenessBoundMs: number
  revocationStreams: {
    maxStreams: number
    maxStreamsPerClient: number
    heartbeatMs: number
  }
  maxEventLoopDelayMs: number
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
  if (isProduction && env.BCRYPT_COST < MIN_PRODUCTION_BCRYPT_COST) {
    throw new ConfigError(`Invalid configuration: BCRYPT_COST must be at least ${MIN_PRODUCTION_BCRYPT_COST} when NODE_ENV=production`)
  }
  const keys = env.JWT_ALGORITHM === 'HS256' ? loadSharedSecret(env, isProduction) : loadKeyPairs(env, env.JWT_ALGORITHM, isProduction)
  if (isProduction && env.SMTP_URL === undefined) {
    throw new ConfigError('Invalid configuration: SMTP_URL is required when NODE_ENV=production (verification and password-reset messages must be delivered)')
  }

  return {
    nodeEnv: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    mongodb: {
      url: env.MONGODB_URL,
      database: databaseOf(env.MONGODB_URL),
      serverSelectionTimeoutMs: env.MONGODB_SERVER_SELECTION_TIMEOUT_MS
    },
    jwt: {
      algorithm: env.JWT_ALGORITHM,
      ...keys,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      verifyCacheSize: env.JWT_VERIFY_CACHE_SIZE,
      allowQueryToken: env.ALLOW_QUERY_TOKEN
    },
    sessions: {
      ttlSeconds: env.SESSION_TTL_SECONDS,
      refreshGraceSeconds: env.REFRESH_GRACE_SECONDS,
      purgeIntervalSeconds: env.EXPIRED_PURGE_INTERVAL_SECONDS,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenKey: refreshTokenKey('secret' in keys ? keys.secret : keys.signingKey.privateKeyPem)
    },
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    rateLimit: {
      windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS,
      ipMax: env.RATE_LIMIT_IP_MAX,
      emailWindowSeconds: env.RATE_LIMIT_EMAIL_WINDOW_SECONDS,
      emailMax: env.RATE_LIMIT_EMAIL_MAX,
      accountMax: env.RATE_LIMIT_ACCOUNT_MAX ?? 10 * env.RATE_LIMIT_EMAIL_MAX,
      messageRequestMax: env.EMAIL_REQUEST_MAX,
      clientTokenMax: env.CLIENT_TOKEN_RATE_MAX,
      ...(env.REDIS_URL === undefined ? {} : { redisUrl: env.REDIS_URL }),
      redisKeyPrefix: env.REDIS_KEY_PREFIX
    },
    email: {
      ...(env.SMTP_URL === undefined ? {} : { smtpUrl: env.SMTP_URL }),
      from: env.EMAIL_FROM,
      messageIdDomain: domainOfSender(env.EMAIL_FROM),
      productName: env.EMAIL_PRODUCT_NAME,
      ...(env.EMAIL_TEMPLATES_DIR === undefined ? {} : { templatesDir: env.EMAIL_TEMPLATES_DIR }),
      ...(env.PASSWORD_RESET_URL === undefined ? {} : { passwordResetUrl: env.PASSWORD_RESET_URL }),
      ...(env.EMAIL_VERIFY_URL === undefined ? {} : { verifyUrl: env.EMAIL_VERIFY_URL }),
      requireVerification: env.REQUIRE_EMAIL_VERIFICATION,
      resetCodeTtlSeconds: env.PASSWORD_RESET_CODE_TTL_SECONDS,
      verificationCodeTtlSeconds: env.EMAIL_VERIFICATION_CODE_TTL_SECONDS,
      maxAttempts: env.EMAIL_MAX_ATTEMPTS,
      retryBaseSeconds: env.EMAIL_RETRY_BASE_SECONDS,
      claimTimeoutSeconds: env.EMAIL_CLAIM_TIMEOUT_SECONDS,
      pollIntervalMs: env.EMAIL_POLL_INTERVAL_MS
    },
    adminEmails: splitList(env.ADMIN_EMAILS).map((email) => email.toLowerCase()),
    clients: {
      secretOverlapSeconds: env.CLIENT_SECRET_OVERLAP_SECONDS,
      declared: parseDeclaredClients(env.SERVICE_CLIENTS, isProduction)
    },
    revocationSyncIntervalMs: env.REVOCATION_SYNC_INTERVAL_MS,
    revocationStalenessBoundMs: env.REVOCATION_STALENESS_BOUND_SECONDS * 1000,
    revocationStreams: {
      maxStreams: env.REVOCATION_STREAMS_MAX,
      maxStreamsPerClient: env.REVOCATION_STREAMS_PER_CLIENT,
      heartbeatMs: env.REVOCATION_STREAM_HEARTBEAT_SECONDS * 1000
    },
    maxEventLoopDelayMs: env.MAX_EVENT_LOOP_DELAY_MS,
    bcryptCost: env.BCRYPT_COST,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS
  }
}

function loadSharedSecret (env: Env, isProduction: boolean) {
  if (env.JWT_PRIVATE_KEY !== undefined || env.JWT_PRIVATE_KEY_FILE !== undefined) {
    throw new ConfigError('Invalid configuration: JWT_PRIVATE_KEY is set but JWT_ALGORITHM=HS256 signs with JWT_SECRET')
  }
  let secret = env.JWT_SECRET
  if (secret === undefined) {
    if (isProduction) throw new ConfigError('Invalid configuration: JWT_SECRET is required when NODE_ENV=production and JWT_ALGORITHM=HS256')
    secret = randomBytes(48).toString('base64url')
  } else if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`Invalid configuration: JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  return { secret, verificationKeys: [], ephemeral: env.JWT_SECRET === undefined }
}

/** A variable's value, or the content of the file its `_FILE` twin names (never both). */
function readValueOrFile (env: Env, name: 'JWT_PRIVATE_KEY' | 'JWT_VERIFY_KEYS'): string | undefined {
  const fileName = `${name}_FILE` as const
  const path = env[fileName]
  if (env[name] !== undefined && path !== undefined) throw new ConfigError(`Invalid configuration: set ${name} or ${fileName}, not both`)
  if (path === undefined) return env[name]
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${fileName} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

function loadKeyPairs (env: Env, algorithm: AsymmetricAlgorithm, isProduction: boolean) {
  if (env.JWT_SECRET !== undefined) {
    throw new ConfigError(`Invalid configuration: JWT_SECRET is only used with JWT_ALGORITHM=HS256 (JWT_ALGORITHM=${algorithm} signs with JWT_PRIVATE_KEY)`)
  }
  const privatePem = readValueOrFile(env, 'JWT_PRIVATE_KEY')
  let signingKey: SigningKey
  if (privatePem === undefined) {
    if (isProduction) throw new ConfigError('Invalid configuration: JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is required when NODE_ENV=production')
    signingKey = generateSigningKey(algorithm)
  } else {
    try {
      signingKey = parseSigningKey(privatePem)
    } catch (error) {
      throw new ConfigError(`Invalid configuration: JWT_PRIVATE_KEY is not a usable private key PEM (${(error as Error).message})`)
    }
    if (signingKey.algorithm !== algorithm) {
      throw new ConfigError(`Invalid configuration: JWT_PRIVATE_KEY is a ${signingKey.algorithm} key but JWT_ALGORITHM=${algorithm}`)
    }
  }

  let others: VerificationKey[] = []
  const verifyPems = readValueOrFile(env, 'JWT_VERIFY_KEYS')
  if (verifyPems !== undefined) {
    try {
      others = parseVerificationKeys(verifyPems)
    } catch (error) {
      throw new ConfigError(`Invalid configuration: JWT_VERIFY_KEYS holds a key that cannot be used (${(error as Error).message})`)
    }
  }
  const verificationKeys: VerificationKey[] = [signingKey]
  for (const key of others) {
    if (!verificationKeys.some((known) => known.kid === key.kid)) verificationKeys.push(key)
  }
  return { signingKey, verificationKeys, ephemeral: privatePem === undefined }
}

const DEFAULT_DATABASE = 'auth'

/**
 * The database of a MongoDB URL: its path, or `auth` when it has none (the
 * driver would pick `test`, silently). Hosts may be a list, so no URL parser.
 */
function databaseOf (url: string): string {
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/?([^?]*)/.exec(url)?.[1] ?? ''
  return path === '' ? DEFAULT_DATABASE : decodeURIComponent(path)
}

/** The domain of `address` or of `Name <address>`. */
function domainOfSender (from: string): string {
  const address = /<([^<>]*)>\s*$/.exec(from)?.[1] ?? from.trim()
  const match = /^[^\s@<>]+@([^\s@<>]+)$/.exec(address)
  if (match === null) throw new ConfigError('Invalid configuration: EMAIL_FROM must be an email address, or Name <address>')
  return match[1]!
}

const DeclaredClientsSchema = Type.Array(Type.Object({
  id: Type.String({ pattern: '^[a-z][a-z0-9-]{2,63}$' }),
  secret: Type.String({ minLength: 16, maxLength: 256 }),
  scopes: Type.Array(ScopeSchema, { maxItems: 32, uniqueItems: true }),
  audience: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 }))
}, { additionalProperties: false }))

export type DeclaredClient = Static<typeof DeclaredClientsSchema>[number]

/** SERVICE_CLIENTS: never echoes a secret, only which client's setting is wrong. */
function parseDeclaredClients (value: string | undefined, isProduction: boolean): DeclaredClient[] {
  if (value === undefined) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw new ConfigError('Invalid configuration: SERVICE_CLIENTS must be a JSON array of { id, secret, scopes, audience?, name? }')
  }
  const firstError = Value.Errors(DeclaredClientsSchema, parsed).First()
  if (firstError !== undefined) {
    throw new ConfigError(`Invalid configuration: SERVICE_CLIENTS${firstError.path} ${firstError.message.toLowerCase()} (each client: id of 3-64 a-z, 0-9, "-"; secret of 16-256 characters; scopes as strings)`)
  }
  const clients = parsed as DeclaredClient[]
  const ids = new Set<string>()
  for (const client of clients) {
    if (ids.has(client.id)) throw new ConfigError(`Invalid configuration: SERVICE_CLIENTS declares ${client.id} twice`)
    ids.add(client.id)
    if (isProduction && client.secret.length < 32) {
      throw new ConfigError(`Invalid configuration: SERVICE_CLIENTS: the secret of ${client.id} must have at least 32 characters when NODE_ENV=production (e.g. openssl rand -base64 32)`)
    }
  }
  return clients
}

function splitList (value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

/** Each origin exactly as a browser sends it: scheme, host and port, nothing more. */
function parseCorsOrigins (value: string): string[] {
  const origins = splitList(value)
  for (const origin of origins) {
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {}
    if (parsed === undefined || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError('Invalid configuration: CORS_ORIGINS must be comma-separated origins such as https://app.example.com (scheme, host and optional port; no path or trailing slash)')
    }
  }
  return origins
}

function parseTrustProxy (value: string): boolean | number | string[] {
  const normalised = value.trim().toLowerCase()
  if (normalised === 'false' || normalised === '') return false
  if (normalised === 'true') return true
  if (/^\d+$/.test(normalised)) return Number(normalised)
  const proxies = splitList(value)
  if (proxies.some((proxy) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(proxy))) {
    throw new ConfigError('Invalid configuration: TRUST_PROXY must be true, false, a hop count or comma-separated IP addresses/CIDRs')
  }
  return proxies
}

import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import tap, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { DestinationStream } from 'pino'
import { buildApp } from '../app.js'
import { loadConfig, type Config } from '../config.js'
import { generateSigningKey } from '../keys.js'

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-bytes-long'
/** The signing key of every app a test file builds, unless the test configures its own. */
export const TEST_SIGNING_KEY = generateSigningKey('EdDSA')

let memoryServerUrl: Promise<string> | undefined

/**
 * The database server for the tests: MONGODB_URL when set (CI points it at
 * FerretDB), otherwise a real `mongod` started once per test file through
 * mongodb-memory-server (which downloads it on first use).
 */
function serverUrl (): Promise<string> {
  const configured = process.env.MONGODB_URL
  if (configured !== undefined && configured !== '') return Promise.resolve(configured)
  memoryServerUrl ??= startMemoryServer()
  return memoryServerUrl
}

async function startMemoryServer (): Promise<string> {
  const { MongoMemoryServer } = await import('mongodb-memory-server-core')
  try {
    const server = await MongoMemoryServer.create()
    tap.teardown(() => server.stop().then(() => undefined))
    return server.getUri()
  } catch (error) {
    throw new Error(`Cannot start a MongoDB server for the tests: ${(error as Error).message}. ` +
      'Set MONGODB_URL to a running MongoDB or FerretDB (see README), or allow mongodb-memory-server to download mongod.')
  }
}

/** A URL to a database of its own on the test server (names: ^[a-zA-Z0-9_-]{1,63}$ for FerretDB). */
export async function freshDatabaseUrl (): Promise<string> {
  const url = new URL(await serverUrl())
  url.pathname = `/test_${process.pid}_${randomBytes(5).toString('hex')}`
  return url.toString()
}

export function testConfig (env: Record<string, string> = {}): Config {
  const ownKeys = ['JWT_ALGORITHM', 'JWT_SECRET', 'JWT_PRIVATE_KEY', 'JWT_PRIVATE_KEY_FILE'].some((name) => name in env)
  const keys = ownKeys ? {} : { JWT_PRIVATE_KEY: TEST_SIGNING_KEY.privateKeyPem }
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    // Low cost where a test is not about hashing: cost 4 is ~1 ms, 12 is ~280 ms.
    BCRYPT_COST: '4',
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: '2000',
    // Limits and load shedding are tested on purpose where they are the subject.
    RATE_LIMIT_IP_MAX: '100000',
    RATE_LIMIT_EMAIL_MAX: '100000',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    ...keys,
    ...env
  })
}

export interface BuildOptions {
  env?: Record<string, string>
  logStream?: DestinationStream
  /** Runs before `ready()`: a test may add a route of its own here. */
  beforeReady?: (app: FastifyInstance) => void
}

/**
 * Builds the real app on a database of its own (unless `env.MONGODB_URL` names
 * one) and registers teardown: drop that database, close the app.
 */
export async function build (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = { MONGODB_URL: await freshDatabaseUrl(), ...options.env }
  const app = buildApp(testConfig(env), { logStream: options.logStream })
  t.teardown(async () => {
    // Indexes are created at onReady without being awaited: let that finish,
    // or its next createIndex makes the database again after the drop.
    await Promise.allSettled([app.usersRepository.ensureIndexes(), app.sessionsRepository.ensureIndexes(), app.outbox.ensureIndexes(), app.emailCodes.ensureIndexes()])
    await app.outbox.idle()
    await app.mongo.db?.dropDatabase().catch(() => undefined)
    await app.close()
  })
  options.beforeReady?.(app)
  await app.ready()
  return app
}

let userCounter = 0

export function uniqueEmail (): string {
  userCounter += 1
  return `user${userCounter}.${randomBytes(3).toString('hex')}@example.com`
}

export interface RegisteredUser {
  id: string
  email: string
  password: string
  token: string
  refreshToken: string
  /** The session of these tokens (the `sid` claim). */
  sessionId: string
  /** `app.inject` with this user's access token in the Authorization header. */
  inject: (options: InjectOptions) => Promise<LightMyRequestResponse>
}

/** Signs a new user up and logs them in, through the API. */
export async function registerUser (app: FastifyInstance, credentials: { email?: string, password?: string } = {}): Promise<RegisteredUser> {
  const email = credentials.email ?? uniqueEmail()
  const password = credentials.password ?? 'a perfectly fine password'
  const signup = await app.inject({ method: 'POST', url: '/signup', payload: { email, password } })
  if (signup.statusCode !== 201) throw new Error(`signup failed: ${signup.statusCode} ${signup.body}`)
  const login = await app.inject({ method: 'POST', url: '/login', payload: { email, password } })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`)
  const { token, refreshToken } = login.json<{ token: string, refreshToken: string }>()
  return {
    id: signup.json<{ user: { id: string } }>().user.id,
    email: email.trim().toLowerCase(),
    password,
    token,
    refreshToken,
    sessionId: decodeClaims(token).sid as string,
    inject: (options) => app.inject({ ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } })
  }
}

/** Collects log lines in memory, for tests that read what the service logs. */
export function logCapture (): DestinationStream & { lines: () => string[] } {
  const chunks: string[] = []
  return {
    write (chunk: string) { chunks.push(chunk) },
    lines: () => chunks.join('').split('\n').filter((line) => line !== '')
  }
}

/** The claims of a JWT, decoded without verification (for assertions only). */
export function decodeClaims (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
}

/** The header of a JWT, decoded without verification (for assertions only). */
export function decodeHeader (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString())
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** POST /token/refresh with a refresh token. */
export function refresh (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken } })
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

/** Logs in through the API and returns the tokens. */
export async function login (app: FastifyInstance, user: { email: string, password: string }, headers: Record<string, string> = {}) {
  const response = await app.inject({ method: 'POST', url: '/login', headers, payload: { email: user.email, password: user.password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const body = response.json<{ token: string, refreshToken: string, expiresIn: number, refreshExpiresIn: number }>()
  return { ...body, sessionId: decodeClaims(body.token).sid as string }
}

/**
 * A service client allowed to read the revocation feed, made with the real
 * repository (as an admin would through /admin/clients), and a token for it
 * from POST /oauth/token. The app's in-memory client list is read at once.
 */
export async function revocationsReader (app: FastifyInstance, scopes = ['revocations:read']) {
  const { client, secret } = await app.clientsRepository.create({ name: `reader-${randomBytes(3).toString('hex')}`, scopes })
  await app.revocationState.sync()
  const response = await app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { authorization: `Basic ${Buffer.from(`${client.id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials'
  })
  if (response.statusCode !== 200) throw new Error(`no client token: ${response.statusCode} ${response.body}`)
  const token = response.json<{ access_token: string }>().access_token
  return { clientId: client.id, clientSecret: secret, token, headers: { authorization: `Bearer ${token}` } }
}

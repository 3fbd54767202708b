import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { build, registerUser, type RegisteredUser, revocationsReader } from './helper.js'

// Property-based tests over every endpoint: whatever arrives, the answer is
// never a 500, every error has the contract's shape, a refused request writes
// nothing, and the service is healthy afterwards.

const RUNS = Number(process.env.FUZZ_RUNS ?? 120)
const COLLECTIONS = ['users', 'sessions', 'refresh_tokens', 'revocations', 'outbox', 'email_codes', 'email_code_attempts']

const edgeStrings = fc.constantFrom(
  '', ' ', '\u0000', 'a\u0000b', 'ann@example.com\u0000', '\u202Eevil\u202C', 'e\u0301\u0301\u0301', '\uD800', '\uDFFF', 'x\uD83D',
  '𝕬𝖓𝖓@example.com', 'ANN@EXAMPLE.COM', ' ann@example.com ', '__proto__', 'constructor', 'prototype', '$gt', '$where', 'a.b', '{}', '[]',
  'null', 'true', '%00', '../../etc/passwd', '<script>alert(1)</script>', "' OR 1=1 --", 'é'.repeat(37), 'p'.repeat(73)
)
const weirdString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  edgeStrings,
  fc.string({ minLength: 5000, maxLength: 6000 })
)
const operator = fc.constantFrom({ $gt: '' }, { $ne: null }, { $regex: '.*' }, { $where: 'sleep(1000)' }, { $in: ['a'] }, { $exists: true })
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: weirdString },
  fc.integer(), fc.double(), fc.boolean(), fc.constant(null), operator,
  fc.array(weirdString, { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 4 })
)
const fieldName = fc.oneof(fc.constantFrom('email', 'password', 'refreshToken', 'currentPassword', 'newPassword', 'since', '__proto__', 'constructor', '$set'), fc.string({ maxLength: 12 }))

/** A JSON object built as text, so that keys like `__proto__` survive as own keys. */
const jsonObjectText = fc.array(fc.tuple(fieldName, weirdValue), { maxLength: 5 })
  .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}`).join(',')}}`)

const contentType = fc.constantFrom(
  'application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml',
  'multipart/form-data; boundary=x', 'application/json, text/plain', 'application/octet-stream', ''
)

const rawBody = fc.oneof(
  jsonObjectText,
  fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value) ?? 'null'),
  fc.string(),
  fc.constantFrom('{', '{"email":', '[[[[[[[[[[[[[[[[[[[[', `${'['.repeat(5000)}${']'.repeat(5000)}`, '{"a":'.repeat(2000), '\u0000', '{"email":"a@b.co","password":"x"}x'),
  fc.array(fc.tuple(fieldName, weirdString), { maxLength: 5 }).map((pairs) => pairs.map(([key, value]) => `${percentEncode(key)}=${percentEncode(value)}`).join('&')),
  fc.constantFrom('email[$ne]=x&password[$gt]=', 'email=a&email=b', '__proto__[admin]=1&email=a@b.co', 'constructor[prototype][x]=1', 'email=%ED%A0%80&password=%', '%zz=1')
)

/** Percent-encodes the UTF-8 bytes (a lone surrogate becomes U+FFFD, which encodeURIComponent refuses). */
function percentEncode (value: string): string {
  return [...Buffer.from(value)].map((byte) => /[A-Za-z0-9_.~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('')
}

/** Query values as a client might send them, encoded or broken on purpose. */
const queryValue = fc.oneof(
  { weight: 4, arbitrary: weirdString.map(percentEncode) },
  fc.constantFrom('%', '%zz', '%ED%A0%80', '%C0%AF', '%00', '%E2%80%AE', 'a+b', '%2B%2F%3D')
)

async function documentCounts (app: FastifyInstance) {
  return Promise.all(COLLECTIONS.map((name) => app.mongo.db!.collection(name).countDocuments()))
}

/** The invariants every answer must keep. Throws (for fast-check) with the case when one breaks. */
async function checkAnswer (app: FastifyInstance, request: InjectOptions): Promise<LightMyRequestResponse> {
  const before = await documentCounts(app)
  const response = await app.inject(request)
  const describe = () => `${request.method} ${String(request.url).slice(0, 120)} -> ${response.statusCode} ${response.body.slice(0, 200)}`
  if (response.statusCode >= 500) throw new Error(`a server error: ${describe()}`)
  if (response.statusCode >= 400) {
    let body: Record<string, unknown>
    try {
      body = response.json()
    } catch {
      throw new Error(`an error body that is not JSON: ${describe()}`)
    }
    const keys = Object.keys(body).sort().join(',')
    if (keys !== 'code,error,message,statusCode' || body.statusCode !== response.statusCode || typeof body.code !== 'string') {
      throw new Error(`an error outside the contract's shape: ${describe()}`)
    }
    const after = await documentCounts(app)
    if (after.some((count, index) => count !== before[index])) throw new Error(`a refused request wrote to the database: ${describe()}`)
  }
  return response
}

async function fuzzApp (t: Test): Promise<{ app: FastifyInstance, user: RegisteredUser }> {
  const app = await build(t)
  return { app, user: await registerUser(app) }
}

async function stillHealthy (t: Test, app: FastifyInstance, user: RegisteredUser) {
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'still ready')
  t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200, 'still serving')
}

t.test('write endpoints: random bodies and content types', async (t) => {
  const { app, user } = await fuzzApp(t)
  const endpoints: Array<{ method: 'POST' | 'PUT' | 'DELETE', url: string, headers?: Record<string, string> }> = [
    { method: 'POST', url: '/signup' },
    { method: 'POST', url: '/login' },
    { method: 'POST', url: '/token/refresh' },
    { method: 'POST', url: '/logout' },
    { method: 'PUT', url: '/user/password', headers: { authorization: `Bearer ${user.token}` } },
    { method: 'PUT', url: '/user/email', headers: { authorization: `Bearer ${user.token}` } },
    { method: 'POST', url: '/password/forgot' },
    { method: 'POST', url: '/password/reset' },
    { method: 'POST', url: '/email/verification' },
    { method: 'POST', url: '/email/verify' },
    { method: 'DELETE', url: '/user', headers: { authorization: `Bearer ${user.token}` } }
  ]
  for (const endpoint of endpoints) {
    await fc.assert(fc.asyncProperty(rawBody, contentType, async (payload, type) => {
      await checkAnswer(app, { method: endpoint.method, url: endpoint.url, payload, headers: { ...endpoint.headers, ...(type === '' ? {} : { 'content-type': type }) } })
    }), { numRuns: RUNS })
    t.pass(`${endpoint.method} ${endpoint.url}: ${RUNS} random bodies`)
  }
  await stillHealthy(t, app, user)
})

t.test('write endpoints: well-formed JSON with the right keys and wrong values', async (t) => {
  const { app, user } = await fuzzApp(t)
  const shapes: Array<[string, 'POST' | 'PUT', string[]]> = [
    ['/signup', 'POST', ['email', 'password']],
    ['/login', 'POST', ['email', 'password']],
    ['/token/refresh', 'POST', ['refreshToken']],
    ['/logout', 'POST', ['refreshToken']],
    ['/user/password', 'PUT', ['currentPassword', 'newPassword']],
    ['/user/email', 'PUT', ['newEmail', 'password']],
    ['/password/forgot', 'POST', ['email']],
    ['/password/reset', 'POST', ['email', 'code', 'newPassword']],
    ['/password/reset', 'POST', ['token', 'newPassword']],
    ['/email/verification', 'POST', ['email']],
    ['/email/verify', 'POST', ['email', 'code']],
    ['/email/verify', 'POST', ['token']]
  ]
  for (const [url, method, keys] of shapes) {
    const body = fc.tuple(...keys.map(() => weirdValue)).map((values) => Object.fromEntries(keys.map((key, index) => [key, values[index]])))
    await fc.assert(fc.asyncProperty(body, async (payload) => {
      await checkAnswer(app, { method, url, payload: payload as Record<string, unknown>, headers: { authorization: `Bearer ${user.token}` } })
    }), { numRuns: RUNS })
    t.pass(`${method} ${url}: ${RUNS} bodies`)
  }
  await stillHealthy(t, app, user)
})

t.test('read endpoints: random query strings, path parameters and headers', async (t) => {
  const { app, user } = await fuzzApp(t)
  const reader = await revocationsReader(app)
  await fc.assert(fc.asyncProperty(queryValue, async (value) => {
    await checkAnswer(app, { method: 'GET', url: `/user/profile?secret_token=${value}` })
    await checkAnswer(app, { method: 'GET', url: `/user/sessions?secret_token=${value}` })
    await checkAnswer(app, { method: 'GET', url: `/revocations?since=${value}`, headers: reader.headers })
    await checkAnswer(app, { method: 'GET', url: `/user/profile?secret_token=${value}&secret_token=${value}` })
  }), { numRuns: RUNS })
  await fc.assert(fc.asyncProperty(queryValue, async (id) => {
    await checkAnswer(app, { method: 'DELETE', url: `/user/sessions/${id}`, headers: { authorization: `Bearer ${user.token}` } })
  }), { numRuns: RUNS })
  const headerValue = fc.string({ unit: 'grapheme-ascii', maxLength: 300 })
  await fc.assert(fc.asyncProperty(headerValue, headerValue, async (authorization, requestId) => {
    await checkAnswer(app, { method: 'GET', url: '/user/profile', headers: { authorization, 'x-request-id': requestId } })
    await checkAnswer(app, { method: 'GET', url: '/user/sessions', headers: { authorization: `Bearer ${authorization}` } })
  }), { numRuns: RUNS })
  t.pass('random queries, ids and headers')
  await stillHealthy(t, app, user)
})

t.test('fixed cases: malformed and oversized tokens and headers', async (t) => {
  const { app, user } = await fuzzApp(t)
  const [header, payload, signature] = user.token.split('.') as [string, string, string]
  const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
  const tokens = [
    'a'.repeat(100_000),
    '...', 'a.b.c', `${header}.${payload}`, `${header}.${payload}.${signature}.extra`,
    `${b64({ alg: 'none' })}.${payload}.`, `${b64('not json')}.${payload}.${signature}`, `${b64([1, 2])}.${payload}.${signature}`,
    `${b64({ alg: 'EdDSA', kid: { $ne: 1 } })}.${payload}.${signature}`, `${b64({ alg: 'EdDSA', kid: 'k'.repeat(10_000) })}.${payload}.${signature}`,
    `${b64({ alg: 'EdDSA', crit: ['exp'], exp: 1 })}.${payload}.${signature}`, `${b64({ alg: { a: 1 } })}.${payload}.${signature}`,
    `${header}.${b64([1, 2, 3])}.${signature}`, `${header}.${b64('x'.repeat(50_000))}.${signature}`, `${header}.${b64({ sub: { $gt: '' } })}.${signature}`,
    `${header}.${payload}.${'A'.repeat(10_000)}`, `\u0000${user.token}`
  ]
  for (const token of tokens) {
    const viaHeader = await checkAnswer(app, { method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${token}` } })
    t.equal(viaHeader.statusCode, 401, `header: ${token.slice(0, 40)}…`)
    const viaQuery = await checkAnswer(app, { method: 'GET', url: `/user/profile?secret_token=${percentEncode(token)}` })
    t.equal(viaQuery.statusCode, 401, `query: ${token.slice(0, 40)}…`)
  }
  for (const authorization of ['Bearer', 'Bearer  ', 'bearer x', `Basic ${b64('a:b')}`, 'Bearer \t x', `Bearer ${'x'.repeat(20_000)}`]) {
    const response = await checkAnswer(app, { method: 'GET', url: '/user/profile', headers: { authorization } })
    t.equal(response.statusCode, 401, `Authorization: ${authorization.slice(0, 30)}`)
  }
  await stillHealthy(t, app, user)
})

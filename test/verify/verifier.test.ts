import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { SignJWT, importPKCS8 } from 'jose'
import type { FastifyInstance } from 'fastify'
import {
  AlgorithmNotAllowedError, BadSignatureError, InvalidClaimsError, JwksUnavailableError, MalformedTokenError,
  RevocationStateStaleError, TokenExpiredError, TokenNotYetValidError, TokenRevokedError, UnknownKeyError, VerificationError, WrongAudienceError,
  WrongIssuerError, createClientCredentials, createVerifier, isClientToken, type VerifierOptions
} from '@auth-service/verify'
import { authVerify } from '@auth-service/verify/fastify'
import Fastify from 'fastify'
import { build, freshDatabaseUrl, login, registerUser, revocationsReader, TEST_SIGNING_KEY, type BuildOptions, sleep } from '../helper.js'
import { generateSigningKey, type SigningKey } from '../../keys.js'

const ISSUER = 'auth-service'
const AUDIENCE = 'auth-service-clients'

async function startService (t: Test, options: BuildOptions = {}, port = 0) {
  const app = await build(t, options)
  await app.listen({ host: '127.0.0.1', port })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

function verifierFor (t: Test, url: string, options: Partial<VerifierOptions> = {}) {
  const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${url}/.well-known/jwks.json`, ...options })
  t.teardown(() => verifier.close())
  return verifier
}

function withKeys (databaseUrl: string, active: SigningKey, stillVerifying: SigningKey[] = []) {
  return {
    env: {
      MONGODB_URL: databaseUrl,
      JWT_ALGORITHM: active.algorithm,
      JWT_PRIVATE_KEY: active.privateKeyPem,
      ...(stillVerifying.length > 0 ? { JWT_VERIFY_KEYS: stillVerifying.map((key) => key.publicKeyPem).join('\n') } : {})
    }
  }
}

/** What a consumer reads the revocation feed with: a service client granted `revocations:read`. */
async function feedCredentials (app: FastifyInstance, url: string) {
  const reader = await revocationsReader(app)
  return createClientCredentials({ tokenUrl: `${url}/oauth/token`, clientId: reader.clientId, clientSecret: reader.clientSecret })
}

async function jwksFetches (app: FastifyInstance): Promise<number> {
  const metrics = await app.metricsRegistry.getSingleMetricAsString('http_request_duration_seconds')
  const line = metrics.split('\n').find((row) => row.startsWith('http_request_duration_seconds_count{method="GET",route="/.well-known/jwks.json",status_code="200"}'))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('a fresh token verifies, with typed claims', async (t) => {
  const { app, url } = await startService(t)
  const user = await registerUser(app)
  const claims = await verifierFor(t, url).verify(user.token)
  t.match(claims, { sub: user.id, email: user.email, sid: user.sessionId, iss: ISSUER, aud: AUDIENCE })
})

t.test('tampered, expired, foreign and malformed tokens are refused with typed errors', async (t) => {
  // A TTL of 3 s leaves the token 2 to 3 s (whole-second iat and exp) for the checks before it expires.
  const { app, url } = await startService(t, { env: { ACCESS_TOKEN_TTL_SECONDS: '3' } })
  const user = await registerUser(app)
  const verifier = verifierFor(t, url, { clockToleranceSeconds: 0 })
  const [header, payload, signature] = user.token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const escalated = Buffer.from(JSON.stringify({ ...claims, sub: '000000000000000000000000' })).toString('base64url')
  const ownKey = await importPKCS8(TEST_SIGNING_KEY.privateKeyPem, 'EdDSA')
  const sign = (extra: Record<string, unknown>, issuer = ISSUER, audience = AUDIENCE) => new SignJWT({ ...claims, ...extra, iss: issuer, aud: audience })
    .setProtectedHeader({ alg: 'EdDSA', kid: TEST_SIGNING_KEY.kid }).sign(ownKey)

  await t.rejects(verifier.verify(`${header}.${escalated}.${signature}`), BadSignatureError, 'tampered payload')
  await t.rejects(verifier.verify(await sign({}, ISSUER, 'another-service')), WrongAudienceError, 'wrong audience')
  await t.rejects(verifier.verify(await sign({}, 'someone-else')), WrongIssuerError, 'wrong issuer')
  await t.rejects(verifier.verify('not.a.jwt'), MalformedTokenError, 'garbage')
  const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: TEST_SIGNING_KEY.kid }).sign(new TextEncoder().encode(TEST_SIGNING_KEY.publicKeyPem))
  await t.rejects(verifier.verify(hmac), AlgorithmNotAllowedError, 'HS256 with the public key as secret')
  const stranger = await importPKCS8(generateSigningKey('EdDSA').privateKeyPem, 'EdDSA')
  await t.rejects(verifier.verify(await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'forged' }).sign(stranger)), UnknownKeyError, 'unknown kid')

  await sleep(claims.exp * 1000 - Date.now() + 100)
  const expired = await verifier.verify(user.token).catch((error: unknown) => error)
  t.ok(expired instanceof TokenExpiredError, 'expired')
  t.ok(expired instanceof VerificationError, 'all refusals share a base class')
  t.equal((expired as VerificationError).code, 'TOKEN_EXPIRED')
})

t.test('key rotation: old tokens keep verifying, new kids are fetched, removed keys are forgotten, all without a restart', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const oldKey = generateSigningKey('EdDSA')
  const newKey = generateSigningKey('ES256')
  const before = await startService(t, withKeys(databaseUrl, oldKey))
  const port = (before.app.server.address() as AddressInfo).port
  const verifier = verifierFor(t, before.url, { jwksRefetchIntervalMs: 100, jwksMaxAgeMs: 1500 })
  const user = await registerUser(before.app)
  await verifier.verify(user.token)

  // The service restarts with the new key, the old one still verifying; the consumer does not.
  await before.app.close()
  const rotated = await startService(t, withKeys(databaseUrl, newKey, [oldKey]), port)
  await sleep(150)
  const fresh = await login(rotated.app, user)
  t.match(await verifier.verify(fresh.token), { sid: fresh.sessionId }, 'a token with the new kid verifies (refetched on the unknown kid)')
  t.match(await verifier.verify(user.token), { sid: user.sessionId }, 'a token of the old key still verifies')

  await rotated.app.close()
  const retired = await startService(t, withKeys(databaseUrl, newKey), port)
  await sleep(1600)
  await t.rejects(verifier.verify(user.token), UnknownKeyError, 'once the old key is gone from the set, its tokens are refused')
  t.match(await verifier.verify(fresh.token), { sid: fresh.sessionId })
  t.ok(await jwksFetches(retired.app) >= 1, 'the retired-key service was asked for its key set')
})

t.test('through the stream, a logged-out session\'s unexpired token is refused within a second', async (t) => {
  const { app, url } = await startService(t)
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url), revocationsPollIntervalMs: 60_000 })
  await verifier.ready()
  const user = await registerUser(app)
  const other = await login(app, user)
  await verifier.verify(user.token)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const loggedOutAt = Date.now()
  while (await verifier.verify(user.token).then(() => true, () => false)) await sleep(10)
  const delay = Date.now() - loggedOutAt
  t.ok(delay < 1000, `refused ${delay} ms after the logout's answer, with no poll in that time`)
  await t.rejects(verifier.verify(user.token), TokenRevokedError)
  t.match(await verifier.verify(other.token), { sid: other.sessionId }, 'the user\'s other session is unaffected')
})

t.test('polling only (no stream): a logged-out session\'s unexpired token is refused within one poll interval', async (t) => {
  const { app, url } = await startService(t)
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url), revocationsStream: false, revocationsPollIntervalMs: 200 })
  await verifier.ready()
  const user = await registerUser(app)
  await verifier.verify(user.token)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  await sleep(350)
  await t.rejects(verifier.verify(user.token), TokenRevokedError)
})

t.test('while the stream is refused (the replica is full), the verifier polls the feed instead', async (t) => {
  const { app, url } = await startService(t, { env: { REVOCATION_STREAMS_MAX: '1' } })
  const occupant = await revocationsReader(app)
  const held = new AbortController()
  t.teardown(() => held.abort())
  const occupied = await fetch(`${url}/revocations/stream`, { headers: occupant.headers, signal: held.signal })
  t.equal(occupied.status, 200, 'another client holds the only stream')
  const errors: unknown[] = []
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url), revocationsPollIntervalMs: 200, onError: (error) => errors.push(error) })
  await verifier.ready()
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  await sleep(500)
  await t.rejects(verifier.verify(user.token), TokenRevokedError, 'refused from a poll')
  t.match(String(errors[0]), /revocation stream answered 503/, 'the refused stream was reported')
  t.notOk(verifier.revocationStatus().stale, 'polls keep the state current')
})

t.test('a verifier started after a revocation knows about it from its first poll', async (t) => {
  const { app, url } = await startService(t)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url) })
  await verifier.ready()
  await t.rejects(verifier.verify(user.token), TokenRevokedError)
})

t.test('a verifier whose cursor is ahead of the feed (the database was restored) reads the feed again from the start', async (t) => {
  const { app, url } = await startService(t, { env: { REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url), revocationsPollIntervalMs: 200 })
  for (let i = 0; i < 3; i++) {
    const user = await registerUser(app)
    await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  }
  await verifier.ready()
  await sleep(300)
  // A restore from a backup taken before those revocations: the feed is now behind the verifier's cursor.
  await app.mongo.db!.collection('revocations').deleteMany({})
  await sleep(300)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  await sleep(800)
  await t.rejects(verifier.verify(user.token), TokenRevokedError, 'the restored feed\'s revocation is known')
})

t.test('a flood of unknown kids does not hammer the auth service', async (t) => {
  const { app, url } = await startService(t)
  const user = await registerUser(app)
  const verifier = verifierFor(t, url, { jwksRefetchIntervalMs: 60_000 })
  await verifier.verify(user.token)
  const before = await jwksFetches(app)
  const stranger = await importPKCS8(generateSigningKey('EdDSA').privateKeyPem, 'EdDSA')
  const forged = await Promise.all(Array.from({ length: 100 }, (_, i) =>
    new SignJWT({ sub: user.id, sid: user.sessionId, email: user.email, jti: String(i) }).setProtectedHeader({ alg: 'EdDSA', kid: `forged-${i}` })
      .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(stranger)))
  const results = await Promise.allSettled(forged.map((token) => verifier.verify(token)))
  t.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof UnknownKeyError), 'all refused as unknown keys')
  const fetched = await jwksFetches(app) - before
  t.ok(fetched <= 1, `the key set was fetched ${fetched} time(s) for 100 forged kids`)
})

t.test('not-yet-valid tokens, missing claims and an unreachable key set have their own errors', async (t) => {
  const { url } = await startService(t)
  const verifier = verifierFor(t, url, { clockToleranceSeconds: 1 })
  const ownKey = await importPKCS8(TEST_SIGNING_KEY.privateKeyPem, 'EdDSA')
  const now = Math.floor(Date.now() / 1000)
  const base = { sub: '0123456789abcdef01234567', sid: '0123456789abcdef01234568', email: 'a@example.com', jti: 'j' }
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: TEST_SIGNING_KEY.kid })
    .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(now).setExpirationTime(now + 600).sign(ownKey)

  await t.rejects(verifier.verify(await sign({ ...base, nbf: now + 300 })), TokenNotYetValidError)
  await t.rejects(verifier.verify(await sign({ sub: base.sub, email: base.email, jti: 'j' })), InvalidClaimsError, 'no sid')
  await t.rejects(verifier.verify(await sign({ ...base, sid: 42 })), InvalidClaimsError, 'a sid that is not a string')

  const nowhere = verifierFor(t, 'http://127.0.0.1:1')
  await t.rejects(nowhere.verify(await sign(base)), JwksUnavailableError)
})

t.test('the Fastify plugin: header or (opt-in) query token, 401 shapes, 503 without a key set', async (t) => {
  const { app, url } = await startService(t)
  const user = await registerUser(app)
  const Fastify = (await import('fastify')).default
  const { authVerify } = await import('@auth-service/verify/fastify')

  async function consumer (options: Record<string, unknown>) {
    const service = Fastify()
    await service.register(authVerify, { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${url}/.well-known/jwks.json`, ...options })
    service.get('/me', { preHandler: service.authenticate }, async (request) => ({ sub: request.auth?.sub }))
    t.teardown(() => service.close())
    return service
  }

  const withQuery = await consumer({ allowQueryToken: true })
  t.same((await withQuery.inject({ method: 'GET', url: `/me?secret_token=${user.token}` })).json(), { sub: user.id })
  const headerOnly = await consumer({})
  const refused = await headerOnly.inject({ method: 'GET', url: `/me?secret_token=${user.token}` })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'TOKEN_MISSING')
  t.equal(refused.headers['www-authenticate'], 'Bearer')
  const expired = await headerOnly.inject({ method: 'GET', url: '/me', headers: { authorization: 'Bearer a.b.c' } })
  t.same(expired.json(), { statusCode: 401, code: 'TOKEN_INVALID', error: 'Unauthorized', message: 'The token is not a well-formed JWT' })
  t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token"', 'a refused token is an invalid_token challenge (RFC 6750 3)')

  const blind = await consumer({ jwksUrl: 'http://127.0.0.1:1/.well-known/jwks.json' })
  const unavailable = await blind.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${user.token}` } })
  t.equal(unavailable.statusCode, 503)
  t.equal(unavailable.json().code, 'JWKS_UNAVAILABLE')
})

t.test('service clients\' tokens: refused unless the consumer accepts them; then typed as a client\'s, with their scopes', async (t) => {
  const { app, url } = await startService(t, { env: { ADMIN_EMAILS: 'ops@example.com', REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const admin = await registerUser(app, { email: 'ops@example.com' })
  await app.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const adminToken = (await login(app, admin)).token
  const client = (await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${adminToken}` }, payload: { name: 'job', scopes: ['a:read', 'b:write'] } })).json()
  const { token: clientToken } = await createClientCredentials({ tokenUrl: `${url}/oauth/token`, clientId: client.clientId, clientSecret: client.clientSecret, scope: 'a:read' }).token().then((token) => ({ token }))

  await t.rejects(verifierFor(t, url).verify(clientToken), InvalidClaimsError, 'a users-only consumer refuses it')
  const claims = await verifierFor(t, url, { acceptClientTokens: true }).verify(clientToken)
  t.ok(isClientToken(claims))
  t.match(claims, { sub: client.clientId, client_id: client.clientId, scope: 'a:read', aud: AUDIENCE })
  const user = await registerUser(app)
  t.notOk(isClientToken(await verifierFor(t, url, { acceptClientTokens: true }).verify(user.token)), 'a user\'s token is still a user\'s')
})

t.test('the Fastify plugin\'s guards: requireRoles for users\' roles, requireScopes for clients\' scopes', async (t) => {
  const { app, url } = await startService(t, { env: { ADMIN_EMAILS: 'ops@example.com', REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const consumer = Fastify()
  t.teardown(() => consumer.close())
  await consumer.register(authVerify, { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${url}/.well-known/jwks.json`, acceptClientTokens: true })
  consumer.get('/admins', { preHandler: [consumer.authenticate, consumer.requireRoles('admin')] }, async () => ({ ok: true }))
  consumer.get('/jobs', { preHandler: [consumer.authenticate, consumer.requireScopes('a:read')] }, async () => ({ ok: true }))
  consumer.get('/unguarded-scopes', { preHandler: [consumer.requireScopes('a:read')] }, async () => ({ ok: true }))

  const admin = await registerUser(app, { email: 'ops@example.com' })
  await app.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const adminToken = (await login(app, admin)).token
  const user = await registerUser(app)
  const client = (await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${adminToken}` }, payload: { name: 'job', scopes: ['a:read'] } })).json()
  const clientToken = await createClientCredentials({ tokenUrl: `${url}/oauth/token`, clientId: client.clientId, clientSecret: client.clientSecret }).token()
  const status = async (path: string, token: string) => (await consumer.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${token}` } })).statusCode

  t.same([await status('/admins', adminToken), await status('/admins', user.token), await status('/admins', clientToken)], [200, 403, 403])
  t.same([await status('/jobs', clientToken), await status('/jobs', user.token), await status('/jobs', adminToken)], [200, 403, 403])
  const refused = await consumer.inject({ method: 'GET', url: '/jobs', headers: { authorization: `Bearer ${user.token}` } })
  t.same(refused.json(), { statusCode: 403, code: 'INSUFFICIENT_SCOPE', error: 'Forbidden', message: 'This route needs the scopes: a:read' })
  t.equal(refused.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="a:read"')
  t.equal((await consumer.inject({ method: 'GET', url: '/unguarded-scopes' })).statusCode, 401, 'a guard without authenticate before it refuses')
})

t.test('fail closed: ready() rejects when the feed cannot be read, and no token passes until it is', async (t) => {
  const { app, url } = await startService(t)
  const user = await registerUser(app)
  const errors: unknown[] = []
  const unreachable = verifierFor(t, url, { revocationsUrl: 'http://127.0.0.1:9/revocations', revocationsPollIntervalMs: 100, onError: (error) => errors.push(error) })
  await t.rejects(unreachable.ready(), 'the first read failed, and ready() says so')
  t.ok(errors.length >= 1, 'onError heard of it too')
  const refused = await unreachable.verify(user.token).catch((error: unknown) => error)
  t.ok(refused instanceof RevocationStateStaleError, 'a valid token is refused: nothing is known of revocations')
  t.equal((refused as VerificationError).code, 'REVOCATION_STATE_STALE')
  t.match(unreachable.revocationStatus(), { lastReadAt: null, stale: true })
})

t.test('a verifier that stops hearing from the feed refuses every token after the staleness bound, and recovers by itself', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const service = await startService(t, { env: { MONGODB_URL: databaseUrl } })
  const port = (service.app.server.address() as AddressInfo).port
  const user = await registerUser(service.app)
  const verifier = verifierFor(t, service.url, { revocationsUrl: `${service.url}/revocations`, revocationsCredentials: await feedCredentials(service.app, service.url), revocationsPollIntervalMs: 100, revocationsStalenessBoundMs: 400 })
  await verifier.ready()
  t.match(await verifier.verify(user.token), { sub: user.id })
  t.ok(verifier.revocationStatus().lagMs < 400)
  await service.app.close()
  await sleep(700)
  await t.rejects(verifier.verify(user.token), RevocationStateStaleError, 'past the bound: refused')
  t.ok(verifier.revocationStatus().stale)
  await startService(t, { env: { MONGODB_URL: databaseUrl } }, port)
  await sleep(400)
  t.match(await verifier.verify(user.token), { sub: user.id }, 'the feed answers again: tokens pass again')
  t.notOk(verifier.revocationStatus().stale)
})

t.test('the Fastify plugin: registration fails without the feed; a stale state answers 503 REVOCATION_STATE_STALE', async (t) => {
  const { url } = await startService(t)
  const failing = Fastify()
  t.teardown(() => failing.close())
  await t.rejects(
    (async () => { await failing.register(authVerify, { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${url}/.well-known/jwks.json`, revocationsUrl: 'http://127.0.0.1:9/revocations' }); await failing.ready() })(),
    /revocation feed could not be read/
  )

  const service = await startService(t)
  const user = await registerUser(service.app)
  const consumer = Fastify()
  t.teardown(() => consumer.close())
  await consumer.register(authVerify, {
    issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${service.url}/.well-known/jwks.json`, revocationsUrl: `${service.url}/revocations`, revocationsCredentials: await feedCredentials(service.app, service.url), revocationsPollIntervalMs: 100, revocationsStalenessBoundMs: 300
  })
  consumer.get('/me', { preHandler: consumer.authenticate }, async (request) => ({ sub: request.auth?.sub }))
  const headers = { authorization: `Bearer ${user.token}` }
  t.equal((await consumer.inject({ method: 'GET', url: '/me', headers })).statusCode, 200)
  await service.app.close()
  await sleep(600)
  const stale = await consumer.inject({ method: 'GET', url: '/me', headers })
  t.equal(stale.statusCode, 503)
  t.equal(stale.json().code, 'REVOCATION_STATE_STALE')
})

t.test('a user-wide revocation (a disabled user) refuses every token of the user issued before it, and later ones pass', async (t) => {
  const { app, url } = await startService(t, { env: { ADMIN_EMAILS: 'ops@example.com', REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const verifier = verifierFor(t, url, { revocationsUrl: `${url}/revocations`, revocationsCredentials: await feedCredentials(app, url), revocationsPollIntervalMs: 100 })
  await verifier.ready()
  const admin = await registerUser(app, { email: 'ops@example.com' })
  await app.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const adminToken = (await login(app, admin)).token
  const user = await registerUser(app)
  const second = await login(app, user)
  await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${adminToken}` }, payload: { disabled: true } })
  await sleep(300)
  await t.rejects(verifier.verify(user.token), TokenRevokedError, 'the first session\'s token')
  await t.rejects(verifier.verify(second.token), TokenRevokedError, 'and the second\'s, from one entry')
  await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${adminToken}` }, payload: { disabled: false } })
  await sleep(1100)
  const fresh = await login(app, user)
  t.match(await verifier.verify(fresh.token), { sub: user.id }, 'a token issued after the entry passes')
})

import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { SignJWT, importPKCS8, type CryptoKey } from 'jose'
import { ObjectId } from 'mongodb'
import { build, decodeClaims, freshDatabaseUrl, registerUser, sleep, TEST_SIGNING_KEY } from '../helper.js'
import { generateSigningKey } from '../../keys.js'
import userRoutes from '../../routes/user.js'

const signingKey = await importPKCS8(TEST_SIGNING_KEY.privateKeyPem, 'EdDSA')
const kid = TEST_SIGNING_KEY.kid
const ISSUER = 'auth-service'
const AUDIENCE = 'auth-service-clients'

/** A token signed with the service's own key, with claims chosen by the test. */
function forge (claims: Record<string, unknown>, options: { issuer?: string, audience?: string, expiresAt?: number, notBefore?: number, key?: CryptoKey | Uint8Array, header?: Record<string, string> } = {}) {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid, ...options.header })
    .setIssuedAt(now)
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setExpirationTime(options.expiresAt ?? now + 300)
    .setNotBefore(options.notBefore ?? now)
    .sign(options.key ?? signingKey)
}

function expectUnauthorized (t: Test, response: { statusCode: number, json: () => any, headers: Record<string, unknown> }, code: string, name: string) {
  t.equal(response.statusCode, 401, name)
  t.same(Object.keys(response.json()).sort(), ['code', 'error', 'message', 'statusCode'], `${name}: error shape`)
  t.equal(response.json().code, code, `${name}: code`)
  t.match(response.headers['www-authenticate'], /^Bearer /, `${name}: WWW-Authenticate`)
}

t.test('the profile answers with the user of a valid header token', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const response = await user.inject({ method: 'GET', url: '/user/profile' })
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.equal(body.message, 'You made it to the secure route')
  t.same(Object.keys(body.user).sort(), ['createdAt', 'email', 'emailVerified', 'id'])
  t.match(body.user, { id: user.id, email: user.email, emailVerified: false })

  const signupCreatedAt = (await app.usersRepository.findByEmail(user.email))!.createdAt.toISOString()
  t.equal(body.user.createdAt, signupCreatedAt, 'createdAt is the one stored at signup')
  t.equal(body.user.createdAt, new ObjectId(user.id).getTimestamp().toISOString(), 'createdAt is the time in the id, as the driver reads it')
  t.ok(Math.abs(Date.parse(body.user.createdAt) - Date.now()) < 60_000, 'and it is about now')
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')

  // The body is serialised once per verified token; later answers are the same bytes.
  const again = await user.inject({ method: 'GET', url: '/user/profile' })
  t.equal(again.statusCode, 200)
  t.equal(again.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(again.body, response.body, 'the second answer is byte for byte the first')
  const viaQuery = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })
  t.equal(viaQuery.body, response.body, 'and so is the answer to the same token in the query')
})

t.test('the profile accepts the token from the secret_token query parameter', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const response = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })
  t.equal(response.statusCode, 200)
  t.equal(response.json().user.id, user.id)
})

t.test('the header wins over the query parameter', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const other = await registerUser(app)

  const headerValid = await app.inject({ method: 'GET', url: '/user/profile?secret_token=garbage', headers: { authorization: `Bearer ${user.token}` } })
  t.equal(headerValid.statusCode, 200, 'a valid header with a bad query token is accepted')
  t.equal(headerValid.json().user.id, user.id)

  const headerOther = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}`, headers: { authorization: `Bearer ${other.token}` } })
  t.equal(headerOther.json().user.id, other.id, 'the header token decides whose profile it is')

  const headerInvalid = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}`, headers: { authorization: 'Bearer garbage' } })
  expectUnauthorized(t, headerInvalid, 'TOKEN_INVALID', 'an invalid header is not rescued by a valid query token')
})

t.test('the query parameter can be switched off by configuration', async (t) => {
  const app = await build(t, { env: { ALLOW_QUERY_TOKEN: 'false' } })
  const user = await registerUser(app)
  const query = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })
  expectUnauthorized(t, query, 'TOKEN_MISSING', 'query token when disabled')
  const header = await user.inject({ method: 'GET', url: '/user/profile' })
  t.equal(header.statusCode, 200, 'the header still works')
})

t.test('missing and malformed tokens get 401', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  expectUnauthorized(t, await app.inject({ method: 'GET', url: '/user/profile' }), 'TOKEN_MISSING', 'no token at all')
  expectUnauthorized(t, await app.inject({ method: 'GET', url: '/user/profile?secret_token=' }), 'TOKEN_MISSING', 'empty query token')
  const malformedHeaders = ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'Bearer\t' + user.token, 'Bearer\u00a0' + user.token, `Bearer ${user.token} extra`, user.token, 'Bearer not.a.jwt', 'Bearer a.b', `Token ${user.token}`]
  for (const authorization of malformedHeaders) {
    expectUnauthorized(t, await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization } }), 'TOKEN_INVALID', `Authorization: ${authorization.slice(0, 20)}`)
  }
  for (const authorization of [`bearer ${user.token}`, `BEARER ${user.token}`, `Bearer   ${user.token}`]) {
    const accepted = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization } })
    t.equal(accepted.statusCode, 200, `the scheme is case-insensitive and spaces may repeat: ${authorization.slice(0, 10)}…`)
  }
  const oversized = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${'a'.repeat(8000)}` } })
  expectUnauthorized(t, oversized, 'TOKEN_INVALID', 'an 8 kB garbage token')
})

for (const cacheSize of ['0', '10000']) {
  t.test(`tampered, expired, not-yet-valid, alg none, wrong issuer and wrong audience tokens get 401 (verify cache ${cacheSize})`, async (t) => {
    const app = await build(t, { env: { JWT_VERIFY_CACHE_SIZE: cacheSize } })
    const user = await registerUser(app)
    // The genuine token first, so with the cache on every variant below meets a cached neighbour.
    t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200, 'control: the genuine token')
    const claims = { sub: user.id, email: user.email, sid: user.sessionId, jti: 'a2b4c6d8-0000-4000-8000-000000000000' }
    const now = Math.floor(Date.now() / 1000)

    const control = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${await forge(claims)}` } })
    t.equal(control.statusCode, 200, 'control: a token forged with the right secret and claims is accepted')

    const [header, payload, signature] = user.token.split('.') as [string, string, string]
    const escalated = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), email: 'admin@example.com' })).toString('base64url')
    const flippedSignature = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`
    const unsignedHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')

    const cases: Array<[string, string, string]> = [
      ['payload changed, signature kept', `${header}.${escalated}.${signature}`, 'TOKEN_INVALID'],
      ['signature changed', `${header}.${payload}.${flippedSignature}`, 'TOKEN_INVALID'],
      ['alg none without signature', `${unsignedHeader}.${payload}.`, 'TOKEN_INVALID'],
      ['alg none with the original signature', `${unsignedHeader}.${payload}.${signature}`, 'TOKEN_INVALID'],
      ['expired', await forge(claims, { expiresAt: now - 60, notBefore: now - 120 }), 'TOKEN_EXPIRED'],
      ['not yet valid', await forge(claims, { notBefore: now + 600, expiresAt: now + 900 }), 'TOKEN_INVALID'],
      ['wrong issuer', await forge(claims, { issuer: 'someone-else' }), 'TOKEN_INVALID'],
      ['wrong audience', await forge(claims, { audience: 'another-service' }), 'TOKEN_INVALID'],
      ['signed with another key under our kid', await forge(claims, { key: await importPKCS8(generateSigningKey('EdDSA').privateKeyPem, 'EdDSA') }), 'TOKEN_INVALID'],
      ['unknown kid', await forge(claims, { header: { kid: 'not-a-key-we-have' } }), 'TOKEN_INVALID'],
      ['no kid', await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA' }).setIssuedAt().setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(signingKey), 'TOKEN_INVALID'],
      ['missing email claim', await forge({ sub: user.id, sid: user.sessionId, jti: claims.jti }), 'TOKEN_INVALID'],
      ['missing sid claim', await forge({ sub: user.id, email: user.email, jti: claims.jti }), 'TOKEN_INVALID'],
      ['HS256 signed with the public key as the HMAC secret (key confusion)', await forge(claims, { key: new TextEncoder().encode(TEST_SIGNING_KEY.publicKeyPem), header: { alg: 'HS256' } }), 'TOKEN_INVALID']
    ]
    for (const [name, token, code] of cases) {
      expectUnauthorized(t, await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${token}` } }), code, name)
      expectUnauthorized(t, await app.inject({ method: 'GET', url: `/user/profile?secret_token=${encodeURIComponent(token)}` }), code, `${name} (query)`)
    }
    t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200, 'the genuine token still works')
  })
}

t.test('a token from a differently configured service is refused', async (t) => {
  const issuingApp = await build(t, { env: { JWT_AUDIENCE: 'billing', JWT_PRIVATE_KEY: TEST_SIGNING_KEY.privateKeyPem } })
  const user = await registerUser(issuingApp)
  const app = await build(t)
  expectUnauthorized(t, await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${user.token}` } }), 'TOKEN_INVALID', 'audience billing')
})

t.test('the secret_token query parameter never authorises a write', async (t) => {
  // The contract's rule is for every non-GET route; this issue has no
  // protected write route yet, so the test adds one behind the real hook.
  const app = await build(t, {
    beforeReady (app) {
      app.register(async function protectedWrite (scoped) {
        scoped.post('/test/protected-write', { preHandler: scoped.authenticate }, async (request) => ({ sub: request.user.sub }))
      })
    }
  })
  const user = await registerUser(app)
  const viaQuery = await app.inject({ method: 'POST', url: `/test/protected-write?secret_token=${user.token}` })
  expectUnauthorized(t, viaQuery, 'TOKEN_MISSING', 'POST with a query token')
  const viaHeader = await user.inject({ method: 'POST', url: '/test/protected-write' })
  t.equal(viaHeader.statusCode, 200, 'control: the header works on POST')
  t.equal(viaHeader.json().sub, user.id)
})

t.test('validation runs before authentication: a bad querystring without a token is a 400', async (t) => {
  const app = await build(t)
  const response = await app.inject({ method: 'GET', url: '/user/profile?secret_token=a&secret_token=b' })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'FST_ERR_VALIDATION')
})

t.test('the verified-token cache never keeps a token past its expiry', async (t) => {
  // `exp` is whole seconds after a whole-second `iat`: a TTL of 3 s leaves the token
  // valid for 2 to 3 s, enough for the two requests below on a slow machine (1 s was not).
  const app = await build(t, { env: { ACCESS_TOKEN_TTL_SECONDS: '3', JWT_VERIFY_CACHE_SIZE: '100' } })
  const user = await registerUser(app)
  t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200)
  t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200, 'served from the cache')
  const expiresAtMs = (decodeClaims(user.token).exp as number) * 1000
  await new Promise((resolve) => setTimeout(resolve, expiresAtMs - Date.now() + 100))
  const expired = await user.inject({ method: 'GET', url: '/user/profile' })
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'TOKEN_EXPIRED')
})

t.test('review finding 12: every 401 carries a Bearer challenge, with error="invalid_token" when a presented token was refused', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const challenge = (response: { headers: Record<string, unknown> }) => response.headers['www-authenticate']
  const plain = 'Bearer realm="auth-service"'
  const invalidToken = 'Bearer realm="auth-service", error="invalid_token"'

  t.equal(challenge(await app.inject({ method: 'GET', url: '/user/profile' })), plain, 'no token: the plain challenge (RFC 6750 3.1)')
  t.equal(challenge(await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${user.token}x` } })), invalidToken, 'TOKEN_INVALID')
  const expired = await forge({ sub: user.id, email: user.email, sid: user.sessionId, jti: 'x' }, { expiresAt: Math.floor(Date.now() / 1000) - 60, notBefore: Math.floor(Date.now() / 1000) - 120 })
  const expiredResponse = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${expired}` } })
  t.equal(expiredResponse.json().code, 'TOKEN_EXPIRED')
  t.equal(challenge(expiredResponse), invalidToken, 'TOKEN_EXPIRED')

  const wrongLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'not the password' } })
  t.equal(wrongLogin.json().code, 'INVALID_CREDENTIALS')
  t.equal(challenge(wrongLogin), plain, 'INVALID_CREDENTIALS')
  const wrongCurrent = await user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: 'not the password', newPassword: 'a fine new password' } })
  t.equal(wrongCurrent.json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal(challenge(wrongCurrent), plain, 'INVALID_CURRENT_PASSWORD')
  const unknownRefresh = await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: 'B'.repeat(43) } })
  t.equal(unknownRefresh.json().code, 'REFRESH_TOKEN_INVALID')
  t.equal(challenge(unknownRefresh), plain, 'REFRESH_TOKEN_INVALID')

  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const revoked = await user.inject({ method: 'GET', url: '/user/sessions' })
  t.equal(revoked.json().code, 'SESSION_REVOKED')
  t.equal(challenge(revoked), invalidToken, 'SESSION_REVOKED')
})

t.test('review finding 12: a token whose sub or sid is not an id is a 401, not a 500', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  for (const claims of [
    { sub: 'not-an-object-id', email: user.email, sid: user.sessionId, jti: 'a' },
    { sub: user.id, email: user.email, sid: 'not-an-object-id', jti: 'b' },
    { sub: user.id.toUpperCase(), email: user.email, sid: user.sessionId, jti: 'c' }
  ]) {
    const token = await forge(claims)
    for (const url of ['/user/profile', '/user/sessions']) {
      expectUnauthorized(t, await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } }), 'TOKEN_INVALID', `${url} with ${JSON.stringify(claims)}`)
    }
  }
})

t.test('review finding 12: a token issued in the future is refused beyond the clock tolerance', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const now = Math.floor(Date.now() / 1000)
  const issuedAt = async (iat: number) => new SignJWT({ sub: user.id, email: user.email, sid: user.sessionId, jti: `iat-${iat}` })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid })
    .setIssuedAt(iat).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime(now + 600).sign(signingKey)
  const future = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${await issuedAt(now + 60)}` } })
  expectUnauthorized(t, future, 'TOKEN_INVALID', 'iat a minute ahead')
  const slightly = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${await issuedAt(now + 2)}` } })
  t.equal(slightly.statusCode, 200, 'a clock a second or two ahead is tolerated')
})

t.test('a route plugin registered without the plugins it depends on fails at start-up, not at a request', async (t) => {
  const app = Fastify()
  app.register(userRoutes, { prefix: '/user' })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED' })
})

t.test('a logged-out session\'s token is refused at the profile too, on every replica, without a database read', async (t) => {
  const env = { MONGODB_URL: await freshDatabaseUrl(), REVOCATION_SYNC_INTERVAL_MS: '100' }
  const first = await build(t, { env })
  const second = await build(t, { env })
  const user = await registerUser(first)
  const profile = (app: typeof first) => app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${user.token}` } })
  t.equal((await profile(second)).statusCode, 200)
  await first.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  await sleep(400)
  const refused = await profile(second)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'SESSION_REVOKED')
  t.equal((await profile(first)).statusCode, 401, 'and on the replica that revoked it')
})

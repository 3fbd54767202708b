import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl, login, registerUser, TEST_JWT_SECRET } from '../helper.js'
import { generateSigningKey, type SigningKey } from '../../keys.js'

const ISSUER = 'auth-service'
const AUDIENCE = 'auth-service-clients'

async function listen (app: FastifyInstance) {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** What another microservice does: fetch the key set over HTTP, verify locally. */
function consumerVerify (baseUrl: string, token: string) {
  const keySet = createRemoteJWKSet(new URL('/.well-known/jwks.json', baseUrl))
  return jwtVerify(token, keySet, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA', 'ES256', 'RS256'] })
}

function buildWithKeys (t: Test, databaseUrl: string, active: SigningKey, stillVerifying: SigningKey[] = []) {
  return build(t, {
    env: {
      MONGODB_URL: databaseUrl,
      JWT_ALGORITHM: active.algorithm,
      JWT_PRIVATE_KEY: active.privateKeyPem,
      ...(stillVerifying.length > 0 ? { JWT_VERIFY_KEYS: stillVerifying.map((key) => key.publicKeyPem).join('\n') } : {})
    }
  })
}

t.test('the JWKS publishes the public key with kid, alg and use, and a Cache-Control header', async (t) => {
  const key = generateSigningKey('EdDSA')
  const app = await buildWithKeys(t, await freshDatabaseUrl(), key)
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['cache-control'], /max-age=\d+/)
  const { keys } = response.json()
  t.equal(keys.length, 1)
  t.same(keys[0], { kty: 'OKP', crv: 'Ed25519', x: key.jwk.x, kid: key.kid, alg: 'EdDSA', use: 'sig' })
  t.notOk('d' in keys[0], 'never a private member')
})

t.test('with a shared HMAC secret the key set is empty', async (t) => {
  const app = await build(t, { env: { JWT_ALGORITHM: 'HS256', JWT_SECRET: TEST_JWT_SECRET } })
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { keys: [] })
})

t.test('another service verifies a login\'s access token against the JWKS, for every algorithm', async (t) => {
  for (const algorithm of ['EdDSA', 'ES256', 'RS256'] as const) {
    const key = generateSigningKey(algorithm)
    const app = await buildWithKeys(t, await freshDatabaseUrl(), key)
    const baseUrl = await listen(app)
    const user = await registerUser(app)
    const { payload, protectedHeader } = await consumerVerify(baseUrl, user.token)
    t.same(protectedHeader, { alg: algorithm, typ: 'JWT', kid: key.kid }, algorithm)
    t.match(payload, { sub: user.id, email: user.email, sid: user.sessionId, iss: ISSUER, aud: AUDIENCE }, algorithm)

    await t.rejects(jwtVerify(user.token, createRemoteJWKSet(new URL('/.well-known/jwks.json', baseUrl)), { issuer: ISSUER, audience: 'someone-else' }),
      { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' }, `${algorithm}: the consumer's audience check bites`)
  }
})

t.test('key rotation: old tokens keep verifying, new ones carry the new kid, and retiring the old key ends its tokens', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const oldKey = generateSigningKey('EdDSA')
  const newKey = generateSigningKey('EdDSA')

  const before = await buildWithKeys(t, databaseUrl, oldKey)
  const user = await registerUser(before)
  const oldToken = user.token

  // Step 1 of the procedure: the new key signs, the old one only verifies.
  const rotated = await buildWithKeys(t, databaseUrl, newKey, [oldKey])
  const rotatedUrl = await listen(rotated)
  const published = (await rotated.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((key: { kid: string }) => key.kid)
  t.same(published, [newKey.kid, oldKey.kid], 'both keys are published, the active one first')

  const { protectedHeader: oldHeader } = await consumerVerify(rotatedUrl, oldToken)
  t.equal(oldHeader.kid, oldKey.kid, 'a token signed before the rotation still verifies')
  t.equal((await rotated.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${oldToken}` } })).statusCode, 200, 'and the service itself still accepts it')

  const fresh = await login(rotated, user)
  const { protectedHeader: newHeader } = await consumerVerify(rotatedUrl, fresh.token)
  t.equal(newHeader.kid, newKey.kid, 'new tokens carry the new kid')
  const refreshed = await rotated.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: user.refreshToken } })
  t.equal(refreshed.statusCode, 200, 'sessions survive the rotation: nobody is logged out')

  // Step 2: once every old token has expired, the old key is removed.
  const retired = await buildWithKeys(t, databaseUrl, newKey)
  const retiredUrl = await listen(retired)
  await t.rejects(consumerVerify(retiredUrl, oldToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' }, 'the retired key\'s tokens no longer verify')
  const refused = await retired.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${oldToken}` } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'TOKEN_INVALID')
  await consumerVerify(retiredUrl, fresh.token)
  t.pass('tokens of the new key still verify')
})

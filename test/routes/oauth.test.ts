import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { build, decodeClaims, login, registerUser } from '../helper.js'

const form = { 'content-type': 'application/x-www-form-urlencoded' }

/** The app and an admin's injector. */
async function withAdmin (t: Test, env: Record<string, string> = {}) {
  const app = await build(t, { env: { ADMIN_EMAILS: 'ops@example.com', ...env } })
  const admin = await registerUser(app, { email: 'ops@example.com' })
  await app.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const { token } = await login(app, admin)
  const asAdmin = (request: InjectOptions) => app.inject({ ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } })
  return { app, asAdmin, adminId: admin.id }
}

async function createClient (asAdmin: (request: InjectOptions) => Promise<LightMyRequestResponse>, body: Record<string, unknown>) {
  const response = await asAdmin({ method: 'POST', url: '/admin/clients', payload: body })
  if (response.statusCode !== 201) throw new Error(`client not created: ${response.statusCode} ${response.body}`)
  return response.json<{ clientId: string, clientSecret: string, name: string, scopes: string[], audience: string | null, createdAt: string }>()
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

function tokenRequest (app: FastifyInstance, payload: string, authorization?: string) {
  return app.inject({ method: 'POST', url: '/oauth/token', headers: { ...form, ...(authorization === undefined ? {} : { authorization }) }, payload })
}

t.test('an admin creates a client; its secret is shown once; it gets a client-credentials token (RFC 6749 4.4)', async (t) => {
  const { app, asAdmin, adminId } = await withAdmin(t)
  const client = await createClient(asAdmin, { name: 'billing-service', scopes: ['notes:read', 'notes:write'] })
  t.match(client, { clientId: /^svc_[0-9a-f]{24}$/, clientSecret: /^[A-Za-z0-9_-]{43}$/, name: 'billing-service', scopes: ['notes:read', 'notes:write'], audience: null })
  const listed = await asAdmin({ method: 'GET', url: '/admin/clients' })
  t.same(listed.json().clients.map((each: { clientId: string }) => each.clientId), [client.clientId])
  t.notOk(listed.body.includes(client.clientSecret), 'never a secret in the list')
  t.equal(await app.mongo.db!.collection('clients').countDocuments({ 'secrets.hash': client.clientSecret }), 0, 'nor in the database')

  const response = await tokenRequest(app, 'grant_type=client_credentials', basic(client.clientId, client.clientSecret))
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.headers.pragma, 'no-cache')
  const body = response.json()
  t.match(body, { token_type: 'Bearer', expires_in: 900, scope: 'notes:read notes:write' })
  const claims = decodeClaims(body.access_token)
  t.match(claims, { sub: client.clientId, client_id: client.clientId, scope: 'notes:read notes:write', aud: 'auth-service-clients', iss: 'auth-service' })
  t.notOk('sid' in claims || 'email' in claims, 'no session, no email')
  t.equal((await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${body.access_token}` } })).statusCode, 401, 'a client is no user: the user routes refuse it')
  t.equal(adminId.length, 24)
})

t.test('client authentication: Basic or the form, never both; failures are 401 invalid_client with a Basic challenge', async (t) => {
  const { app, asAdmin } = await withAdmin(t)
  const client = await createClient(asAdmin, { name: 'reports', scopes: ['reports:read'] })
  const inForm = await tokenRequest(app, `grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`)
  t.equal(inForm.statusCode, 200, 'client_id and client_secret in the form')
  const json = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret } })
  t.equal(json.statusCode, 200, 'JSON works too')

  const both = await tokenRequest(app, `grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`, basic(client.clientId, client.clientSecret))
  t.same([both.statusCode, both.json()], [400, { error: 'invalid_request', error_description: both.json().error_description }])
  for (const [what, authorization, payload] of [
    ['no authentication', undefined, 'grant_type=client_credentials'],
    ['a wrong secret', basic(client.clientId, 'x'.repeat(43)), 'grant_type=client_credentials'],
    ['an unknown client', basic('svc_000000000000000000000000', client.clientSecret), 'grant_type=client_credentials'],
    ['a malformed Basic header', 'Basic !!!', 'grant_type=client_credentials'],
    ['a Bearer header', 'Bearer abc', 'grant_type=client_credentials'],
    ['only a client_id', undefined, `grant_type=client_credentials&client_id=${client.clientId}`]
  ] as const) {
    const response = await tokenRequest(app, payload, authorization)
    t.equal(response.statusCode, 401, what)
    t.equal(response.json().error, 'invalid_client', what)
    t.match(response.headers['www-authenticate'], /^Basic realm="auth-service"/, what)
    t.equal(response.headers['cache-control'], 'no-store')
  }
})

t.test('grant type and scope: RFC 6749 5.2 errors; scope narrows, never widens', async (t) => {
  const { app, asAdmin } = await withAdmin(t)
  const client = await createClient(asAdmin, { name: 'notes-reader', scopes: ['notes:read', 'notes:write'], audience: 'notes-service' })
  const auth = basic(client.clientId, client.clientSecret)
  const narrowed = await tokenRequest(app, 'grant_type=client_credentials&scope=notes:read', auth)
  t.equal(narrowed.json().scope, 'notes:read')
  t.match(decodeClaims(narrowed.json().access_token), { scope: 'notes:read', aud: 'notes-service' }, 'the client\'s audience')
  const cases = [
    ['', 'invalid_request'],
    ['grant_type=password&username=a&password=b', 'unsupported_grant_type'],
    ['grant_type=client_credentials&scope=notes:read%20admin', 'invalid_scope'],
    ['grant_type=client_credentials&scope=notes:delete', 'invalid_scope'],
    ['grant_type=client_credentials&grant_type=client_credentials', 'invalid_request']
  ] as const
  for (const [payload, error] of cases) {
    const response = await tokenRequest(app, payload, auth)
    t.equal(response.statusCode, 400, payload)
    t.same(Object.keys(response.json()).sort(), ['error', 'error_description'], 'the RFC\'s error body')
    t.equal(response.json().error, error, payload)
  }
  t.equal((await tokenRequest(app, 'grant_type=client_credentials&unknown=ignored', auth)).statusCode, 200, 'unrecognised parameters are ignored (3.2)')
})

t.test('a rotated secret: the new one works, the old one only for the overlap', async (t) => {
  const { app, asAdmin } = await withAdmin(t, { CLIENT_SECRET_OVERLAP_SECONDS: '0' })
  const client = await createClient(asAdmin, { name: 'rotating', scopes: [] })
  const rotated = await asAdmin({ method: 'POST', url: `/admin/clients/${client.clientId}/secret` })
  t.equal(rotated.statusCode, 200)
  const { clientSecret } = rotated.json()
  t.not(clientSecret, client.clientSecret)
  t.equal((await tokenRequest(app, 'grant_type=client_credentials', basic(client.clientId, clientSecret))).statusCode, 200)
  t.equal((await tokenRequest(app, 'grant_type=client_credentials', basic(client.clientId, client.clientSecret))).statusCode, 401, 'no overlap configured: the old one is dead')
  t.equal((await asAdmin({ method: 'POST', url: '/admin/clients/svc_000000000000000000000000/secret' })).json().code, 'CLIENT_NOT_FOUND')

  const { app: other, asAdmin: otherAdmin } = await withAdmin(t)
  const overlapping = await createClient(otherAdmin, { name: 'overlapping', scopes: [] })
  const second = (await otherAdmin({ method: 'POST', url: `/admin/clients/${overlapping.clientId}/secret` })).json().clientSecret
  const third = (await otherAdmin({ method: 'POST', url: `/admin/clients/${overlapping.clientId}/secret` })).json().clientSecret
  const statuses = []
  for (const secret of [overlapping.clientSecret, second, third]) statuses.push((await tokenRequest(other, 'grant_type=client_credentials', basic(overlapping.clientId, secret))).statusCode)
  t.same(statuses, [401, 200, 200], 'the previous secret overlaps (default an hour); the one before it is gone')
})

t.test('a deleted client gets no token; only admins manage clients; tokens per client are limited', async (t) => {
  const { app, asAdmin } = await withAdmin(t, { CLIENT_TOKEN_RATE_MAX: '2' })
  const client = await createClient(asAdmin, { name: 'limited', scopes: ['a'] })
  const auth = basic(client.clientId, client.clientSecret)
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await tokenRequest(app, 'grant_type=client_credentials', auth)).statusCode)
  t.same(statuses, [200, 200, 429], 'CLIENT_TOKEN_RATE_MAX per window')

  t.equal((await asAdmin({ method: 'DELETE', url: `/admin/clients/${client.clientId}` })).statusCode, 204)
  t.equal((await tokenRequest(app, 'grant_type=client_credentials', auth)).statusCode, 401)
  t.equal((await asAdmin({ method: 'DELETE', url: `/admin/clients/${client.clientId}` })).statusCode, 404)

  const user = await registerUser(app)
  t.equal((await user.inject({ method: 'POST', url: '/admin/clients', payload: { name: 'mine', scopes: [] } })).statusCode, 403)
  for (const payload of [{ name: '', scopes: [] }, { name: 'x', scopes: ['Bad Scope'] }, { name: 'x' }, { name: 'x', scopes: [], secret: 'mine' }]) {
    t.equal((await asAdmin({ method: 'POST', url: '/admin/clients', payload })).statusCode, 400, JSON.stringify(payload))
  }
})

t.test('introspection (RFC 7662): what a token is now, to an authenticated client', async (t) => {
  const { app, asAdmin } = await withAdmin(t)
  const asker = await createClient(asAdmin, { name: 'resource-server', scopes: [] })
  const caller = await createClient(asAdmin, { name: 'caller', scopes: ['x:read'], audience: 'resource-server' })
  const auth = basic(asker.clientId, asker.clientSecret)
  const introspect = (token: string, authorization: string | null = auth) =>
    app.inject({ method: 'POST', url: '/oauth/introspect', headers: { ...form, ...(authorization === null ? {} : { authorization }) }, payload: `token=${encodeURIComponent(token)}` })

  const user = await registerUser(app)
  const active = await introspect(user.token)
  t.equal(active.statusCode, 200)
  t.equal(active.headers['cache-control'], 'no-store')
  t.match(active.json(), { active: true, sub: user.id, email: user.email, roles: [], sid: user.sessionId, iss: 'auth-service', aud: 'auth-service-clients', token_type: 'access_token' })
  t.ok(active.json().exp > active.json().iat)

  const callerToken = (await tokenRequest(app, 'grant_type=client_credentials', basic(caller.clientId, caller.clientSecret))).json().access_token
  t.match((await introspect(callerToken)).json(), { active: true, sub: caller.clientId, client_id: caller.clientId, scope: 'x:read', aud: 'resource-server' })

  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  t.same((await introspect(user.token)).json(), { active: false }, 'a logged-out session\'s token, at once')
  const disabled = await registerUser(app)
  await asAdmin({ method: 'PATCH', url: `/admin/users/${disabled.id}`, payload: { disabled: true } })
  t.same((await introspect(disabled.token)).json(), { active: false }, 'a disabled user\'s')
  await asAdmin({ method: 'DELETE', url: `/admin/clients/${caller.clientId}` })
  t.same((await introspect(callerToken)).json(), { active: false }, 'a deleted client\'s')
  for (const junk of ['garbage', user.token.slice(0, -4) + 'AAAA', 'a.b.c']) t.same((await introspect(junk)).json(), { active: false }, junk.slice(0, 10))

  const unauthenticated = await introspect(user.token, null)
  t.equal(unauthenticated.statusCode, 401, 'only a client may ask')
  t.equal(unauthenticated.json().error, 'invalid_client')
  t.equal((await introspect(user.token, basic(asker.clientId, 'wrong'))).statusCode, 401)
  const noToken = await app.inject({ method: 'POST', url: '/oauth/introspect', headers: { ...form, authorization: auth }, payload: '' })
  t.same([noToken.statusCode, noToken.json().error], [400, 'invalid_request'])
  const repeated = await app.inject({ method: 'POST', url: '/oauth/introspect', headers: { ...form, authorization: auth }, payload: 'token=a&token=b' })
  t.same([repeated.statusCode, repeated.json().error], [400, 'invalid_request'])
})

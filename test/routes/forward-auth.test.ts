import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl, login, registerUser, sleep } from '../helper.js'
import { startOwnDatabase } from '../support/database-process.js'

async function waitUntil (what: string, check: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

const verify = (app: FastifyInstance, authorization?: string) =>
  app.inject({ method: 'GET', url: '/auth/verify', headers: authorization === undefined ? {} : { authorization } })

async function adminOf (app: FastifyInstance) {
  const admin = await registerUser(app, { email: 'ops@example.com' })
  await app.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  return { ...admin, token: (await login(app, admin)).token }
}

t.test('a user\'s token: 204 with who it is; anything else: 401', async (t) => {
  const app = await build(t)
  await app.revocationState.sync()
  const user = await registerUser(app)
  const ok = await verify(app, `Bearer ${user.token}`)
  t.equal(ok.statusCode, 204)
  t.match(ok.headers, { 'x-auth-subject': user.id, 'x-auth-email': user.email, 'x-auth-session-id': user.sessionId })
  t.notOk('x-auth-scopes' in ok.headers || 'x-auth-roles' in ok.headers, 'only the headers that apply: no scopes, no roles')
  for (const [what, authorization, code] of [
    ['no token', undefined, 'TOKEN_MISSING'],
    ['a malformed header', 'Bearer', 'TOKEN_INVALID'],
    ['a Basic header', 'Basic abc', 'TOKEN_INVALID'],
    ['a forged token', `Bearer ${user.token.slice(0, -4)}AAAA`, 'TOKEN_INVALID']
  ] as const) {
    const response = await verify(app, authorization)
    t.equal(response.statusCode, 401, what)
    t.equal(response.json().code, code, what)
    t.match(response.headers['www-authenticate'], /^Bearer realm=/)
  }
  t.equal((await app.inject({ method: 'GET', url: `/auth/verify?secret_token=${user.token}` })).statusCode, 401, 'never a token from the URL')
})

t.test('a logout on one replica is refused by another replica\'s check within the sync interval', async (t) => {
  const env = { MONGODB_URL: await freshDatabaseUrl(), REVOCATION_SYNC_INTERVAL_MS: '100', ADMIN_EMAILS: 'ops@example.com' }
  const first = await build(t, { env })
  const second = await build(t, { env })
  await Promise.all([first.revocationState.sync(), second.revocationState.sync()])
  const user = await registerUser(first)
  t.equal((await verify(second, `Bearer ${user.token}`)).statusCode, 204)
  await first.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const loggedOutAt = Date.now()
  await waitUntil('the other replica refuses the token', async () => (await verify(second, `Bearer ${user.token}`)).statusCode === 401)
  t.ok(Date.now() - loggedOutAt < 2000, `refused ${Date.now() - loggedOutAt} ms after the logout`)
  t.equal((await verify(second, `Bearer ${user.token}`)).json().code, 'SESSION_REVOKED')

  // Disabled and deleted users: their sessions are revoked, so their tokens fail here too.
  const admin = await adminOf(first)
  t.equal((await verify(second, `Bearer ${admin.token}`)).headers['x-auth-roles'], 'admin', 'roles, when the user has some')
  const disabled = await registerUser(first)
  const deleted = await registerUser(first)
  await first.inject({ method: 'PATCH', url: `/admin/users/${disabled.id}`, headers: { authorization: `Bearer ${admin.token}` }, payload: { disabled: true } })
  await first.inject({ method: 'DELETE', url: `/admin/users/${deleted.id}`, headers: { authorization: `Bearer ${admin.token}` } })
  await waitUntil('both are refused', async () =>
    (await verify(second, `Bearer ${disabled.token}`)).statusCode === 401 && (await verify(second, `Bearer ${deleted.token}`)).statusCode === 401)
  t.pass('a disabled and a deleted user are refused')
})

t.test('a service client\'s token: 204 with its scopes, 401 once the client is deleted', async (t) => {
  const app = await build(t, { env: { ADMIN_EMAILS: 'ops@example.com', REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const admin = await adminOf(app)
  const client = (await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${admin.token}` }, payload: { name: 'gateway-user', scopes: ['a:read', 'b:read'], audience: 'some-service' } })).json()
  const token = (await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret } })).json().access_token
  await app.revocationState.sync()
  const ok = await verify(app, `Bearer ${token}`)
  t.equal(ok.statusCode, 204)
  t.match(ok.headers, { 'x-auth-subject': client.clientId, 'x-auth-scopes': 'a:read b:read' })
  t.notOk('x-auth-email' in ok.headers || 'x-auth-session-id' in ok.headers)
  await app.inject({ method: 'DELETE', url: `/admin/clients/${client.clientId}`, headers: { authorization: `Bearer ${admin.token}` } })
  await waitUntil('the deleted client\'s token is refused', async () => (await verify(app, `Bearer ${token}`)).statusCode === 401)
  t.pass('refused')
})

t.test('until the revocation state has been read, the check fails closed (503)', async (t) => {
  const app = await build(t, { env: { MONGODB_URL: 'mongodb://127.0.0.1:9/unreachable', MONGODB_SERVER_SELECTION_TIMEOUT_MS: '100' } })
  const token = (await build(t)).issueAccessToken({ userId: '65f0c0ffee0000000000beef', email: 'a@example.com', emailVerified: true, roles: [], sessionId: '65f0c0ffee0000000000feed' }).token
  const response = await verify(app, `Bearer ${token}`)
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'REVOCATION_STATE_UNAVAILABLE')
})

const cannotStartDatabase = await startOwnDatabase().then(
  async (database) => { await database.close(); return false as const },
  (error: Error) => `no database process of its own can start here (${error.message.split('\n')[0]}): set FERRETDB_BIN (see .ci/run)`
)

t.test('no database read per check: with the database gone, checks go on from memory', { skip: cannotStartDatabase }, async (t) => {
  const database = await startOwnDatabase()
  t.teardown(() => database.close())
  const app = await build(t, { env: { MONGODB_URL: database.url('forward_auth'), MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500' } })
  const user = await registerUser(app)
  await app.revocationState.sync()
  await database.stop()
  const statuses = []
  for (let i = 0; i < 20; i++) statuses.push((await verify(app, `Bearer ${user.token}`)).statusCode)
  t.same(statuses, Array(20).fill(204), 'every check answered without the database')
  t.equal((await app.inject({ method: 'GET', url: '/user/sessions', headers: { authorization: `Bearer ${user.token}` } })).statusCode, 503, 'while a route that reads it cannot')
  await database.start()
})

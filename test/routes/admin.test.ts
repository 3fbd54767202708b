import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { build, decodeClaims, logCapture, login, refresh, registerUser, uniqueEmail, type RegisteredUser, revocationsReader } from '../helper.js'

const ADMIN_EMAIL = 'root.admin@example.com'

/** The app, with an admin: the ADMIN_EMAILS account, verified, logged in afresh. */
async function withAdmin (t: Test, env: Record<string, string> = {}, options: { logStream?: ReturnType<typeof logCapture>, beforeReady?: (app: FastifyInstance) => void } = {}) {
  const app = await build(t, { env: { ADMIN_EMAILS: ` ${ADMIN_EMAIL.toUpperCase()} , other@example.com`, ...env }, ...options })
  const registered = await registerUser(app, { email: ADMIN_EMAIL })
  await app.usersRepository.markEmailVerified(registered.id, ADMIN_EMAIL)
  const session = await login(app, registered)
  const admin = { ...registered, token: session.token, inject: (request: InjectOptions) => app.inject({ ...request, headers: { ...request.headers, authorization: `Bearer ${session.token}` } }) }
  return { app, admin }
}

t.test('ADMIN_EMAILS makes an admin only of a verified address; a token without the role gets 403', async (t) => {
  const app = await build(t, { env: { ADMIN_EMAILS: ADMIN_EMAIL } })
  const unverified = await registerUser(app, { email: ADMIN_EMAIL })
  t.same(decodeClaims(unverified.token).roles, [], 'not before the address is verified')
  const refused = await unverified.inject({ method: 'GET', url: '/admin/users' })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'FORBIDDEN')
  await app.usersRepository.markEmailVerified(unverified.id, ADMIN_EMAIL)
  const session = await login(app, unverified)
  t.same(decodeClaims(session.token).roles, ['admin'], 'the role is in the next token')
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${session.token}` } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users' })).statusCode, 401, 'no token: 401')
  t.equal((await app.inject({ method: 'GET', url: `/admin/users?secret_token=${session.token}` })).statusCode, 401, 'never a token from the URL')
})

t.test('listing pages through users in signup order, and searches by address prefix', async (t) => {
  const { app, admin } = await withAdmin(t)
  const users: RegisteredUser[] = []
  for (let i = 0; i < 5; i++) users.push(await registerUser(app, { email: `listed${i}.${Date.now()}@example.com` }))
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const response = await admin.inject({ method: 'GET', url: `/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ''}` })
    t.equal(response.statusCode, 200)
    const body = response.json<{ users: Array<{ id: string, email: string, roles: string[], disabled: boolean, emailVerified: boolean }>, cursor: string | null }>()
    seen.push(...body.users.map((user) => user.id))
    cursor = body.cursor
    pages++
  } while (cursor !== null)
  t.same(seen, [admin.id, ...users.map((user) => user.id)], 'every user once, in signup order')
  t.equal(pages, 3)
  const search = await admin.inject({ method: 'GET', url: '/admin/users?email=LISTED3' })
  t.same(search.json().users.map((user: { id: string }) => user.id), [users[3]!.id], 'a prefix, case-insensitive')
  t.same((await admin.inject({ method: 'GET', url: '/admin/users?email=.*' })).json().users, [], 'matched literally, not as a pattern')
  t.equal((await admin.inject({ method: 'GET', url: '/admin/users?cursor=nope' })).statusCode, 400)
  t.equal((await admin.inject({ method: 'GET', url: '/admin/users?limit=201' })).statusCode, 400)
  const one = await admin.inject({ method: 'GET', url: `/admin/users/${users[0]!.id}` })
  t.same(Object.keys(one.json()).sort(), ['createdAt', 'disabled', 'email', 'emailVerified', 'id', 'roles'])
  t.notMatch(one.body, /passwordHash|\$2b\$/, 'no hash')
  for (const id of ['0123456789abcdef01234567', 'not-an-id']) {
    const missing = await admin.inject({ method: 'GET', url: `/admin/users/${id}` })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().code, 'USER_NOT_FOUND')
  }
})

t.test('roles granted by an admin reach the user\'s tokens, and a route guarded by requireRole in one line', async (t) => {
  const { app, admin } = await withAdmin(t, {}, {
    beforeReady (app) {
      // A route of a service's own, after the plugins it needs are loaded.
      app.register(async (instance) => {
        instance.get('/billing', { preHandler: [instance.authenticate, instance.requireRole('billing')] }, async () => ({ ok: true }))
      })
    }
  })
  const user = await registerUser(app)
  t.equal((await user.inject({ method: 'GET', url: '/billing' })).statusCode, 403)
  const granted = await admin.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, payload: { roles: ['billing', 'reports:read'] } })
  t.equal(granted.statusCode, 200)
  t.same(granted.json().roles, ['billing', 'reports:read'])
  const refreshed = await refresh(app, user.refreshToken)
  t.same(decodeClaims(refreshed.json().token).roles, ['billing', 'reports:read'], 'the next token of the session has them')
  t.equal((await app.inject({ method: 'GET', url: '/billing', headers: { authorization: `Bearer ${refreshed.json().token}` } })).statusCode, 200)
  for (const payload of [{}, { roles: ['Admin'] }, { roles: ['a', 'a'] }, { roles: 'admin' }, { disabled: 'yes' }, { email: 'x@example.com' }]) {
    t.equal((await admin.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, payload })).statusCode, 400, JSON.stringify(payload))
  }
  t.equal((await user.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, payload: { roles: ['admin'] } })).statusCode, 403, 'nobody grants themselves a role')
})

t.test('a demoted admin is refused at once, before the token expires', async (t) => {
  const { app, admin } = await withAdmin(t)
  const second = await registerUser(app)
  await admin.inject({ method: 'PATCH', url: `/admin/users/${second.id}`, payload: { roles: ['admin'] } })
  const secondSession = await login(app, second)
  const asSecond = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${secondSession.token}` } })
  t.equal((await asSecond('/admin/users')).statusCode, 200)
  await admin.inject({ method: 'PATCH', url: `/admin/users/${second.id}`, payload: { roles: [] } })
  t.equal((await asSecond('/admin/users')).statusCode, 403, 'the token still says admin; the account no longer does')
})

t.test('disabling revokes every session: login is 403 ACCOUNT_DISABLED, refresh fails; enabling lets it back in', async (t) => {
  const logs = logCapture()
  const { app, admin } = await withAdmin(t, { LOG_LEVEL: 'info' }, { logStream: logs })
  const user = await registerUser(app)
  const disabled = await admin.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, payload: { disabled: true } })
  t.equal(disabled.json().disabled, true)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401, 'the session is over')
  const feed = (await app.inject({ method: 'GET', url: '/revocations', headers: (await revocationsReader(app)).headers })).json<{ revoked: Array<{ sub?: string, notBefore?: string }> }>()
  t.ok(feed.revoked.some((entry) => entry.sub === user.id && entry.notBefore !== undefined), 'and other services hear of it: one entry for the user')
  const wrong = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'not the password' } })
  t.equal(wrong.statusCode, 401, 'a wrong password tells nothing')
  const refused = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'ACCOUNT_DISABLED')
  t.equal(await app.mongo.db!.collection('sessions').countDocuments({ userId: new (await import('mongodb')).ObjectId(user.id) }), 0, 'nothing issued')

  t.equal((await admin.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, payload: { disabled: false } })).json().disabled, false)
  t.ok((await login(app, user)).token)
  const events = logs.lines().map((line) => JSON.parse(line)).filter((entry) => entry.event === 'admin')
  t.match(events, [{ outcome: 'user_disabled', actorId: admin.id, userId: user.id, revokedSessions: 1 }, { outcome: 'user_enabled', actorId: admin.id, userId: user.id }], 'each change is an event naming the admin')
})

t.test('an admin deletes a user: sessions revoked, personal data gone, the address free again', async (t) => {
  const { app, admin } = await withAdmin(t)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: user.email } })
  t.equal((await admin.inject({ method: 'DELETE', url: `/admin/users/${user.id}` })).statusCode, 204)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })).statusCode, 401)
  const db = app.mongo.db!
  const { ObjectId } = await import('mongodb')
  t.equal(await db.collection('users').countDocuments({ email: user.email }), 0)
  t.equal(await db.collection('email_codes').countDocuments({ userId: new ObjectId(user.id) }), 0, 'no code')
  t.equal(await db.collection('outbox').countDocuments({ to: user.email }), 0, 'no message to the address')
  t.equal(await db.collection('sessions').countDocuments({ userId: new ObjectId(user.id) }), 0, 'no session')
  t.equal((await app.inject({ method: 'POST', url: '/signup', payload: { email: user.email, password: 'a new account here' } })).statusCode, 201, 'the address can sign up again')
  t.equal((await admin.inject({ method: 'DELETE', url: `/admin/users/${user.id}` })).statusCode, 404)

  const other = await registerUser(app)
  const second = await login(app, other)
  t.equal((await admin.inject({ method: 'DELETE', url: `/admin/users/${other.id}/sessions` })).statusCode, 204)
  t.same([(await refresh(app, other.refreshToken)).statusCode, (await refresh(app, second.refreshToken)).statusCode], [401, 401], 'every session of the user ended')
  t.ok((await login(app, other)).token, 'the account itself stays')
})

t.test('DELETE /user: the user deletes their own account with the password', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const wrong = await user.inject({ method: 'DELETE', url: '/user', payload: { password: 'not the password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal((await user.inject({ method: 'DELETE', url: '/user', payload: {} })).statusCode, 400)
  t.equal((await app.inject({ method: 'DELETE', url: `/user?secret_token=${user.token}`, payload: { password: user.password } })).statusCode, 401, 'never with a token in the URL')
  t.equal((await user.inject({ method: 'DELETE', url: '/user', payload: { password: user.password } })).statusCode, 204)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401)
  t.equal((await user.inject({ method: 'GET', url: '/user/sessions' })).statusCode, 401, 'its session is over')
  t.equal((await app.inject({ method: 'POST', url: '/signup', payload: { email: user.email, password: 'a new account here' } })).statusCode, 201)
})

t.test('a user deleted while a session was being created cannot refresh it', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  await app.usersRepository.deleteAccount(user.id)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401)
  t.equal(typeof uniqueEmail(), 'string')
})

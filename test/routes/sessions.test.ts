import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, login, registerUser, refresh } from '../helper.js'

function bearer (token: string) {
  return { authorization: `Bearer ${token}` }
}

function changePassword (app: FastifyInstance, token: string, payload: object) {
  return app.inject({ method: 'PUT', url: '/user/password', headers: bearer(token), payload })
}

t.test('the session list shows every live session, the current one marked', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const phone = await login(app, user, { 'user-agent': 'PhoneApp/2.1' })
  const response = await app.inject({ method: 'GET', url: '/user/sessions', headers: { ...bearer(phone.token), 'user-agent': 'ignored/1.0' } })
  t.equal(response.statusCode, 200)
  const { sessions } = response.json()
  t.equal(sessions.length, 2)
  t.same(Object.keys(sessions[0]).sort(), ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])
  const current = sessions.filter((session: { current: boolean }) => session.current)
  t.equal(current.length, 1)
  t.match(current[0], { id: phone.sessionId, userAgent: 'PhoneApp/2.1', ip: '127.0.0.1' })
  t.ok(sessions.some((session: { id: string }) => session.id === user.sessionId))
  t.ok(Date.parse(current[0].expiresAt) > Date.parse(current[0].createdAt))

  const viaQuery = await app.inject({ method: 'GET', url: `/user/sessions?secret_token=${user.token}` })
  t.equal(viaQuery.statusCode, 200, 'a GET route takes the query token')
  t.equal(viaQuery.json().sessions.find((session: { current: boolean }) => session.current).id, user.sessionId)
})

t.test('lastUsedAt moves with a refresh', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const before = (await user.inject({ method: 'GET', url: '/user/sessions' })).json().sessions[0]
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200)
  const after = (await user.inject({ method: 'GET', url: '/user/sessions' })).json().sessions[0]
  t.ok(Date.parse(after.lastUsedAt) > Date.parse(before.lastUsedAt))
  t.equal(after.createdAt, before.createdAt)
})

t.test('another user\'s session id, an unknown id and a malformed id all answer the same 404', async (t) => {
  const app = await build(t)
  const ann = await registerUser(app)
  const bob = await registerUser(app)
  const bodies = []
  for (const id of [bob.sessionId, '0123456789abcdef01234567', 'not-an-id']) {
    const response = await ann.inject({ method: 'DELETE', url: `/user/sessions/${id}` })
    t.equal(response.statusCode, 404, id)
    bodies.push(response.body)
  }
  t.equal(new Set(bodies).size, 1, 'without telling which')
  t.same(JSON.parse(bodies[0]!), { statusCode: 404, code: 'SESSION_NOT_FOUND', error: 'Not Found', message: 'No such session' })
  t.equal((await refresh(app, bob.refreshToken)).statusCode, 200, 'Bob\'s session is untouched')
})

t.test('deleting one session revokes it and only it', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const laptop = await login(app, user)
  const response = await user.inject({ method: 'DELETE', url: `/user/sessions/${laptop.sessionId}` })
  t.equal(response.statusCode, 204)
  t.equal((await refresh(app, laptop.refreshToken)).statusCode, 401, 'the deleted session\'s refresh token fails')
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the current session lives on')
  const { sessions } = (await user.inject({ method: 'GET', url: '/user/sessions' })).json()
  t.same(sessions.map((session: { id: string }) => session.id), [user.sessionId])
  t.equal((await user.inject({ method: 'DELETE', url: `/user/sessions/${laptop.sessionId}` })).statusCode, 404, 'a second delete finds nothing')
})

t.test('session deletion takes the Authorization header only', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const laptop = await login(app, user)
  const response = await app.inject({ method: 'DELETE', url: `/user/sessions/${laptop.sessionId}?secret_token=${user.token}` })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'TOKEN_MISSING')
  t.equal((await refresh(app, laptop.refreshToken)).statusCode, 200)
})

t.test('deleting all sessions signs the user out everywhere', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const other = await login(app, user)
  const stranger = await registerUser(app)
  t.equal((await user.inject({ method: 'DELETE', url: '/user/sessions' })).statusCode, 204)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401)
  t.equal((await refresh(app, other.refreshToken)).statusCode, 401)
  t.equal((await refresh(app, stranger.refreshToken)).statusCode, 200, 'other users are untouched')
  const list = await user.inject({ method: 'GET', url: '/user/sessions' })
  t.equal(list.statusCode, 401)
  t.equal(list.json().code, 'SESSION_REVOKED')
  const reasons = await app.mongo.db!.collection('revocations').distinct('reason')
  t.same(reasons, ['all_sessions_deleted'])
})

t.test('changing the password keeps the current session, kills the others, and retires the old password', async (t) => {
  const app = await build(t)
  const user = await registerUser(app, { password: 'the old password' })
  const other = await login(app, user)
  const response = await changePassword(app, user.token, { currentPassword: 'the old password', newPassword: 'the new password' })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')

  t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the current session stays signed in')
  const killed = await refresh(app, other.refreshToken)
  t.equal(killed.statusCode, 401, 'the other session is revoked')
  const oldLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the old password' } })
  t.equal(oldLogin.statusCode, 401)
  t.equal(oldLogin.json().code, 'INVALID_CREDENTIALS')
  const newLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the new password' } })
  t.equal(newLogin.statusCode, 200)
  const revocation = await app.mongo.db!.collection('revocations').findOne({ _id: new app.mongo.ObjectId(other.sessionId) })
  t.equal(revocation?.reason, 'password_changed')
})

t.test('a wrong current password changes nothing', async (t) => {
  const app = await build(t)
  const user = await registerUser(app, { password: 'the old password' })
  const other = await login(app, user)
  const before = (await app.usersRepository.findByEmail(user.email))!.passwordHash
  const response = await changePassword(app, user.token, { currentPassword: 'not the password', newPassword: 'the new password' })
  t.equal(response.statusCode, 401)
  t.same(response.json(), { statusCode: 401, code: 'INVALID_CURRENT_PASSWORD', error: 'Unauthorized', message: 'The current password is wrong' })
  t.equal((await app.usersRepository.findByEmail(user.email))!.passwordHash, before)
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'no session was revoked')
})

t.test('password change input is validated like signup, before the token is even looked at', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const cases: object[] = [
    { currentPassword: user.password },
    { currentPassword: user.password, newPassword: 'short' },
    { currentPassword: user.password, newPassword: 'x'.repeat(73) },
    { currentPassword: user.password, newPassword: 12345678 },
    { currentPassword: user.password, newPassword: 'a valid new password', extra: true }
  ]
  for (const payload of cases) {
    const response = await changePassword(app, user.token, payload)
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 80))
  }
  const withoutToken = await app.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: 'x' } })
  t.equal(withoutToken.statusCode, 400, 'validation runs before authentication')
})

t.test('the password cannot be changed with a query token or a revoked session\'s access token', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const payload = { currentPassword: user.password, newPassword: 'the new password' }
  const viaQuery = await app.inject({ method: 'PUT', url: `/user/password?secret_token=${user.token}`, payload })
  t.equal(viaQuery.statusCode, 401)
  t.equal(viaQuery.json().code, 'TOKEN_MISSING')

  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const revoked = await changePassword(app, user.token, payload)
  t.equal(revoked.statusCode, 401)
  t.equal(revoked.json().code, 'SESSION_REVOKED')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })).statusCode, 200, 'the password is unchanged')
})

import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, login, registerUser } from './helper.js'

function refresh (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken } })
}

async function liveSessions (app: FastifyInstance, userId: string) {
  return app.mongo.db!.collection('sessions').countDocuments({ userId: new app.mongo.ObjectId(userId) })
}

t.test('concurrent password changes: exactly one new password wins, the old one is dead, only the current session lives', async (t) => {
  const app = await build(t)
  for (let round = 0; round < 5; round++) {
    const user = await registerUser(app, { password: 'the original password' })
    const others = await Promise.all([login(app, user), login(app, user)])
    const candidates = Array.from({ length: 6 }, (_, i) => `new password number ${i}`)
    const responses = await Promise.all(candidates.map((newPassword) =>
      user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: 'the original password', newPassword } })))
    t.ok(responses.every((response) => [204, 401].includes(response.statusCode)), `round ${round}: ${responses.map((response) => response.statusCode).join(',')}`)

    const working = []
    for (const password of candidates) {
      if ((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password } })).statusCode === 200) working.push(password)
    }
    t.equal(working.length, 1, `round ${round}: exactly one new password works`)
    t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the original password' } })).statusCode, 401)
    for (const other of others) t.equal((await refresh(app, other.refreshToken)).statusCode, 401, 'the other sessions are revoked')
    t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the current session lives')
  }
})

t.test('revoking every session while they refresh: no session survives the revoke', async (t) => {
  const app = await build(t)
  for (let round = 0; round < 5; round++) {
    const user = await registerUser(app)
    const sessions = await Promise.all(Array.from({ length: 4 }, () => login(app, user)))
    const [revokeAll, ...refreshed] = await Promise.all([
      user.inject({ method: 'DELETE', url: '/user/sessions' }),
      ...sessions.map((session) => refresh(app, session.refreshToken))
    ])
    t.equal(revokeAll!.statusCode, 204)
    for (const response of refreshed) {
      t.ok([200, 401].includes(response.statusCode))
      if (response.statusCode === 200) t.equal((await refresh(app, response.json().refreshToken)).statusCode, 401, 'a token handed out during the revoke is dead')
    }
    const loggedInAfter = await liveSessions(app, user.id)
    t.equal(loggedInAfter, 0, `round ${round}: no session left`)
    t.equal(await app.mongo.db!.collection('refresh_tokens').countDocuments({ sessionId: { $in: sessions.map((session) => new app.mongo.ObjectId(session.sessionId)) } }), 0, 'nor any of their tokens')
  }
})

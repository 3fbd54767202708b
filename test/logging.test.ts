import t from 'tap'
import { build, logCapture, registerUser } from './helper.js'

t.test('passwords, tokens and the secret_token value never reach a log line', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'trace' }, logStream: logs })
  const password = 'Unmistakable-Passw0rd-7781'
  const user = await registerUser(app, { password })
  const [, , signature] = user.token.split('.') as [string, string, string]

  // Every path a secret could travel through.
  await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })
  await app.inject({ method: 'GET', url: `/user/profile?other=1&secret%5Ftoken=${user.token}&x=2` })
  await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}`, headers: { authorization: `Bearer ${user.token}` } })
  await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${user.token}x` } })
  await app.inject({ method: 'GET', url: `/nowhere?secret_token=${user.token}` })
  await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: `${password}-wrong` } })
  await app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password } })
  await app.inject({ method: 'POST', url: '/signup', payload: { email: user.email, password } })
  await app.inject({ method: 'POST', url: '/signup', payload: { email: 'x@example.com', password, extra: password } })
  await app.inject({ method: 'POST', url: '/signup', headers: { 'content-type': 'application/json' }, payload: `{"email":"x@example.com","password":"${password}"` })
  await app.inject({ method: 'POST', url: '/signup', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=bad&password=${password}` })
  const refreshed = await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: user.refreshToken } })
  const rotatedRefreshToken: string = refreshed.json().refreshToken
  await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: `${user.refreshToken.slice(0, -1)}x` } })
  await app.inject({ method: 'PUT', url: '/user/password', headers: { authorization: `Bearer ${user.token}` }, payload: { currentPassword: password, newPassword: `${password}-new` } })
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: rotatedRefreshToken } })

  const lines = logs.lines()
  t.ok(lines.length > 20, `the capture saw the traffic (${lines.length} lines)`)
  t.ok(lines.some((line) => line.includes('secret_token=[REDACTED]')), 'the query value is replaced, not dropped silently')
  t.ok(lines.some((line) => line.includes('secret%5Ftoken=[REDACTED]')), 'also when the name is percent-encoded')
  t.ok(lines.some((line) => line.includes(user.id)), 'auth events carry the user id')
  for (const line of lines) {
    t.notOk(line.includes(password), 'no password')
    t.notOk(line.includes(signature), 'no access token')
    t.notOk(line.includes(user.refreshToken) || line.includes(rotatedRefreshToken), 'no refresh token')
    t.notOk(line.includes('$2b$'), 'no hash')
  }
})

t.test('auth events are logged with the user id and the outcome', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'wrong password' } })
  const refreshed = await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: user.refreshToken } })
  await app.inject({ method: 'PUT', url: '/user/password', headers: { authorization: `Bearer ${user.token}` }, payload: { currentPassword: user.password, newPassword: 'another password' } })
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: refreshed.json().refreshToken } })
  const events = logs.lines().map((line) => JSON.parse(line)).filter((line) => line.event)
  t.match(events, [
    { event: 'signup', userId: user.id },
    { event: 'login', outcome: 'success', userId: user.id, sessionId: user.sessionId },
    { event: 'login', outcome: 'invalid_credentials', userId: user.id },
    { event: 'refresh', outcome: 'rotated', userId: user.id, sessionId: user.sessionId },
    { event: 'password_change', outcome: 'success', userId: user.id },
    { event: 'logout', sessionId: user.sessionId }
  ])
  t.ok(events.every((event) => event.reqId), 'every event carries its request id')
})

t.test('without a configured key or secret outside production the service warns loudly', async (t) => {
  for (const env of [{ JWT_ALGORITHM: 'EdDSA' }, { JWT_ALGORITHM: 'HS256' }]) {
    const logs = logCapture()
    const app = await build(t, { env: { LOG_LEVEL: 'warn', ...env }, logStream: logs })
    const user = await registerUser(app)
    t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200, `${env.JWT_ALGORITHM}: tokens still work within this process`)
    const warning = logs.lines().map((line) => JSON.parse(line)).find((line) => /ephemeral (key pair|secret)/.test(line.msg))
    t.equal(warning?.level, 40, `${env.JWT_ALGORITHM}: one warning`)
  }
})

t.test('each request is one log line, on completion, with method, redacted URL, status and time', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  const user = await registerUser(app)
  const before = logs.lines().length
  await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}`, headers: { 'x-request-id': 'trace-me-1' } })
  const lines = logs.lines().slice(before).map((line) => JSON.parse(line))
  t.equal(lines.length, 1, 'one line, no separate "incoming request" line')
  t.match(lines[0], {
    msg: 'request completed',
    reqId: 'trace-me-1',
    req: { method: 'GET', url: '/user/profile?secret_token=[REDACTED]' },
    res: { statusCode: 200 },
    responseTime: Number
  })
  t.notOk(JSON.stringify(lines[0]).includes(user.token.split('.')[2]!), 'no token')
})

t.test('a line that carries request headers has the authorization and cookie values censored', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  app.log.info({ headers: { authorization: 'Bearer abc.def.ghi', cookie: 'sid=s3cret', accept: 'application/json' } }, 'headers')
  const line = logs.lines().map((text) => JSON.parse(text)).find((entry) => entry.msg === 'headers')
  t.same(line?.headers, { authorization: '[REDACTED]', cookie: '[REDACTED]', accept: 'application/json' })
})

t.test('request loggers carry the request id, honour the level, and make children and level changes work', async (t) => {
  const logs = logCapture()
  const app = await build(t, {
    env: { LOG_LEVEL: 'warn' },
    logStream: logs,
    beforeReady (app) {
      app.get('/test/log-lines', async (request) => {
        const levelBefore = request.log.level
        request.log.info('info is below the level')
        request.log.trace('trace is below the level')
        request.log.silent('silent writes nothing')
        request.log.warn('a warning')
        request.log.child({ step: 'nested' }).error('from a child')
        request.log.level = 'debug'
        request.log.debug('debug after lowering this request\'s level')
        request.log.fatal('a fatal line')
        return { levelBefore, levelAfter: request.log.level }
      })
      // A route with its own level gets its child at once, with that level.
      app.get('/test/route-level', { logLevel: 'trace' }, async (request) => {
        request.log.trace('trace on a trace-level route')
        return { level: request.log.level }
      })
      app.get('/test/log-nothing', async (request) => {
        request.log.debug('not written')
        return { level: request.log.level }
      })
    }
  })
  const response = await app.inject({ method: 'GET', url: '/test/log-lines', headers: { 'x-request-id': 'lazy-1' } })
  t.same(response.json(), { levelBefore: 'warn', levelAfter: 'debug' })
  t.same((await app.inject({ method: 'GET', url: '/test/log-nothing' })).json(), { level: 'warn' }, 'another request keeps the app\'s level')
  t.same((await app.inject({ method: 'GET', url: '/test/route-level', headers: { 'x-request-id': 'lazy-2' } })).json(), { level: 'trace' })
  const routeLevelLine = logs.lines().map((line) => JSON.parse(line)).find((line) => line.msg === 'trace on a trace-level route')
  t.equal(routeLevelLine?.reqId, 'lazy-2', 'the route-level child carries the request id too')
  const lines = logs.lines().map((line) => JSON.parse(line)).filter((line) => line.reqId === 'lazy-1')
  t.same(lines.map((line) => line.msg), ['a warning', 'from a child', 'debug after lowering this request\'s level', 'a fatal line', 'request completed'],
    'the request\'s lowered level also lets its completion line through')
  t.equal(lines[1].step, 'nested', 'the child keeps its own bindings')
  const others = logs.lines().map((line) => JSON.parse(line)).filter((line) => line.reqId !== undefined && !['lazy-1', 'lazy-2'].includes(line.reqId))
  t.same(others, [], 'the request at the app\'s level writes nothing')
})

import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl, registerUser } from './helper.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A Redis key prefix of the test's own, and a client to read it; the keys go at teardown. */
function redisKeys (t: Test) {
  const prefix = `auth-service-test:${randomBytes(4).toString('hex')}:`
  const redis = new Redis(REDIS_URL)
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
  return { prefix, redis }
}

function attemptLogin (app: FastifyInstance, email: string, password: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/login', headers, payload: { email, password } })
}

t.test('the per-IP limit answers 429 in the error shape with Retry-After', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_IP_MAX: '3', RATE_LIMIT_WINDOW_SECONDS: '60' } })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await attemptLogin(app, 'nobody@example.com', 'some password')).statusCode)
  t.same(statuses, [401, 401, 401, 429])
  const limited = await attemptLogin(app, 'nobody@example.com', 'some password')
  t.equal(limited.statusCode, 429)
  t.same(Object.keys(limited.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After is set')

  const signup = await app.inject({ method: 'POST', url: '/signup', payload: { email: 'fresh@example.com', password: 'password123' } })
  t.equal(signup.statusCode, 201, 'each endpoint has its own budget')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'other routes are not limited')
})

t.test('every credential endpoint is limited', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_IP_MAX: '1' } })
  const user = await registerUser(app)
  const requests = [
    { method: 'POST' as const, url: '/signup', payload: { email: 'x@example.com', password: 'password123' } },
    { method: 'POST' as const, url: '/token/refresh', payload: { refreshToken: user.refreshToken } },
    { method: 'PUT' as const, url: '/user/password', headers: { authorization: `Bearer ${user.token}` }, payload: { currentPassword: 'wrong password', newPassword: 'password1234' } }
  ]
  for (const request of requests) {
    await app.inject(request)
    t.equal((await app.inject(request)).statusCode, 429, request.url)
  }
})

t.test('a spoofed X-Forwarded-For does not reset the limit unless TRUST_PROXY says so', async (t) => {
  const untrusting = await build(t, { env: { RATE_LIMIT_IP_MAX: '2' } })
  const spoofed = []
  for (let i = 0; i < 4; i++) spoofed.push((await attemptLogin(untrusting, 'a@example.com', 'some password', { 'x-forwarded-for': `203.0.113.${i}` })).statusCode)
  t.same(spoofed, [401, 401, 429, 429], 'by default the header is ignored')

  const trusting = await build(t, { env: { RATE_LIMIT_IP_MAX: '2', TRUST_PROXY: 'true' } })
  const distinct = []
  for (let i = 0; i < 4; i++) distinct.push((await attemptLogin(trusting, 'a@example.com', 'some password', { 'x-forwarded-for': `203.0.113.${i}` })).statusCode)
  t.same(distinct, [401, 401, 401, 401], 'behind a trusted proxy each client has its own budget')
  const same = []
  for (let i = 0; i < 3; i++) same.push((await attemptLogin(trusting, 'a@example.com', 'some password', { 'x-forwarded-for': '198.51.100.7' })).statusCode)
  t.same(same, [401, 401, 429])
})

t.test('failed logins are limited per account and address; successes, other addresses and other accounts are not', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_EMAIL_MAX: '3', TRUST_PROXY: 'true' } })
  const victim = await registerUser(app)
  const bystander = await registerUser(app)
  const from = (address: string) => ({ 'x-forwarded-for': address })
  for (let i = 0; i < 5; i++) {
    t.equal((await attemptLogin(app, victim.email, victim.password, from('192.0.2.1'))).statusCode, 200, 'successful logins do not count')
  }
  for (let i = 0; i < 3; i++) {
    t.equal((await attemptLogin(app, victim.email, `wrong guess ${i}`, from('198.51.100.7'))).statusCode, 401)
  }
  const blocked = await attemptLogin(app, victim.email, victim.password, from('198.51.100.7'))
  t.equal(blocked.statusCode, 429, 'that address is shut out of the account, even with the right password')
  t.equal(blocked.json().code, 'RATE_LIMITED')
  t.ok(Number(blocked.headers['retry-after']) > 0)
  t.equal((await attemptLogin(app, ` ${victim.email.toUpperCase()}`, victim.password, from('198.51.100.7'))).statusCode, 429, 'the email is normalised before counting')
  t.equal((await attemptLogin(app, bystander.email, bystander.password, from('198.51.100.7'))).statusCode, 200, 'other accounts are untouched from there')
  t.equal((await attemptLogin(app, victim.email, victim.password, from('192.0.2.1'))).statusCode, 200, 'the owner, elsewhere, still logs in')
})

t.test('review finding 2: concurrent wrong passwords cannot overshoot the limit (counted before the comparison)', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_EMAIL_MAX: '10' } })
  const user = await registerUser(app)
  const statuses = (await Promise.all(Array.from({ length: 40 }, (_, i) => attemptLogin(app, user.email, `wrong password ${i}`))))
    .map((response) => response.statusCode)
  t.equal(statuses.filter((status) => status === 401).length, 10, 'exactly the limit was compared')
  t.equal(statuses.filter((status) => status === 429).length, 30, 'the rest were refused unchecked')
  t.equal((await attemptLogin(app, user.email, user.password)).statusCode, 429, 'the budget is used up')
})

t.test('review finding 3: an attacker\'s address is locked out of an account, the owner\'s is not; many addresses together still are', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_EMAIL_MAX: '3', RATE_LIMIT_ACCOUNT_MAX: '8', TRUST_PROXY: 'true' } })
  const owner = await registerUser(app)
  const attacker = { 'x-forwarded-for': '203.0.113.66' }
  const ownerAddress = { 'x-forwarded-for': '192.0.2.10' }
  for (let i = 0; i < 10; i++) await attemptLogin(app, owner.email, `wrong guess ${i}`, attacker)
  t.equal((await attemptLogin(app, owner.email, owner.password, attacker)).statusCode, 429, 'the attacker\'s address gets 429')
  t.equal((await attemptLogin(app, owner.email, owner.password, ownerAddress)).statusCode, 200, 'the owner logs in from theirs')

  // An IPv6 client is one /64: rotating the host part does not buy new guesses.
  for (let i = 0; i < 3; i++) await attemptLogin(app, owner.email, `v6 guess ${i}`, { 'x-forwarded-for': `2001:db8:1:2::${i + 1}` })
  t.equal((await attemptLogin(app, owner.email, 'v6 guess', { 'x-forwarded-for': '2001:db8:1:2:ffff::9' })).statusCode, 429, 'the same /64 is the same client')

  // 3 (attacker) + 3 (IPv6) failures so far; two more addresses reach the account-wide 8.
  for (const address of ['198.51.100.1', '198.51.100.2']) await attemptLogin(app, owner.email, 'distributed guess', { 'x-forwarded-for': address })
  const throttled = await attemptLogin(app, owner.email, owner.password, { 'x-forwarded-for': '198.51.100.3' })
  t.equal(throttled.statusCode, 429, 'a distributed attack is still throttled by the account-wide limit')
})

t.test('review finding 5: wrong current passwords at PUT /user/password count with the account\'s failed logins', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_EMAIL_MAX: '3' } })
  const user = await registerUser(app)
  const change = (currentPassword: string) => user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword, newPassword: 'a brand new password' } })
  t.equal((await attemptLogin(app, user.email, 'wrong login')).statusCode, 401)
  t.equal((await change('wrong current 1')).statusCode, 401)
  t.equal((await change('wrong current 2')).statusCode, 401)
  const limited = await change(user.password)
  t.equal(limited.statusCode, 429, 'the fourth guess is refused, even the right one')
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await attemptLogin(app, user.email, user.password)).statusCode, 429, 'and logins from that address share the budget')
})

t.test('with REDIS_URL the limits are shared by every replica, and Redis holds no email', async (t) => {
  const { prefix, redis } = redisKeys(t)
  const databaseUrl = await freshDatabaseUrl()
  const env = { MONGODB_URL: databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_IP_MAX: '3', RATE_LIMIT_EMAIL_MAX: '2' }
  const replicaA = await build(t, { env })
  const replicaB = await build(t, { env })

  t.equal((await attemptLogin(replicaA, 'shared@example.com', 'guess one')).statusCode, 401)
  t.equal((await attemptLogin(replicaB, 'shared@example.com', 'guess two')).statusCode, 401)
  const third = await attemptLogin(replicaA, 'shared@example.com', 'guess three')
  t.equal(third.statusCode, 429, 'the failed-attempt budget is shared')

  const signups = []
  for (const replica of [replicaA, replicaB, replicaA, replicaB]) {
    signups.push((await replica.inject({ method: 'POST', url: '/signup', payload: { email: `s${signups.length}@example.com`, password: 'password123' } })).statusCode)
  }
  t.same(signups, [201, 201, 201, 429], 'the per-IP budget is shared')

  const keys = await redis.keys(`${prefix}*`)
  t.ok(keys.length >= 2, `counters are in Redis (${keys.length} keys)`)
  t.notOk(keys.some((key) => key.includes('@') || key.includes('shared')), 'no email in a key')
})

t.test('review finding 2, with REDIS_URL: concurrent guesses on two replicas cannot overshoot the shared limit', async (t) => {
  const { prefix } = redisKeys(t)
  const env = { MONGODB_URL: await freshDatabaseUrl(), REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_EMAIL_MAX: '4' }
  const replicas = [await build(t, { env }), await build(t, { env })]
  const user = await registerUser(replicas[0]!)
  const statuses = (await Promise.all(Array.from({ length: 30 }, (_, i) => attemptLogin(replicas[i % 2]!, user.email, `wrong guess ${i}`))))
    .map((response) => response.statusCode)
  t.equal(statuses.filter((status) => status === 401).length, 4, 'exactly the limit was compared')
  t.equal(statuses.filter((status) => status === 429).length, 26, 'the rest were refused')
  t.equal((await attemptLogin(replicas[1]!, user.email, user.password)).statusCode, 429, 'on either replica')
})

t.test('an unreachable Redis lets requests through instead of failing them', async (t) => {
  const app = await build(t, { env: { REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_IP_MAX: '1' } })
  const user = await registerUser(app)
  const responses = await Promise.all([1, 2, 3].map(() => attemptLogin(app, user.email, user.password)))
  t.same(responses.map((response) => response.statusCode), [200, 200, 200])
})

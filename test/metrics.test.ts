import t from 'tap'
import { build, registerUser } from './helper.js'

t.test('/metrics exposes per-route request metrics and auth outcome counters, without emails or tokens', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/signup', payload: { email: user.email, password: 'password123' } })
  await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'wrong password' } })
  await app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password: 'wrong password' } })
  const refreshed = await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: user.refreshToken } })
  await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: 'C'.repeat(43) } })
  await user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: user.password, newPassword: 'a brand new password' } })
  await user.inject({ method: 'DELETE', url: '/user/sessions/0123456789abcdef01234567' })
  await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: refreshed.json().refreshToken } })
  await app.inject({ method: 'HEAD', url: '/health/live' })
  await app.inject({ method: 'GET', url: '/no/such/route' })
  await app.inject({ method: 'GET', url: '/no/such/route' })

  const response = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = response.body
  const expected = [
    'auth_signup_total{outcome="success"} 1',
    'auth_signup_total{outcome="email_taken"} 1',
    'auth_login_total{outcome="success"} 1',
    'auth_login_total{outcome="invalid_credentials"} 2',
    'auth_refresh_total{outcome="rotated"} 1',
    'auth_refresh_total{outcome="invalid"} 1',
    'auth_password_change_total{outcome="success"} 1',
    'auth_logout_total{outcome="success"} 1',
    'http_request_duration_seconds_count{method="POST",route="/login",status_code="401"} 2',
    'http_request_duration_seconds_count{method="DELETE",route="/user/sessions/:id",status_code="404"} 1',
    'http_request_duration_seconds_count{method="GET",route="/user/profile",status_code="200"} 1',
    'http_request_duration_seconds_count{method="HEAD",route="/health/live",status_code="200"} 1',
    'http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"} 2'
  ]
  const lines = text.split('\n')
  for (const line of expected) t.ok(lines.includes(line), line)
  t.match(text, /^process_resident_memory_bytes \d+$/m)

  // The histogram's series: buckets cumulative over the bounds, +Inf equal to _count.
  const profileSeries = 'method="GET",route="/user/profile",status_code="200"'
  const buckets = [...text.matchAll(/^http_request_duration_seconds_bucket\{(.*)\} (\d+)$/gm)]
    .filter(([, labels]) => labels!.includes(profileSeries))
    .map(([, labels, value]) => ({ le: /le="([^"]+)"/.exec(labels!)![1], value: Number(value) }))
  t.equal(buckets.length, 13, 'twelve bounds and +Inf')
  t.same(buckets.map((bucket) => bucket.value), [...buckets.map((bucket) => bucket.value)].sort((a, b) => a - b), 'cumulative')
  t.same(buckets.at(-1), { le: '+Inf', value: 1 })
  t.same(buckets.at(-2), { le: '2.5', value: 1 }, 'a request faster than the last bound is counted in a finite bucket')
  t.ok(text.includes(`http_request_duration_seconds_count{${profileSeries}} 1`))
  const sum = Number(new RegExp(`^http_request_duration_seconds_sum\\{${profileSeries}\\} (\\S+)$`, 'm').exec(text)?.[1])
  t.ok(sum > 0 && sum < 5, `the sum is a duration in seconds (${sum})`)
  t.match(text, /# TYPE http_request_duration_seconds histogram/)
  t.notOk(text.includes(user.email), 'no email')
  t.notOk(text.includes(user.token.split('.')[2]!), 'no token')
  t.notOk(text.includes('0123456789abcdef01234567'), 'no ids: labels are route patterns')
})

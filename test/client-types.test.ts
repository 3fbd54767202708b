import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { paths } from '../client/api-types.js'
import { build, uniqueEmail } from './helper.js'

// What a client team does: take the request and response types from the
// generated file, and call the service over HTTP with them.
type SignupBody = paths['/signup']['post']['requestBody']['content']['application/json']
type SignupCreated = paths['/signup']['post']['responses'][201]['content']['application/json']
type LoginOk = paths['/login']['post']['responses'][200]['content']['application/json']
type ProfileOk = paths['/user/profile']['get']['responses'][200]['content']['application/json']
type SessionsOk = paths['/user/sessions']['get']['responses'][200]['content']['application/json']
type ApiError = paths['/login']['post']['responses'][401]['content']['application/json']

async function call<T> (url: string, init: RequestInit = {}): Promise<{ status: number, body: T }> {
  const response = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  return { status: response.status, body: await response.json() as T }
}

t.test('a client written against the generated types talks to the real service', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const credentials: SignupBody = { email: uniqueEmail(), password: 'typed client password' }
  const signup = await call<SignupCreated>(`${base}/signup`, { method: 'POST', body: JSON.stringify(credentials) })
  t.equal(signup.status, 201)
  t.equal(signup.body.user.email, credentials.email)

  const login = await call<LoginOk>(`${base}/login`, { method: 'POST', body: JSON.stringify(credentials) })
  t.equal(login.body.tokenType, 'Bearer')
  const authorization = `${login.body.tokenType} ${login.body.token}`

  const profile = await call<ProfileOk>(`${base}/user/profile`, { headers: { authorization } })
  t.equal(profile.body.user.id, signup.body.user.id)

  const sessions = await call<SessionsOk>(`${base}/user/sessions`, { headers: { authorization } })
  t.equal(sessions.body.sessions.filter((session) => session.current).length, 1)

  const refused = await call<ApiError>(`${base}/login`, { method: 'POST', body: JSON.stringify({ ...credentials, password: 'the wrong password' }) })
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'INVALID_CREDENTIALS')
})

import { readFile } from 'node:fs/promises'
import t from 'tap'
import { build } from './helper.js'

t.test('/docs/json is an OpenAPI 3 document of every route, generated from the schemas', async (t) => {
  const app = await build(t)
  const response = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(response.statusCode, 200)
  const document = response.json()
  t.match(document.openapi, /^3\./)

  const committed = JSON.parse(await readFile(new URL('../openapi.json', import.meta.url), 'utf8'))
  t.same(document, committed, 'the served document is the committed openapi.json (whose routes test/openapi.test.ts checks against docs/api-contract.md)')
  const statuses = (path: string, method: string) => Object.keys(document.paths[path][method].responses).sort()
  t.same(statuses('/login', 'post'), ['200', '400', '401', '403', '413', '415', '429', '500', '503'])
  t.match(document.paths['/login'].post.responses['403'].description, /ACCOUNT_DISABLED/)
  t.match(document.paths['/token/refresh'].post.responses['401'].description, /REFRESH_TOKEN_REUSED/)
  t.same(Object.keys(document.paths['/login'].post.responses['200'].content['application/json'].schema.properties).sort(),
    ['expiresIn', 'refreshExpiresIn', 'refreshToken', 'token', 'tokenType'])

  t.same(Object.keys(document.components.securitySchemes).sort(), ['bearerAuth', 'clientBasic', 'clientCredentials', 'queryToken'])
  t.match(document.components.securitySchemes.clientCredentials, { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/oauth/token' } } })
  t.match(document.components.securitySchemes.queryToken, { type: 'apiKey', in: 'query', name: 'secret_token' })
  t.match(document.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer' })
  t.same(document.paths['/user/profile'].get.security, [{ bearerAuth: [] }, { queryToken: [] }])
  for (const path of ['/revocations', '/revocations/stream']) t.same(document.paths[path].get.security, [{ clientCredentials: ['revocations:read'] }], `${path}: a service client's token with revocations:read`)
  t.same(Object.keys(document.paths['/revocations/stream'].get.responses['200'].content), ['text/event-stream'], 'the stream says what it streams')
  t.same(document.paths['/user/sessions'].get.security, [{ bearerAuth: [] }, { queryToken: [] }])
  for (const [path, method] of [['/user/password', 'put'], ['/user/email', 'put'], ['/user', 'delete'], ['/user/sessions', 'delete'], ['/user/sessions/{id}', 'delete'], ['/admin/users', 'get'], ['/admin/users/{id}', 'patch']] as const) {
    t.same(document.paths[path][method].security, [{ bearerAuth: [] }], `${method} ${path}: a write takes the header only`)
  }
  for (const [path, method] of [['/signup', 'post'], ['/login', 'post'], ['/token/refresh', 'post'], ['/logout', 'post'], ['/.well-known/jwks.json', 'get'], ['/metrics', 'get'], ['/password/forgot', 'post'], ['/password/reset', 'post'], ['/email/verification', 'post'], ['/email/verify', 'post']] as const) {
    t.notOk(document.paths[path][method].security, `${method} ${path} needs no token`)
  }

  t.same(Object.keys(document.paths['/signup'].post.requestBody.content).sort(), ['application/json', 'application/x-www-form-urlencoded'])
  const credentials = document.paths['/signup'].post.requestBody.content['application/json'].schema
  t.equal(credentials.additionalProperties, false)
  t.match(credentials.properties.password, { minLength: 8, 'x-max-bytes': 72 })
  t.match(credentials.properties.email, { format: 'email', maxLength: 254 })

  t.same(Object.keys(document.components.schemas.Error.properties).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(document.paths['/signup'].post.responses['409'].description, /EMAIL_TAKEN/)
  t.match(document.paths['/login'].post.responses['401'].description, /INVALID_CREDENTIALS/)
  t.match(document.paths['/user/profile'].get.responses['401'].description, /TOKEN_EXPIRED/)

  const unlabelled = Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, { description: string }> }>>)
    .flatMap(([path, methods]) => Object.entries(methods).flatMap(([method, operation]) => Object.entries(operation.responses)
      .filter(([, response]) => response.description === 'Default Response').map(([status]) => `${method} ${path} ${status}`)))
  t.same(unlabelled, [], 'every response says what it is (none is labelled "Default Response")')
  t.match(document.components.securitySchemes.bearerAuth.description, /`Authorization: Bearer <access token>`/, 'the header is code, so <access token> is not swallowed as HTML')
})

t.test('/docs serves the interactive documentation', async (t) => {
  const app = await build(t)
  const response = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /text\/html/)
  t.match(response.body, /swagger/i)
  const policy = response.headers['content-security-policy'] as string
  t.match(policy, /script-src/)
  t.notMatch(policy, /upgrade-insecure-requests/, 'assets load over plain http too, from any host (a LAN address, a VM)')
})

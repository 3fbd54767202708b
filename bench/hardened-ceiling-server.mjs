// The second ceiling: the compiled service itself, every plugin, hook, header
// and logger setting as configured, plus GET /bench/profile, which needs no
// token and answers as GET /user/profile does once a token's profile is
// cached: the same JSON, serialised once by the route's schema, sent as a
// string from a synchronous handler. The service's GET /user/profile against
// this ceiling is what authentication costs; this ceiling against the bare one
// is what the operational features (security headers, metrics, load shedding,
// request ids, the logger) cost, less the cheaper handler. Started by bench/ceilings.ts.
import { buildApp } from '../dist/app.js'
import { loadConfig } from '../dist/config.js'
import { ProfileResponseSchema } from '../dist/schemas/user.js'

const app = buildApp(loadConfig(process.env))
const user = { id: '6b095332b1d5d3a59475aae8', email: 'ann@example.com', emailVerified: false, createdAt: '2026-11-27T09:53:54.000Z' }

let json
app.get('/bench/profile', { schema: { response: { 200: ProfileResponseSchema } } }, function profile (_request, reply) {
  json ??= reply.serialize({ message: 'You made it to the secure route', user })
  reply.header('content-type', 'application/json; charset=utf-8').send(json)
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3998) })

// The ceiling: a bare Fastify route that returns the profile's JSON with the
// same response schema, and no authentication at all.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const user = { id: '6b095332b1d5d3a59475aae8', email: 'ann@example.com', createdAt: '2026-11-27T09:53:54.000Z' }

app.get('/user/profile', {
  schema: {
    response: {
      200: {
        type: 'object',
        properties: {
          message: { type: 'string' },
          user: { type: 'object', properties: { id: { type: 'string' }, email: { type: 'string' }, createdAt: { type: 'string' } } }
        }
      }
    }
  }
}, async () => ({ message: 'You made it to the secure route', user }))
app.get('/health/live', async () => ({ status: 'ok' }))

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3999) })
// For bench/startup.ts, which times spawn to this line.
console.log('listening')

import t from 'tap'
import fc from 'fast-check'
import { parse as fastQuerystringParse } from 'fast-querystring'
import { parseQueryString } from '../../plugins/querystring.js'
import { build, registerUser } from '../helper.js'

/** The pairs in order, and whether the object has no prototype properties to collide with. */
function shape (query: Record<string, unknown>) {
  return { pairs: JSON.stringify(Object.entries(query)), bare: !('toString' in query) && !('constructor' in query) }
}

t.test('parses every query exactly as fast-querystring (Fastify\'s default) does', (t) => {
  const piece = fc.oneof(
    fc.constantFrom('&', '=', '&&', '==', '=&', 'a', 'b', 'secret_token', '__proto__', 'constructor', 'toString', '%', '%41', '%zz', '+', 'é', ''),
    fc.string({ maxLength: 6 }),
    fc.string({ unit: 'binary', maxLength: 4 })
  )
  const queries = fc.array(piece, { maxLength: 12 }).map((pieces) => pieces.join(''))
  fc.assert(fc.property(queries, (query) => {
    const expected = shape(fastQuerystringParse(query))
    const actual = shape(parseQueryString(query))
    if (actual.pairs !== expected.pairs || actual.bare !== expected.bare) {
      throw new Error(`${JSON.stringify(query)}: ${actual.pairs} instead of ${expected.pairs}`)
    }
  }), { numRuns: 5000 })
  for (const query of ['', '&', '=', 'a', 'a=', '=a', 'a=1&a=2&a=3', 'a=1=2', 'a&b=1', '&&a=1&&', `secret_token=${'x'.repeat(600)}`]) {
    t.same(shape(parseQueryString(query)), shape(fastQuerystringParse(query)), JSON.stringify(query).slice(0, 40))
  }
  t.end()
})

t.test('a query of many pairs without "=" is parsed in linear time, to the same result', (t) => {
  // Searching for "=" again from every pair would scan the rest of the query
  // each time: quadratic in the ~16 KiB a URL can hold.
  const query = 'a&'.repeat(100_000) + 'last=1'
  const parsed = parseQueryString(query)
  t.same(Object.keys(parsed), ['a', 'last'])
  t.equal((parsed.a as string[]).length, 100_000)
  t.same(shape(parsed), shape(fastQuerystringParse(query)))
  t.end()
})

t.test('the service reads the token and the other query parameters through it', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  t.equal((await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}` })).statusCode, 200, 'plain token')
  t.equal((await app.inject({ method: 'GET', url: `/user/profile?x=1&secret_token=${encodeURIComponent(user.token)}&y` })).statusCode, 200, 'among other parameters')
  const twice = await app.inject({ method: 'GET', url: `/user/profile?secret_token=${user.token}&secret_token=${user.token}` })
  t.equal(twice.statusCode, 400, 'given twice, it is an array, which the schema refuses')
  const encoded = user.token.replace(/\./g, '%2E')
  t.equal((await app.inject({ method: 'GET', url: `/user/profile?secret_token=${encoded}` })).statusCode, 200, 'percent-encoded (the decoding path)')
})

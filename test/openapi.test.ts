import { readFile } from 'node:fs/promises'
import t from 'tap'
import { CLIENT_TYPES_FILE, OPENAPI_FILE, generateOpenApiDocument, renderClientTypes, renderOpenApiFile } from '../scripts/openapi.js'

const CONTRACT = new URL('../docs/api-contract.md', import.meta.url)

interface Operation { responses: Record<string, unknown>, security?: unknown[] }
type Document = { paths: Record<string, Record<string, Operation>> }

/** The routes of the contract's tables: method, OpenAPI path, the status codes named in the row, and whether it needs a token. */
function contractRoutes (markdown: string) {
  const routes = []
  for (const line of markdown.split('\n')) {
    const match = /^\| `(GET|POST|PUT|PATCH|DELETE) ([^`?]+)[^`]*` \|(.*)$/.exec(line)
    if (!match) continue
    const [, method, path, rest] = match as unknown as [string, string, string, string]
    const cells = rest.split('|').map((cell) => cell.trim())
    routes.push({
      method: method.toLowerCase(),
      path: path.replace(/:(\w+)/g, '{$1}'),
      statuses: [...new Set([...rest.matchAll(/(?<![\w.])([1-5]\d\d)(?![\w.])/g)].map((found) => found[1]!))],
      needsToken: cells[0]!.startsWith('access token'),
      clientAuth: cells[0]!.startsWith('client')
    })
  }
  return routes
}

t.test('the committed openapi.json is what the code generates (npm run openapi)', async (t) => {
  const generated = renderOpenApiFile(await generateOpenApiDocument())
  t.equal(await readFile(OPENAPI_FILE, 'utf8'), generated)
})

t.test('the committed client types are what openapi-typescript generates from it', async (t) => {
  const document = JSON.parse(await readFile(OPENAPI_FILE, 'utf8'))
  t.equal(await readFile(CLIENT_TYPES_FILE, 'utf8'), await renderClientTypes(document))
})

t.test('the OpenAPI document has every route of the contract, every status it names, and security on the protected ones', async (t) => {
  const document = JSON.parse(await readFile(OPENAPI_FILE, 'utf8')) as Document
  const contract = await readFile(CONTRACT, 'utf8')
  const routes = contractRoutes(contract)
  t.equal(routes.length, 35, 'every route of the contract\'s tables was parsed')
  // The revocation feed's table has no column for it: the paragraph under it names the scope.
  t.match(contract, /The revocation feed and stream are read with a client-credentials token holding the\nscope `revocations:read`/)
  for (const route of routes) {
    // /docs and /docs/json serve the document itself.
    if (route.path.startsWith('/docs')) continue
    const operation = document.paths[route.path]?.[route.method]
    if (!operation) {
      t.fail(`${route.method.toUpperCase()} ${route.path} is missing from the document`)
      continue
    }
    for (const status of route.statuses) {
      t.ok(operation.responses[status], `${route.method.toUpperCase()} ${route.path} documents ${status}`)
    }
    if (route.path.startsWith('/revocations')) t.same(operation.security, [{ clientCredentials: ['revocations:read'] }], `${route.method.toUpperCase()} ${route.path} needs a client token with revocations:read`)
    else if (route.clientAuth) t.ok(JSON.stringify(operation.security).includes('clientBasic'), `${route.method.toUpperCase()} ${route.path} declares client authentication`)
    else if (route.needsToken) t.ok(operation.security && operation.security.length > 0, `${route.method.toUpperCase()} ${route.path} declares its security`)
    else t.notOk(operation.security, `${route.method.toUpperCase()} ${route.path} needs no token`)
  }
  const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`))
  const inContract = new Set(routes.map((route) => `${route.method} ${route.path}`))
  t.same(documented.filter((operation) => !inContract.has(operation)), [], 'and nothing the contract does not have')
})

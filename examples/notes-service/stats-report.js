import { createClientCredentials } from '@auth-service/verify'

/**
 * Another service's side: a report job that reads the notes service's
 * statistics as the service client it is. The client (created by an admin
 * at POST /admin/clients with the scope notes:read and the audience
 * notes-service) gets a token once and reuses it until shortly before it
 * expires; each call is one line.
 * @param {{ authUrl: string | URL, notesUrl: string | URL, clientId: string, clientSecret: string }} options
 */
export function createStatsReport (options) {
  const auth = createClientCredentials({
    tokenUrl: new URL('/oauth/token', options.authUrl),
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    scope: 'notes:read'
  })
  return {
    async read () {
      const response = await auth.fetch(new URL('/internal/stats', options.notesUrl))
      if (!response.ok) throw new Error(`the notes service answered ${response.status}`)
      return /** @type {Promise<{ users: number, notes: number }>} */ (response.json())
    },
    token: auth.token
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const report = createStatsReport({
    authUrl: process.env.AUTH_URL ?? 'http://127.0.0.1:3000',
    notesUrl: process.env.NOTES_URL ?? 'http://127.0.0.1:4000',
    clientId: process.env.CLIENT_ID ?? '',
    clientSecret: process.env.CLIENT_SECRET ?? ''
  })
  console.log(await report.read())
}

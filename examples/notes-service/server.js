import { buildNotesApp } from './app.js'

const app = await buildNotesApp({
  authUrl: process.env.AUTH_URL ?? 'http://127.0.0.1:3000',
  issuer: process.env.JWT_ISSUER ?? 'auth-service',
  audience: process.env.JWT_AUDIENCE ?? 'auth-service-clients',
  // A service client with the scope revocations:read (compose declares it in the auth service's SERVICE_CLIENTS).
  clientId: process.env.AUTH_CLIENT_ID ?? 'notes-service',
  clientSecret: process.env.AUTH_CLIENT_SECRET ?? '',
  revocationsPollIntervalMs: Number(process.env.REVOCATIONS_POLL_INTERVAL_MS ?? 5000),
  logger: true
})

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

await app.listen({ host: process.env.HOST ?? '0.0.0.0', port: Number(process.env.PORT ?? 4000) })

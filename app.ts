import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync } from 'fastify'
import fastifyFormbody from '@fastify/formbody'
import fastifySseModule, { type SSEPluginOptions } from '@fastify/sse'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import { OneLinePerRequest, loggerOptions } from './plugins/logger.js'
import { schemaController } from './plugins/validation.js'
import errorHandler from './plugins/error-handler.js'
import docs from './plugins/docs.js'
import httpHardening from './plugins/http-hardening.js'
import metrics from './plugins/metrics.js'
import rateLimit from './plugins/rate-limit.js'
import mongodb from './plugins/mongodb.js'
import passwordHasher from './plugins/password-hasher.js'
import jwt from './plugins/jwt.js'
import usersRepository from './plugins/users-repository.js'
import sessionsRepository from './plugins/sessions-repository.js'
import outbox from './plugins/outbox.js'
import emailCodes from './plugins/email-codes.js'
import accountMessages from './plugins/account-messages.js'
import accountRemoval from './plugins/account-removal.js'
import roles from './plugins/roles.js'
import clientsRepository from './plugins/clients-repository.js'
import revocationState from './plugins/revocation-state.js'
import clientScopes from './plugins/client-scopes.js'
import declaredClients from './plugins/declared-clients.js'
import { ErrorSchema } from './schemas/common.js'
import healthRoutes from './routes/health.js'
import authRoutes from './routes/auth.js'
import userRoutes from './routes/user.js'
import passwordRoutes from './routes/password.js'
import emailRoutes from './routes/email.js'
import adminRoutes from './routes/admin.js'
import oauthRoutes from './routes/oauth.js'
import forwardAuthRoutes from './routes/forward-auth.js'
import jwksRoutes from './routes/jwks.js'
import metricsRoutes from './routes/metrics.js'
import revocationsRoutes from './routes/revocations.js'
import revocationsStreamRoutes from './routes/revocations-stream.js'

// The package's module.exports is the plugin (wrapped so its route option
// applies everywhere); its types describe only the named, unwrapped export.
const fastifySse = fastifySseModule as unknown as FastifyPluginAsync<SSEPluginOptions>

export interface BuildAppOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: DestinationStream
}

const REQUEST_ID = /^[\w.:-]{1,128}$/

/**
 * Request ids of this process: a random prefix, then a counter, so ids stay
 * unique across replicas and restarts, without building a UUID string on every
 * request for a log line that is seldom written.
 */
function requestIdGenerator (): () => string {
  const prefix = randomBytes(9).toString('base64url')
  let count = 0
  return () => `${prefix}-${(++count).toString(36)}`
}

/** A hop count becomes proxy-addr's "trust the first n hops" function (Fastify's types omit the number form). */
function trustProxyOption (trustProxy: Config['trustProxy']) {
  return typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy
}

/** Builds the service with every plugin and route registered explicitly. Never listens. */
export function buildApp (config: Config, options: BuildAppOptions = {}): FastifyInstance {
  const nextRequestId = requestIdGenerator()
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logStream),
    logController: new OneLinePerRequest(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: trustProxyOption(config.trustProxy),
    schemaController,
    // A caller's request id is kept (to follow a request across services) only if it is sane.
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : nextRequestId()
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addSchema(ErrorSchema)

  // Bodies are JSON or urlencoded forms; anything else is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain')

  app.register(errorHandler, { realm: config.jwt.issuer })
  app.register(metrics)
  app.register(httpHardening, { corsOrigins: config.corsOrigins, maxEventLoopDelayMs: config.maxEventLoopDelayMs })
  app.register(fastifyFormbody)
  app.register(docs)
  app.register(rateLimit, config.rateLimit)

  app.register(mongodb, config.mongodb)
  app.register(passwordHasher, { cost: config.bcryptCost })
  app.register(jwt, config.jwt)
  app.register(usersRepository)
  app.register(sessionsRepository, config.sessions)
  app.register(outbox, { ...config.email, purgeIntervalSeconds: config.sessions.purgeIntervalSeconds })
  app.register(emailCodes, { purgeIntervalSeconds: config.sessions.purgeIntervalSeconds })
  app.register(accountMessages, config.email)
  app.register(accountRemoval)
  app.register(roles, { adminEmails: config.adminEmails })
  app.register(clientsRepository)
  app.register(revocationState, { syncIntervalMs: config.revocationSyncIntervalMs, stalenessBoundMs: config.revocationStalenessBoundMs })
  app.register(clientScopes)
  app.register(declaredClients, { clients: config.clients.declared })

  // Route plugins stay encapsulated (their hooks stay inside), and each names
  // the plugins whose decorators it uses: a missing one fails at start-up.
  app.register(healthRoutes)
  app.register(metricsRoutes)
  app.register(authRoutes, { requireEmailVerification: config.email.requireVerification })
  app.register(userRoutes, { prefix: '/user' })
  app.register(passwordRoutes)
  app.register(emailRoutes)
  app.register(adminRoutes, { prefix: '/admin', clientSecretOverlapSeconds: config.clients.secretOverlapSeconds })
  app.register(oauthRoutes, { realm: config.jwt.issuer })
  app.register(forwardAuthRoutes)
  app.register(jwksRoutes)
  app.register(revocationsRoutes)
  app.register(fastifySse)
  app.register(revocationsStreamRoutes, config.revocationStreams)

  return app
}

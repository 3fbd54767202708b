import fp from 'fastify-plugin'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

/**
 * The OpenAPI 3 document, generated from the routes' TypeBox schemas, at
 * /docs/json, and the interactive UI at /docs. Must be registered before the
 * routes, or they are missing from the document.
 */
async function docsPlugin (fastify: FastifyInstance) {
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'auth-service',
        description: 'Email/password authentication: signup, login with JWT access tokens, protected routes. Every error body is `{ statusCode, code, error, message }`.',
        version: '0.1.0'
      },
      tags: [
        { name: 'accounts', description: 'Signup, login, token refresh and logout' },
        { name: 'user', description: 'Routes that need an access token' },
        { name: 'recovery', description: 'Email verification and password reset, by a code (or a link) sent to the account\'s address' },
        { name: 'admin', description: 'User administration; the access token of a user holding the role `admin`' },
        { name: 'oauth', description: 'OAuth 2.0 for service clients: client-credentials tokens' },
        { name: 'keys', description: 'For other services: the keys that verify access tokens, and the revocation feed' },
        { name: 'operations', description: 'Health probes' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The header `Authorization: Bearer <access token>`; it wins over `secret_token`.' },
          queryToken: { type: 'apiKey', in: 'query', name: 'secret_token', description: 'The access token as a query parameter; GET routes only, and only where enabled (ALLOW_QUERY_TOKEN).' },
          clientBasic: { type: 'http', scheme: 'basic', description: 'A service client\'s id and secret (each form-urlencoded), at POST /oauth/token; client_id and client_secret in the form do the same.' },
          clientCredentials: {
            type: 'oauth2',
            description: 'A service client\'s token from POST /oauth/token (grant_type=client_credentials), sent as `Authorization: Bearer`.',
            flows: { clientCredentials: { tokenUrl: '/oauth/token', scopes: {} } }
          }
        }
      }
    },
    refResolver: {
      // Shared schemas appear under their own $id (e.g. components/schemas/Error).
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  // staticCSP: the UI's own Content-Security-Policy, without its
  // upgrade-insecure-requests: over plain http from any host but localhost,
  // that made the browser fetch every asset over https, and the page was blank.
  await fastify.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '')
  })
}

export default fp(docsPlugin, { name: 'docs', fastify: '5.x' })

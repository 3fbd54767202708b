import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ForbiddenError } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The roles a user holds: their own, and `admin` when their verified address is in ADMIN_EMAILS. */
    rolesOf: (user: { email: string, emailVerified: boolean, roles: string[] }) => string[]
    /**
     * preHandler, after `authenticate`: 403 FORBIDDEN unless the access token
     * carries `role`. One line on a route: `preHandler: fastify.requireRole('admin')`.
     */
    requireRole: (role: string) => (request: FastifyRequest) => Promise<void>
  }
}

async function rolesPlugin (fastify: FastifyInstance, options: { adminEmails: string[] }) {
  const adminEmails = new Set(options.adminEmails)

  fastify.decorate('rolesOf', function rolesOf (user: { email: string, emailVerified: boolean, roles: string[] }) {
    // Only a verified address: anyone can sign up with an address they do not own.
    if (!user.emailVerified || !adminEmails.has(user.email) || user.roles.includes('admin')) return user.roles
    return [...user.roles, 'admin']
  })

  fastify.decorate('requireRole', function requireRole (role: string) {
    return async function hasRole (request: FastifyRequest) {
      if (!request.user?.roles?.includes(role)) throw new ForbiddenError()
    }
  })
}

export default fp(rolesPlugin, { name: 'roles', fastify: '5.x', dependencies: ['jwt'] })

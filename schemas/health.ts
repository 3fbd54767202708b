import { Type } from '@sinclair/typebox'

export const HealthOkSchema = Type.Object({ status: Type.Literal('ok') }, { description: 'Healthy.' })

export const HealthUnavailableSchema = Type.Object({
  status: Type.Literal('unavailable'),
  reason: Type.String({ description: 'Which dependency is not ready, e.g. `database`.' })
}, { description: 'Not ready: a dependency does not answer.' })

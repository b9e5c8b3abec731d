/**
 * The one call the hub makes (apps/hub/src/hub.ts, the composition root): the gateway for the
 * engine's router and the routes for the hub's HTTP app, sharing one state.
 */
import type { Hono } from 'hono';
import { DdiGateway } from './gateway.ts';
import type { DdiGatewayOptions } from './gateway.ts';
import { createDdiRoutes } from './routes.ts';
import type { DdiRoutesOptions } from './routes.ts';

export type CreateDdiGatewayOptions = DdiGatewayOptions & DdiRoutesOptions;

/**
 * @example
 * const ddi = createDdiGateway({ tenant: 'DEFAULT', gatewayToken, autoRegister: false, pollingSleep: '00:05:00',
 *   credentials: credentialsInStore(store), imagePath, clock, logger: log.child('ddi') });
 * app.route('/', ddi.routes);
 * await ddi.gateway.start(handler);
 */
export function createDdiGateway(options: CreateDdiGatewayOptions): { gateway: DdiGateway; routes: Hono } {
  const gateway = new DdiGateway(options);
  const routes = createDdiRoutes(gateway, {
    ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
    ...(options.publicUrl !== undefined && { publicUrl: options.publicUrl }),
    ...(options.onInternalError !== undefined && { onInternalError: options.onInternalError }),
  });
  return { gateway, routes };
}

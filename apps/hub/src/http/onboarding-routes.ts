/**
 * The HTTP edge of a household's setup: homes, enrollment codes, devices waiting for approval,
 * devices and their credentials, the makers' repositories, hawkBit registration — for the owner
 * under /api (behind the owner token or the dashboard's session) — and the two routes an enrolling
 * agent uses under /enroll/v1 (its code, then its own secret, are its credentials). Parse, call,
 * answer; every decision is the SetupService's.
 */
import type { Context, Hono } from 'hono';
import { FirmwardError } from '@firmward/core';
import { enrollmentClaimSchema } from '@firmward/protocol';
import type { EnrollmentDesk } from '../onboarding/setup-service.ts';
import type { SetupService } from '../onboarding/types.ts';
import {
  ApproveSchema, DdiSettingsPatchSchema, DevicePatchSchema, NewEnrollmentSchema, NewHomeSchema, NewRepositorySchema, PendingQuerySchema,
  HomeQuerySchema, RegisterDeviceSchema, RenameSchema,
} from './onboarding-schemas.ts';
import { remoteAddress } from './remote-address.ts';
import type { RequestReaders } from './readers.ts';

export interface OnboardingRoutesOptions {
  setup: SetupService & EnrollmentDesk;
  /** The hub's address devices use, when it has a fixed one (http.publicUrl); else the address the request came to. */
  publicUrl: string;
  actor: string;
  read: RequestReaders;
}

function hubUrlOf(c: Context, publicUrl: string): string {
  return publicUrl !== '' ? publicUrl.replace(/\/+$/, '') : new URL(c.req.url).origin;
}

export function mountOnboardingRoutes(app: Hono, o: OnboardingRoutesOptions): void {
  const { setup, actor, read } = o;

  // --- homes ---
  app.post('/api/v1/homes', async (c) => c.json(await setup.createHome(await read.body(c, NewHomeSchema), actor), 201));
  app.patch('/api/v1/homes/:id', async (c) => {
    const homeId = read.id(c, 'id');
    return c.json(await setup.renameHome(homeId, (await read.body(c, RenameSchema)).name, actor));
  });
  app.delete('/api/v1/homes/:id', async (c) => c.json(await setup.deleteHome(read.id(c, 'id'), actor)));

  // --- enrollment codes (shown once; the hub keeps digests) ---
  app.post('/api/v1/homes/:id/enrollments', async (c) => {
    const homeId = read.id(c, 'id');
    const body = await read.body(c, NewEnrollmentSchema);
    return c.json(await setup.createEnrollment(homeId, { ...body, hubUrl: hubUrlOf(c, o.publicUrl) }, actor), 201);
  });
  app.get('/api/v1/enrollments', async (c) => c.json(await setup.listEnrollments(read.query(c, HomeQuerySchema))));
  app.delete('/api/v1/enrollments/:id', async (c) => {
    await setup.revokeEnrollment(read.id(c, 'id'), actor);
    return c.body(null, 204);
  });

  // --- devices waiting for approval ---
  app.get('/api/v1/pending-devices', async (c) => c.json(await setup.listPendingDevices(read.query(c, PendingQuerySchema))));
  app.post('/api/v1/pending-devices/:id/approve', async (c) => {
    const pendingId = read.id(c, 'id');
    return c.json(await setup.approve(pendingId, await read.body(c, ApproveSchema), actor));
  });
  app.post('/api/v1/pending-devices/:id/reject', async (c) => {
    const pendingId = read.id(c, 'id');
    await read.empty(c);
    return c.json(await setup.reject(pendingId, actor));
  });

  // --- devices and their credentials ---
  app.post('/api/v1/homes/:id/devices', async (c) => {
    const homeId = read.id(c, 'id');
    return c.json(await setup.registerDevice(homeId, await read.body(c, RegisterDeviceSchema), actor, hubUrlOf(c, o.publicUrl)), 201);
  });
  app.patch('/api/v1/devices/:id', async (c) => {
    const deviceId = read.id(c, 'id');
    return c.json(await setup.changeDevice(deviceId, await read.body(c, DevicePatchSchema), actor));
  });
  app.delete('/api/v1/devices/:id', async (c) => c.json(await setup.removeDevice(read.id(c, 'id'), actor)));
  app.post('/api/v1/devices/:id/credentials', async (c) => {
    const deviceId = read.id(c, 'id');
    await read.empty(c);
    return c.json(await setup.rotateCredential(deviceId, actor, hubUrlOf(c, o.publicUrl)), 201);
  });
  app.delete('/api/v1/devices/:id/credentials', async (c) => c.json(await setup.revokeCredential(read.id(c, 'id'), actor)));

  // --- the makers' signed repositories ---
  app.get('/api/v1/repositories', async (c) => c.json(await setup.listRepositories()));
  app.post('/api/v1/repositories', async (c) => {
    const body = await read.body(c, NewRepositorySchema);
    const root = typeof body.root === 'string' ? body.root : JSON.stringify(body.root);
    return c.json(await setup.addRepository({ name: body.name, url: body.url, root }, actor), 201);
  });
  app.delete('/api/v1/repositories/:name', async (c) => {
    await setup.removeRepository(read.id(c, 'name'), actor);
    return c.body(null, 204);
  });
  app.post('/api/v1/repositories/:name/refresh', async (c) => {
    const name = read.id(c, 'name');
    await read.empty(c);
    return c.json(await setup.refreshRepository(name));
  });

  // --- who may register as a hawkBit device ---
  app.get('/api/v1/ddi', async (c) => c.json(await setup.ddiSettings()));
  app.patch('/api/v1/ddi', async (c) => c.json(await setup.changeDdiSettings(await read.body(c, DdiSettingsPatchSchema), actor)));

  // --- the enrolling device (docs/protocol.md, "Enrollment") ---
  app.post('/enroll/v1/claims', async (c) => {
    const claim = read.parse(enrollmentClaimSchema, await read.json(c), 'enrollment request');
    return c.json(await setup.claim(claim, remoteAddress(c)), 202);
  });
  app.get('/enroll/v1/claims/:id', async (c) => {
    const claimId = read.id(c, 'id');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('Authorization') ?? '');
    if (!m) throw new FirmwardError('unauthorized', 'Send the secret the hub gave with the claim: "Authorization: Bearer <secret>".');
    c.header('Cache-Control', 'no-store');
    return c.json(await setup.status(claimId, m[1]!, remoteAddress(c)));
  });
}

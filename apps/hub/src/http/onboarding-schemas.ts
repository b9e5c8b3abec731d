/**
 * Schemas for setting a household up over the API (STYLE principle 9): strict objects, bounded
 * strings, every field named in a refusal.
 */
import { z } from 'zod';
import { HomeSettingsPatchSchema } from './schemas.ts';

const text = (max: number) => z.string().min(1, { error: 'must not be empty' }).max(max, { error: `must be at most ${max} characters` });
const label = text(64);

export const NewHomeSchema = HomeSettingsPatchSchema.extend({ name: text(80) });

export const RenameSchema = z.strictObject({ name: text(80) });

export const NewEnrollmentSchema = z.strictObject({
  expiresInMinutes: z.number().int({ error: 'must be a whole number of minutes' }).min(1).max(7 * 24 * 60, { error: 'must be at most a week (10080 minutes)' }).exactOptional(),
});

export const ApproveSchema = z.strictObject({ name: text(80).exactOptional(), homeId: text(200).exactOptional() });

export const RegisterDeviceSchema = z.strictObject({
  protocol: z.enum(['hawkbit', 'agent'], { error: 'must be "hawkbit" or "agent"' }),
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,120}$/, { error: 'must be 1 to 120 letters, digits or . _ : -' }),
  name: text(80),
  vendor: label,
  model: label,
  hardwareRevision: label,
  firmwareVersion: label,
});

export const DevicePatchSchema = z.strictObject({
  name: text(80).exactOptional(),
  homeId: text(200).exactOptional(),
  ignored: z.boolean().exactOptional(),
}).refine((p) => Object.keys(p).length > 0, { error: 'must change something: name, homeId or ignored' });

export const NewRepositorySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'must be 1 to 64 letters, digits, ".", "_" or "-"' }),
  url: z.string().max(2048).regex(/^(https?|file):\/\/\S+$/, { error: 'must start with https://, http:// or file://' }),
  /** The root.json's text, or the parsed object (pasted JSON). */
  root: z.union([z.string().min(2).max(512 * 1024), z.record(z.string(), z.unknown())], { error: 'must be the maker\'s root.json' }),
});

export const DdiSettingsPatchSchema = z.strictObject({
  autoRegister: z.boolean().exactOptional(),
  allowedControllerIds: z.array(z.string().max(120)).max(10_000).nullable().exactOptional(),
  homeId: z.string().max(200).exactOptional(),
});

export const PendingQuerySchema = z.strictObject({
  homeId: text(200).exactOptional(),
  all: z.enum(['true', 'false']).transform((v) => v === 'true').exactOptional(),
});

export const HomeQuerySchema = z.strictObject({ homeId: text(200).exactOptional() });

/** A new home for a bridge's devices, made in the same step as turning the bridge on. */
export const BridgeNewHomeSchema = z.strictObject({ name: text(80), timeZone: z.string().max(100).exactOptional() });

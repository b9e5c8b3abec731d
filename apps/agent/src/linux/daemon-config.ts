/**
 * The `firmward-agent` daemon's configuration file: one JSON file, checked once at start with
 * every problem reported together (key and reason), units in the key names (STYLE principle 11).
 * The reference is in docs/agent.md.
 */
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import { DEFAULT_AGENT_CONFIG } from '../config.ts';
import { BROKER_URL_PATTERN } from '../enrollment/credentials.ts';
import { enrollTarget } from '../enrollment/enroll-target.ts';
import type { EnrollTarget } from '../enrollment/enroll-target.ts';

const argv = z.array(z.string().min(1)).min(1);
const source = z.union([z.strictObject({ file: z.string().min(1) }), z.strictObject({ command: argv })]).nullable().default(null);
const positiveInt = z.number().int().positive();

/**
 * `hub.enroll`: how a device joins its home by itself at first start, with the hub's address and
 * a code (`homeId` optional) or the payload of the hub's QR code; checked and made canonical here.
 */
const enrollSetting = z.strictObject({
  hubUrl: z.string().optional(),
  code: z.string().optional(),
  homeId: z.string().optional(),
  payload: z.string().optional(),
  name: z.string().optional(),
}).transform((input, ctx): EnrollTarget => {
  const result = enrollTarget(input);
  if ('target' in result) return result.target;
  for (const p of result.problems) ctx.addIssue({ code: 'custom', message: p.message, path: [p.field] });
  return z.NEVER;
});

export const daemonConfigSchema = z.strictObject({
  device: z.strictObject({
    id: z.string().min(1),
    vendor: z.string().min(1),
    model: z.string().min(1),
    hardwareRevision: z.string().min(1),
  }),
  hub: z.strictObject({
    /**
     * e.g. mqtts://hub.local:8883. Absent: the address enrollment wrote into the credentials file;
     * present, it wins (the operator's override).
     */
    url: z.string().regex(BROKER_URL_PATTERN, 'must start with mqtt://, mqtts://, ws:// or wss://').optional(),
    /**
     * The device's secret (kept out of the config so the config can be shared): one line, or the
     * credentials file enrollment writes (docs/agent.md, "Joining a home").
     */
    passwordFile: z.string().min(1),
    /** Enroll at first start when the credentials file holds nothing usable yet. */
    enroll: enrollSetting.optional(),
    reconnectDelayMs: positiveInt.default(5_000),
  }),
  slots: z.strictObject({
    a: z.string().min(1),
    b: z.string().min(1),
    sizeBytes: positiveInt,
  }).refine((s) => s.a !== s.b, { message: 'slots a and b must be different devices or files' }),
  bootloader: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('custom'), command: argv, timeoutMs: positiveInt.default(10_000) }),
    z.strictObject({
      kind: z.literal('uboot'),
      printenv: argv.default(['fw_printenv']),
      setenv: argv.default(['fw_setenv']),
      trialBoots: z.number().int().min(1).max(10).default(3),
      timeoutMs: positiveInt.default(10_000),
    }),
  ]),
  journalPath: z.string().min(1).default('/var/lib/firmward/journal.json'),
  /**
   * The makers' roots this device trusts, by repository name, shipped with the device: every offer
   * is checked against the maker's signed target before a byte is downloaded (docs/agent.md).
   */
  trust: z.strictObject({
    roots: z.record(z.string().min(1).max(64), z.string().min(1)).refine((r) => Object.keys(r).length > 0, { message: 'name at least one trusted root' }),
    dir: z.string().min(1).default('/var/lib/firmward/trust'),
  }),
  version: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('header') }),
    z.strictObject({ kind: z.literal('command'), command: argv }),
  ]).default({ kind: 'header' }),
  healthCheck: z.strictObject({ command: argv, timeoutMs: positiveInt.default(DEFAULT_AGENT_CONFIG.healthCheckTimeoutMs) }).nullable().default(null),
  conditions: z.strictObject({
    batteryPercent: source,
    charging: source,
    onMains: source,
    signalDbm: source,
    busy: source,
    /** "0" or "false" mean the supply is unstable now (e.g. an under-voltage flag); absent = stable. */
    powerStable: source,
    timeoutMs: positiveInt.default(5_000),
  }).default({ batteryPercent: null, charging: null, onMains: null, signalDbm: null, busy: null, powerStable: null, timeoutMs: 5_000 }),
  rebootCommand: argv.default(['systemctl', 'reboot']),
  /**
   * A new version on trial that cannot reach the hub within this long is rejected and the device
   * restarts into the known-good one (issue: "the device must reach the hub within a deadline").
   */
  trialConnectDeadlineMs: positiveInt.default(300_000),
  agent: z.strictObject({
    downloadChunkBytes: positiveInt.optional(),
    stateReportIntervalMs: positiveInt.optional(),
    minBatteryPercent: z.number().min(0).max(100).optional(),
    minSignalDbm: z.number().min(-130).max(0).optional(),
    downloadRetryBudgetMs: positiveInt.optional(),
    downloadRetryDelayMs: positiveInt.optional(),
    downloadStallTimeoutMs: positiveInt.optional(),
  }).default({}),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type DaemonConfig = z.infer<typeof daemonConfigSchema>;

/** Parses the file's text; throws `config_invalid` naming every problem at once. */
export function parseDaemonConfig(text: string, path: string): DaemonConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new FirmwardError('config_invalid', `The agent's settings file ${path} is not valid JSON.`, { cause });
  }
  const parsed = daemonConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new FirmwardError('config_invalid', `The agent's settings file ${path} has ${problems.length} problem(s): ${problems.join('; ')}.`, {
    detail: { problems },
  });
}

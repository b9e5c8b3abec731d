/**
 * The hub's one configuration schema (STYLE principle 11): defaults < JSON file < FIRMWARD_*
 * environment < command-line flags, validated once at start and injected everywhere else. Every
 * problem is reported together, each with the key and where its value came from, so a person
 * fixes the whole file in one go instead of restarting once per mistake.
 *
 * `loadConfig` is pure apart from the injected `readFile`: no process.env, no cwd, no clock.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsOptionsConfig } from 'node:util';
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import { DEFAULT_SHARED_GROUP, sharedGroupRefusal } from '@firmward/mqtt';
import { bridgesSchema } from './bridges.ts';
import { canonicalHost } from './http/host-allow-list.ts';
import type { BridgesConfig } from './bridges.ts';
import { imagesSchema } from './image-distribution.ts';
import type { ImagesConfig } from './image-distribution.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface HubConfig {
  dataDir: string;
  /**
   * `publicUrl`: the address devices are given for images and signed metadata. Empty: this hub's
   * own address. Several instances must share one (a load balancer in front of them): an offer made
   * by one instance is downloaded from whichever is alive.
   *
   * `allowedHosts`: host names the hub answers to besides localhost, this machine's name, the host
   * of `publicUrl` and the listen address; any other name is refused (DNS rebinding,
   * http/host-allow-list.ts). An IP address always passes; `"*"` lets any name in.
   */
  http: { host: string; port: number; maxBodyBytes: number; publicUrl: string; allowedHosts: string[] };
  /**
   * `url` empty: the hub runs its embedded broker on host:port (and makes up its own login at every
   * start). Otherwise it connects to that broker as `username` with `password` (an external
   * Mosquitto or EMQX with per-device credentials and ACLs, see docs/protocol.md).
   *
   * `sharedSubscriptions`: the hub joins the shared subscription group `sharedSubscriptionGroup`
   * on the broker, so the hub instances in it split the device messages, each handled by one of
   * them (adapters/mqtt/src/hub-subscriptions.ts). When not set, on exactly when several instances
   * are possible: an external broker and PostgreSQL. Off with the embedded broker, which has no
   * shared subscriptions and serves one hub; asking for it there is refused.
   */
  mqtt: {
    host: string; port: number; url: string; username: string; password: string; publicUrl: string; mosquitto: MosquittoFilesConfig;
    sharedSubscriptions: boolean; sharedSubscriptionGroup: string;
  };
  /** How often each maker's repository is read again (a person can also refresh one now). */
  releases: { refreshSeconds: number };
  /**
   * `sqlite` (default): one file at `path`, for one hub. `postgres`: the database at `url`, which any
   * number of hub instances may share (DESIGN, scale-out); `path` is then unused.
   */
  store: { kind: StoreKind; path: string; url: string };
  /**
   * The makers' signed release repositories the hub trusts, each with the root it starts from
   * (a file the maker hands out). The only way a release gets in (DESIGN invariant 4).
   */
  repositories: RepositoryConfig[];
  demo: boolean;
  /** Demo clock factor: simulated seconds per real second. */
  demoSpeed: number;
  /** null: use (or create) the token stored in the data folder, see owner-token.ts. */
  ownerToken: string | null;
  engine: {
    tickMs: number; silenceTimeoutSeconds: number; offerResendSeconds: number;
    /** A device that could not get its update because the hub or the repository was out of reach is offered it again after this long. */
    unreachableRetrySeconds: number;
  };
  /** hawkBit's device API for devices whose own client speaks it (SWUpdate); see adapters/hawkbit. */
  ddi: DdiConfig;
  /** Where devices download images: the hub itself (fs), or signed URLs of an S3-compatible store (image-distribution.ts). */
  images: ImagesConfig;
  /** Zigbee2MQTT, Tasmota, Shelly and Home Assistant over their own MQTT (bridges.ts); all off by default. */
  bridges: BridgesConfig;
  logLevel: LogLevel;
  /** The file the settings were read from, if any (for the start-up log). */
  configFile: string | null;
}

/**
 * An external Mosquitto whose password and ACL files this hub writes: every device credential the
 * hub issues, rotates or revokes is in force at once (the hub rewrites both files atomically and
 * makes Mosquitto reload them, which also disconnects a device whose credential is gone). Empty
 * `passwordFile`: the hub leaves the broker's files alone.
 */
export interface MosquittoFilesConfig {
  passwordFile: string;
  aclFile: string;
  /** Mosquitto's pid_file: the hub sends it SIGHUP to reload. */
  pidFile: string;
  /** Or a command that makes Mosquitto reload (e.g. ["systemctl", "reload", "mosquitto"]); used when set. */
  reloadCommand: string[];
}

export interface RepositoryConfig {
  /** Our name for it, e.g. the maker's ("acme"); devices trust roots by this name. */
  name: string;
  /** Where the maker publishes it: https://…, or file:///… for a folder on this machine. */
  url: string;
  /** The maker's root.json the hub trusts first; later roots only through rotations it signs. */
  root: string;
}

export interface DdiConfig {
  enabled: boolean;
  /** The DDI tenant devices name (SWUpdate's -t). */
  tenant: string;
  /** The tenant-wide GatewayToken; null: only devices with their own TargetToken get in. */
  gatewayToken: string | null;
  /** Whether unknown controller ids may register themselves (with the GatewayToken): false, the listed ids, or any ({}). */
  autoRegister: false | { allowedControllerIds?: string[] };
  /**
   * The home a hawkBit device that registers itself (GatewayToken, autoRegister) is proposed for;
   * it waits for a person's approval either way. '': the person picks the home when approving.
   * Devices registered by a person belong to the home they were registered in.
   */
  homeId: string;
  /** hawkBit's HH:mm:ss polling interval. */
  pollingSleep: string;
}

/** One bad setting: which key, where the value came from, and why it is wrong. */
export interface ConfigProblem {
  key: string;
  source: string;
  message: string;
}

export interface LoadConfigInput {
  /** Command-line arguments after the script name (process.argv.slice(2)). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file as UTF-8 text; throws when it cannot. */
  readFile: (path: string) => string;
}

/** `list`: comma-separated in a variable or a flag (`hub.lan,hub.example`), a JSON list in the file. */
type Kind = 'string' | 'number' | 'boolean' | 'list';
interface FieldSource {
  key: string;
  kind: Kind;
  env: string;
  /** No flag for secrets: a command line is visible to every user of the machine (`ps`). */
  flag: string | null;
  /** Its value is never repeated in a problem report (logs and terminals are shared). */
  secret?: true;
}

/** Where each leaf may come from besides the file. */
const FIELDS: readonly FieldSource[] = [
  { key: 'dataDir', kind: 'string', env: 'FIRMWARD_DATA_DIR', flag: 'data-dir' },
  { key: 'http.host', kind: 'string', env: 'FIRMWARD_HOST', flag: 'host' },
  { key: 'http.port', kind: 'number', env: 'FIRMWARD_PORT', flag: 'port' },
  { key: 'http.maxBodyBytes', kind: 'number', env: 'FIRMWARD_MAX_BODY_BYTES', flag: 'max-body-bytes' },
  { key: 'http.publicUrl', kind: 'string', env: 'FIRMWARD_PUBLIC_URL', flag: 'public-url' },
  { key: 'http.allowedHosts', kind: 'list', env: 'FIRMWARD_ALLOWED_HOSTS', flag: 'allowed-hosts' },
  { key: 'mqtt.host', kind: 'string', env: 'FIRMWARD_MQTT_HOST', flag: 'mqtt-host' },
  { key: 'mqtt.port', kind: 'number', env: 'FIRMWARD_MQTT_PORT', flag: 'mqtt-port' },
  { key: 'mqtt.url', kind: 'string', env: 'FIRMWARD_MQTT_URL', flag: 'mqtt-url' },
  { key: 'mqtt.username', kind: 'string', env: 'FIRMWARD_MQTT_USERNAME', flag: 'mqtt-username' },
  { key: 'mqtt.password', kind: 'string', env: 'FIRMWARD_MQTT_PASSWORD', flag: null, secret: true },
  { key: 'mqtt.publicUrl', kind: 'string', env: 'FIRMWARD_MQTT_PUBLIC_URL', flag: 'mqtt-public-url' },
  { key: 'mqtt.sharedSubscriptions', kind: 'boolean', env: 'FIRMWARD_MQTT_SHARED_SUBSCRIPTIONS', flag: 'mqtt-shared-subscriptions' },
  { key: 'mqtt.sharedSubscriptionGroup', kind: 'string', env: 'FIRMWARD_MQTT_SHARED_GROUP', flag: 'mqtt-shared-group' },
  { key: 'releases.refreshSeconds', kind: 'number', env: 'FIRMWARD_RELEASES_REFRESH_SECONDS', flag: 'releases-refresh-seconds' },
  { key: 'store.kind', kind: 'string', env: 'FIRMWARD_STORE_KIND', flag: 'store-kind' },
  { key: 'store.path', kind: 'string', env: 'FIRMWARD_STORE_PATH', flag: 'store-path' },
  // A PostgreSQL URL usually carries the hub's database password, so it is treated as a secret.
  { key: 'store.url', kind: 'string', env: 'FIRMWARD_STORE_URL', flag: null, secret: true },
  { key: 'demo', kind: 'boolean', env: 'FIRMWARD_DEMO', flag: 'demo' },
  { key: 'demoSpeed', kind: 'number', env: 'FIRMWARD_DEMO_SPEED', flag: 'demo-speed' },
  { key: 'ownerToken', kind: 'string', env: 'FIRMWARD_OWNER_TOKEN', flag: null, secret: true },
  { key: 'engine.tickMs', kind: 'number', env: 'FIRMWARD_TICK_MS', flag: 'tick-ms' },
  { key: 'engine.silenceTimeoutSeconds', kind: 'number', env: 'FIRMWARD_SILENCE_TIMEOUT_SECONDS', flag: 'silence-timeout-seconds' },
  { key: 'engine.offerResendSeconds', kind: 'number', env: 'FIRMWARD_OFFER_RESEND_SECONDS', flag: 'offer-resend-seconds' },
  { key: 'engine.unreachableRetrySeconds', kind: 'number', env: 'FIRMWARD_UNREACHABLE_RETRY_SECONDS', flag: 'unreachable-retry-seconds' },
  { key: 'ddi.enabled', kind: 'boolean', env: 'FIRMWARD_DDI_ENABLED', flag: 'ddi' },
  { key: 'ddi.gatewayToken', kind: 'string', env: 'FIRMWARD_DDI_GATEWAY_TOKEN', flag: null, secret: true },
  // Bridges are set in the config file; their broker passwords may come from the environment instead.
  { key: 'bridges.zigbee2mqtt.password', kind: 'string', env: 'FIRMWARD_ZIGBEE2MQTT_PASSWORD', flag: null, secret: true },
  { key: 'bridges.tasmota.password', kind: 'string', env: 'FIRMWARD_TASMOTA_PASSWORD', flag: null, secret: true },
  { key: 'bridges.shelly.password', kind: 'string', env: 'FIRMWARD_SHELLY_PASSWORD', flag: null, secret: true },
  { key: 'bridges.homeAssistant.password', kind: 'string', env: 'FIRMWARD_HOME_ASSISTANT_PASSWORD', flag: null, secret: true },
  { key: 'images.secretAccessKey', kind: 'string', env: 'FIRMWARD_IMAGES_SECRET', flag: null, secret: true },
  { key: 'logLevel', kind: 'string', env: 'FIRMWARD_LOG_LEVEL', flag: 'log-level' },
];

/**
 * The hub's command line, for `--help`: every flag beside the setting it sets and its variable
 * (read from the same table the loader uses, so it cannot drift).
 */
export function configHelp(): string {
  const value = (kind: Kind) => (kind === 'boolean' ? '' : kind === 'list' ? ' <a,b,…>' : ' <value>');
  const rows = FIELDS.map((f) => [f.flag === null ? '' : `--${f.flag}${value(f.kind)}`, f.key, f.env]);
  const width = Math.max(...rows.map((r) => r[0]!.length), '--config <file>'.length);
  return [
    'Usage: firmward-hub [--config <file>] [options]',
    '',
    'Runs the hub: SQLite and an embedded MQTT broker by default, the dashboard at its address.',
    'Settings come from defaults < the JSON file < FIRMWARD_* variables < these flags (README, "Configuration").',
    '',
    `  ${'--config <file>'.padEnd(width)}  the JSON settings file (FIRMWARD_CONFIG)`,
    ...rows.map(([flag, key, env]) => `  ${flag!.padEnd(width)}  ${key} (${env}${flag === '' ? '; no flag: a command line is visible to everyone' : ''})`),
    '',
  ].join('\n');
}

const CONFIG_ENV = 'FIRMWARD_CONFIG';
const CONFIG_FLAG = 'config';

// --- schema -------------------------------------------------------------------------------

const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must not be empty` });
const wholeNumber = (min: number, max: number, what = `a whole number from ${min} to ${max}`) =>
  z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` })
    .min(min, { error: `must be ${what}` }).max(max, { error: `must be ${what}` });
const port = wholeNumber(0, 65535, 'a whole number from 0 (any free port) to 65535');
const flag = z.boolean({ error: 'must be true or false' });
/** The owner token travels as a Bearer token, so it must use the token68 characters. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/-]+=*$/;
const BROKER_URL_PATTERN = /^(mqtts?|wss?):\/\/[^\s]+$/;
const POSTGRES_URL_PATTERN = /^postgres(ql)?:\/\/[^\s]+$/;

const ConfigSchema = z.strictObject({
  dataDir: text('a folder path').default('./data'),
  http: z.strictObject({
    host: text('a host name or address').default('127.0.0.1'),
    port: port.default(8080),
    maxBodyBytes: wholeNumber(1, 16 * 1024 * 1024).default(65536),
    publicUrl: z.string({ error: 'must be an address' })
      .refine((u) => u === '' || /^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(u), { error: 'must be an address such as https://firmward.example, or empty for this hub\'s own' })
      .default(''),
    allowedHosts: z.array(z.string({ error: 'must be a host name' })
      .refine((h) => canonicalHost(h) !== null, { error: 'must be a host name such as hub.example (no scheme, no port), or "*" for any name' }),
    { error: 'must be a list of host names, e.g. ["hub.lan", "firmward.example"]' }).default([]),
  }, { error: 'must be an object' }).prefault({}),
  mqtt: z.strictObject({
    host: text('a host name or address').default('127.0.0.1'),
    port: port.default(1883),
    url: z.string({ error: 'must be a broker address such as mqtt://broker:1883, or empty' })
      .refine((u) => u === '' || BROKER_URL_PATTERN.test(u), { error: 'must be a broker address such as mqtt://broker:1883, or empty for the embedded broker' })
      .default(''),
    /** The hub's login on an external broker; unused with the embedded one. */
    username: text('a user name').default('hub'),
    password: z.string({ error: 'must be text' }).default(''),
    /** The broker address enrolling devices are given; empty: mqtt.url, or the embedded broker on the hub's own host. */
    publicUrl: z.string({ error: 'must be a broker address' })
      .refine((u) => u === '' || BROKER_URL_PATTERN.test(u), { error: 'must be a broker address such as mqtts://hub.example:8883, or empty' })
      .default(''),
    /** Unset: on with an external broker and PostgreSQL (resolved in loadConfig, which knows the store). */
    sharedSubscriptions: flag.optional(),
    sharedSubscriptionGroup: z.string({ error: 'must be a group name' })
      .refine((g) => sharedGroupRefusal(g) === null, { error: `must be 1 to 64 letters, digits, ".", "_" or "-" (the instances of one deployment share one name, "${DEFAULT_SHARED_GROUP}" by default)` })
      .default(DEFAULT_SHARED_GROUP),
    mosquitto: z.strictObject({
      passwordFile: z.string({ error: 'must be a file path' }).default(''),
      aclFile: z.string({ error: 'must be a file path' }).default(''),
      pidFile: z.string({ error: 'must be a file path' }).default(''),
      reloadCommand: z.array(text('a word of the command'), { error: 'must be a command as a list, e.g. ["systemctl", "reload", "mosquitto"]' }).default([]),
    }, { error: 'must be an object' }).prefault({})
      .refine((m) => m.passwordFile === '' || m.aclFile !== '', { error: 'needs "aclFile" beside "passwordFile": the hub writes both' })
      .refine((m) => m.passwordFile === '' || m.pidFile !== '' || m.reloadCommand.length > 0, { error: 'needs "pidFile" or "reloadCommand": how the hub makes Mosquitto reload its files' }),
  }, { error: 'must be an object' }).prefault({})
    .refine((m) => m.mosquitto.passwordFile === '' || m.url !== '', { error: 'mosquitto files are for an external broker: set "url" too' })
    .refine((m) => m.sharedSubscriptions !== true || m.url !== '', {
      path: ['sharedSubscriptions'],
      error: 'needs an external broker (mqtt.url): the embedded broker has no shared subscriptions and serves this one hub only',
    }),
  releases: z.strictObject({
    refreshSeconds: wholeNumber(10, 7 * 24 * 3600).default(300),
  }, { error: 'must be an object' }).prefault({}),
  store: z.strictObject({
    kind: z.enum(STORE_KINDS, { error: 'must be "sqlite" or "postgres"' }).default('sqlite'),
    path: text('a file path').optional(),
    // The message never repeats the value: it may hold a password.
    url: z.string({ error: 'must be a PostgreSQL address such as postgres://user:password@host:5432/firmward' })
      .refine((u) => u === '' || POSTGRES_URL_PATTERN.test(u), { error: 'must be a PostgreSQL address such as postgres://user:password@host:5432/firmward' })
      .default(''),
  }, { error: 'must be an object' }).prefault({}),
  repositories: z.array(z.strictObject({
    name: z.string({ error: 'must be a name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'must be a name of letters, digits, ".", "_" or "-"' }),
    url: z.string({ error: 'must be an address' }).refine((u) => /^(https?|file):\/\//.test(u), { error: 'must start with https://, http:// or file://' }),
    root: text('a file path'),
  }, { error: 'must be an object with name, url and root' }), { error: 'must be a list' })
    .refine((list) => new Set(list.map((r) => r.name)).size === list.length, { error: 'must give every repository its own name' })
    .default([]),
  demo: flag.default(false),
  demoSpeed: z.number({ error: 'must be a positive number' })
    .positive({ error: 'must be a positive number' }).max(1_000_000, { error: 'must be at most 1000000' }).default(240),
  ownerToken: z.string({ error: 'must be a text token' })
    .min(16, { error: 'must be at least 16 characters long' })
    .regex(TOKEN_PATTERN, { error: 'may only contain letters, digits and . _ ~ + / - (with = at the end)' })
    .optional(),
  engine: z.strictObject({
    tickMs: wholeNumber(10, 60_000).default(1000),
    silenceTimeoutSeconds: wholeNumber(10, 7 * 24 * 3600).default(900),
    offerResendSeconds: wholeNumber(1, 24 * 3600).default(30),
    unreachableRetrySeconds: wholeNumber(1, 24 * 3600).default(60),
  }, { error: 'must be an object' }).prefault({}),
  ddi: z.strictObject({
    enabled: flag.default(false),
    tenant: text('a tenant name').default('DEFAULT'),
    gatewayToken: z.string({ error: 'must be a text token' }).min(16, { error: 'must be at least 16 characters long' })
      .regex(TOKEN_PATTERN, { error: 'may only contain letters, digits and . _ ~ + / - (with = at the end)' }).optional(),
    autoRegister: z.union([z.literal(false), z.strictObject({ allowedControllerIds: z.array(text('a controller id')).optional() })],
      { error: 'must be false, {} (any device) or {"allowedControllerIds": [...]}' }).default(false),
    homeId: z.string({ error: 'must be a home id' }).default(''),
    pollingSleep: z.string({ error: 'must be a time like 00:05:00' })
      .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$/, { error: 'must be a time like 00:05:00 (hours:minutes:seconds)' })
      .refine((t) => t !== '00:00:00', { error: 'must be at least one second' }).default('00:05:00'),
  }, { error: 'must be an object' }).prefault({}),
  images: imagesSchema,
  bridges: bridgesSchema,
  logLevel: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
}, { error: 'must be a JSON object' });

// --- layering -----------------------------------------------------------------------------

type Raw = Record<string, unknown>;

function isPlainObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Sets `key` (dotted) in `target`. When the file put a non-object where an object belongs, the
 * value is left alone so the schema reports it; the start fails either way.
 */
function setPath(target: Raw, key: string, value: unknown): void {
  const parts = key.split('.');
  let node: Raw = target;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (child === undefined) {
      const created: Raw = {};
      node[part] = created;
      node = created;
    } else if (isPlainObject(child)) {
      node = child;
    } else {
      return;
    }
  }
  node[parts[parts.length - 1]!] = value;
}

function recordFileSources(value: unknown, prefix: string, source: string, sources: Map<string, string>): void {
  if (prefix !== '') sources.set(prefix, source);
  if (!isPlainObject(value)) return;
  for (const [k, v] of Object.entries(value)) recordFileSources(v, prefix === '' ? k : `${prefix}.${k}`, source, sources);
}

/** Turns a text value from the environment or a flag into the type its key needs; leaves it as text when it cannot, so the schema reports it. */
function coerce(kind: Kind, value: string): unknown {
  switch (kind) {
    case 'string':
      return value;
    case 'number': {
      const trimmed = value.trim();
      if (trimmed === '') return value;
      const n = Number(trimmed);
      return Number.isNaN(n) ? value : n;
    }
    case 'list':
      return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
    case 'boolean': {
      const v = value.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return value;
    }
  }
}

function sourceOf(key: string, sources: Map<string, string>): string {
  const parts = key.split('.');
  for (let n = parts.length; n > 0; n--) {
    const found = sources.get(parts.slice(0, n).join('.'));
    if (found !== undefined) return found;
  }
  return 'default';
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * Reads the hub's settings from defaults, the JSON file (`--config` or FIRMWARD_CONFIG), the
 * FIRMWARD_* environment and the command line, in that order of precedence. Throws one
 * `config_invalid` FirmwardError listing every bad key when anything is wrong.
 *
 * @example
 * const config = loadConfig({ argv: process.argv.slice(2), env: process.env, readFile: (p) => readFileSync(p, 'utf8') });
 */
export function loadConfig(input: LoadConfigInput): HubConfig {
  const problems: ConfigProblem[] = [];
  const sources = new Map<string, string>();
  const merged: Raw = {};

  // Flags first: they may name the config file. parseArgs tokenises; non-strict mode lets us
  // report every bad flag together instead of stopping at the first.
  const options: ParseArgsOptionsConfig = { [CONFIG_FLAG]: { type: 'string' } };
  for (const f of FIELDS) if (f.flag !== null) options[f.flag] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
  const parsed = parseArgs({ args: [...input.argv], options, strict: false, allowPositionals: true, allowNegative: true, tokens: true });
  const flagValues = new Map<string, string | boolean>();
  let afterUnknown = false;
  for (const token of parsed.tokens) {
    if (token.kind === 'positional') {
      // Right after an unknown option it is that option's value: never echo it (it may be a secret).
      if (!afterUnknown) problems.push({ key: token.value, source: 'command line', message: 'is not an option the hub knows (options start with --)' });
      afterUnknown = false;
      continue;
    }
    afterUnknown = false;
    if (token.kind !== 'option') continue;
    // allowNegative: "--no-demo" arrives as name "demo" with rawName "--no-demo".
    const negated = token.rawName === `--no-${token.name}`;
    const option = options[token.name];
    if (option === undefined) {
      problems.push({ key: token.rawName, source: 'command line', message: 'is not an option the hub knows' });
      afterUnknown = token.value === undefined;
    } else if (negated && option.type !== 'boolean') {
      problems.push({ key: token.rawName, source: 'command line', message: 'is not an option the hub knows (only on/off options have a --no- form)' });
    } else if (option.type === 'string' && token.value === undefined) {
      problems.push({ key: token.rawName, source: 'command line', message: 'needs a value' });
    } else if (option.type === 'string' && !token.inlineValue && token.value?.startsWith('-') === true) {
      // What strict parseArgs calls ambiguous: most likely the value was forgotten.
      problems.push({ key: token.rawName, source: 'command line', message: `needs a value (write ${token.rawName}=${token.value} if that is the value)` });
    } else if (option.type === 'boolean' && token.value !== undefined) {
      problems.push({ key: token.rawName, source: 'command line', message: 'takes no value' });
    } else {
      flagValues.set(token.name, option.type === 'boolean' ? !negated : token.value!);
    }
  }

  // File layer.
  const flagConfig = flagValues.get(CONFIG_FLAG);
  const envConfig = input.env[CONFIG_ENV];
  const configFile = typeof flagConfig === 'string' ? flagConfig : (envConfig !== undefined && envConfig !== '' ? envConfig : null);
  if (configFile !== null) {
    const source = `file ${configFile}`;
    let content: unknown;
    let readable = true;
    try {
      content = JSON.parse(input.readFile(configFile));
    } catch (error) {
      readable = false;
      const why = error instanceof SyntaxError ? `is not valid JSON (${error.message})` : `cannot be read (${error instanceof Error ? error.message : String(error)})`;
      problems.push({ key: 'config file', source, message: why });
    }
    if (readable) {
      if (isPlainObject(content)) {
        Object.assign(merged, structuredClone(content));
        recordFileSources(content, '', source, sources);
      } else {
        problems.push({ key: 'config file', source, message: 'must hold one JSON object of settings' });
      }
    }
  }

  // Environment, then flags: later layers win. An empty variable counts as unset (shell habit).
  for (const f of FIELDS) {
    const value = input.env[f.env];
    if (value === undefined || value === '') continue;
    setPath(merged, f.key, coerce(f.kind, value));
    sources.set(f.key, f.secret ? `${f.env} (value not shown)` : `${f.env}=${describe(value)}`);
  }
  for (const f of FIELDS) {
    if (f.flag === null) continue;
    const value = flagValues.get(f.flag);
    if (value === undefined) continue;
    setPath(merged, f.key, typeof value === 'boolean' ? value : coerce(f.kind, value));
    sources.set(f.key, `--${f.flag} ${describe(value)}`);
  }

  // An external broker takes no anonymous hub (DESIGN, scale-out: per-device credentials and ACLs);
  // said here, before the hub starts, rather than as a refused login later.
  const mqttRaw = isPlainObject(merged.mqtt) ? merged.mqtt : {};
  if (typeof mqttRaw.url === 'string' && BROKER_URL_PATTERN.test(mqttRaw.url) && (mqttRaw.password === undefined || mqttRaw.password === '')) {
    problems.push({
      key: 'mqtt.password', source: sourceOf('mqtt.url', sources),
      message: 'must be set (FIRMWARD_MQTT_PASSWORD) when mqtt.url names an external broker: the hub logs in to it with mqtt.username and this password',
    });
  }

  // A URL without the kind (or the kind without a URL) would leave a scaled-out hub on its own
  // SQLite file, where invariant 1 no longer spans the other instances: refuse to start instead.
  const storeRaw = isPlainObject(merged.store) ? merged.store : {};
  const storeUrl = typeof storeRaw.url === 'string' ? storeRaw.url : '';
  if (storeRaw.kind === 'postgres' && storeUrl === '') {
    problems.push({
      key: 'store.url', source: sourceOf('store.kind', sources),
      message: 'must be set (FIRMWARD_STORE_URL) when store.kind is "postgres": the address of the database the hubs share',
    });
  }
  if (storeUrl !== '' && (storeRaw.kind === undefined || storeRaw.kind === 'sqlite')) {
    problems.push({
      key: 'store.kind', source: sourceOf('store.kind', sources),
      message: 'must be "postgres" (FIRMWARD_STORE_KIND=postgres) when store.url is set, or remove store.url to keep the SQLite file',
    });
  }

  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const at = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) {
          const key = at === '' ? k : `${at}.${k}`;
          problems.push({ key, source: sourceOf(key, sources), message: 'is not a setting the hub knows' });
        }
      } else {
        problems.push({ key: at === '' ? 'config file' : at, source: sourceOf(at, sources), message: issue.message });
      }
    }
  }

  if (problems.length > 0 || !result.success) {
    const list = problems.map((p) => `${p.key} (${p.source}) ${p.message}`).join('; ');
    const count = problems.length === 1 ? 'one problem, fix it' : `${problems.length} problems, fix them`;
    throw new FirmwardError('config_invalid', `The hub's settings have ${count} and start again: ${list}.`, { detail: { problems } });
  }

  const c = result.data;
  return {
    dataDir: c.dataDir,
    http: { ...c.http, allowedHosts: [...c.http.allowedHosts] },
    mqtt: {
      ...c.mqtt, mosquitto: { ...c.mqtt.mosquitto, reloadCommand: [...c.mqtt.mosquitto.reloadCommand] },
      // Several instances are possible only with an external broker and a shared database; one
      // instance alone in a group receives everything, as without one.
      sharedSubscriptions: c.mqtt.sharedSubscriptions ?? (c.mqtt.url !== '' && c.store.kind === 'postgres'),
    },
    releases: { ...c.releases },
    store: { kind: c.store.kind, path: c.store.path ?? join(c.dataDir, 'firmward.db'), url: c.store.url },
    repositories: c.repositories.map((r) => ({ ...r })),
    demo: c.demo,
    demoSpeed: c.demoSpeed,
    ownerToken: c.ownerToken ?? null,
    engine: { ...c.engine },
    ddi: {
      ...c.ddi, gatewayToken: c.ddi.gatewayToken ?? null,
      autoRegister: c.ddi.autoRegister === false ? false : { ...(c.ddi.autoRegister.allowedControllerIds !== undefined && { allowedControllerIds: c.ddi.autoRegister.allowedControllerIds }) },
    },
    images: { ...c.images },
    bridges: structuredClone(c.bridges),
    logLevel: c.logLevel,
    configFile,
  };
}

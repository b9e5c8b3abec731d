/**
 * A controller's configData attributes, read as what the hub needs: its identity (for the
 * compatibility check, invariant 2 — and the device's own client checks again, SWUpdate with its
 * `hardware-compatibility`) and the conditions the preflight gate looks at (battery, signal, busy).
 * The attribute names are ours; a maker sets them in the client's `identify` section.
 */
import type { PowerSource, Slot } from '@firmward/core';

/** Canonical attribute key first, then accepted spellings. */
export const ATTRIBUTE_KEYS = {
  vendor: ['vendor'],
  model: ['model'],
  hardwareRevision: ['hardwareRevision', 'hwRevision'],
  firmwareVersion: ['firmwareVersion', 'version'],
  name: ['name'],
  powerSource: ['powerSource'],
  batteryPercent: ['batteryPercent'],
  charging: ['charging'],
  signalDbm: ['signalDbm'],
  busy: ['busy'],
  freeStorageBytes: ['freeStorageBytes'],
  healthy: ['healthy'],
  activeSlot: ['activeSlot'],
} as const;
type Field = keyof typeof ATTRIBUTE_KEYS;

export interface DdiIdentity {
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
  name: string;
  powerSource: PowerSource;
}

/** What the device says about itself right now (preflight data). Defaults where it says nothing. */
export interface DdiConditions {
  activeSlot: Slot;
  powerSource: PowerSource;
  batteryPercent: number | null;
  charging: boolean;
  signalDbm: number | null;
  busy: boolean;
  freeStorageBytes: number;
  healthy: boolean;
}

export interface AttributeDefaults {
  /** Used when the device does not name its vendor (a gateway for one maker's devices). */
  vendor: string | null;
  /** The controller id: a name for the dashboard until the device gives one. */
  name: string;
  /**
   * An A/B device writes its inactive slot, whose size is fixed: when it does not report free
   * storage the slot is assumed to fit the image — the client refuses an image that does not fit
   * before it switches slots.
   */
  freeStorageBytes: number;
}

export interface ReadAttributes {
  /** null until model, hardware revision, version (and a vendor) are known. */
  identity: DdiIdentity | null;
  /** The identity keys still missing, for the log. */
  missing: string[];
  conditions: DdiConditions;
  /** Values of our keys that do not parse: the whole configData is refused with these. */
  problems: string[];
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Reads identity and conditions from a controller's attributes.
 *
 * @example
 * readAttributes({ model: 'gw-1', hwRevision: '1.0', version: '1.0.0', vendor: 'acme' }, { vendor: null, name: 'dev1', freeStorageBytes: 2 ** 32 });
 */
export function readAttributes(attributes: Readonly<Record<string, string>>, defaults: AttributeDefaults): ReadAttributes {
  const problems: string[] = [];
  const raw = (field: Field): string | undefined => {
    for (const key of ATTRIBUTE_KEYS[field]) {
      const value = attributes[key];
      if (value !== undefined) return value.trim();
    }
    return undefined;
  };
  const text = (field: Field): string | null => {
    const value = raw(field);
    if (value === undefined) return null;
    if (value === '' || value.length > 64) {
      problems.push(`"${ATTRIBUTE_KEYS[field][0]}" must be 1 to 64 characters`);
      return null;
    }
    return value;
  };
  const number = (field: Field, min: number, max: number, integer = false): number | null => {
    const value = raw(field);
    if (value === undefined) return null;
    const n = value === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      problems.push(`"${ATTRIBUTE_KEYS[field][0]}" must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
      return null;
    }
    return n;
  };
  const flag = (field: Field, fallback: boolean): boolean => {
    const value = raw(field)?.toLowerCase();
    if (value === undefined) return fallback;
    if (TRUE.has(value)) return true;
    if (FALSE.has(value)) return false;
    problems.push(`"${ATTRIBUTE_KEYS[field][0]}" must be true or false`);
    return fallback;
  };
  const oneOf = <T extends string>(field: Field, allowed: readonly T[], fallback: T): T => {
    const value = raw(field);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    problems.push(`"${ATTRIBUTE_KEYS[field][0]}" must be ${allowed.map((a) => `"${a}"`).join(' or ')}`);
    return fallback;
  };

  const batteryPercent = number('batteryPercent', 0, 100);
  const powerSource = oneOf<PowerSource>('powerSource', ['mains', 'battery'], batteryPercent === null ? 'mains' : 'battery');
  const conditions: DdiConditions = {
    activeSlot: oneOf<Slot>('activeSlot', ['a', 'b'], 'a'),
    powerSource,
    batteryPercent,
    charging: flag('charging', false),
    signalDbm: number('signalDbm', -130, 0),
    busy: flag('busy', false),
    freeStorageBytes: number('freeStorageBytes', 0, Number.MAX_SAFE_INTEGER, true) ?? defaults.freeStorageBytes,
    healthy: flag('healthy', true),
  };

  const vendor = text('vendor') ?? defaults.vendor;
  const model = text('model');
  const hardwareRevision = text('hardwareRevision');
  const firmwareVersion = text('firmwareVersion');
  const name = text('name') ?? defaults.name;
  const missing = [
    ...(vendor === null ? ['vendor'] : []),
    ...(model === null ? ['model'] : []),
    ...(hardwareRevision === null ? ['hardwareRevision'] : []),
    ...(firmwareVersion === null ? ['firmwareVersion'] : []),
  ];
  const identity = vendor !== null && model !== null && hardwareRevision !== null && firmwareVersion !== null
    ? { vendor, model, hardwareRevision, firmwareVersion, name, powerSource }
    : null;
  return { identity, missing, conditions, problems };
}

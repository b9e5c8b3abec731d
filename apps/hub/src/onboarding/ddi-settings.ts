/**
 * Who may register as a hawkBit device, set in the config file and changed from the API or the
 * dashboard while the hub runs. What a person set is kept in the store (every instance sharing it
 * applies the same) and wins over the config file from then on.
 */
import { FirmwardError } from '@firmward/core';
import type { Store } from '@firmward/ports';
import type { DdiConfig } from '../config.ts';
import type { DdiRegistrar } from './context.ts';
import type { DdiSettingsPatch, DdiSettingsView } from './types.ts';

const KEY = 'ddi.registration';
const CONTROLLER_ID = /^[A-Za-z0-9.:_-]{1,120}$/;

interface Saved {
  autoRegister: boolean;
  allowedControllerIds: string[] | null;
  homeId: string;
}

export class DdiSettings {
  readonly #config: DdiConfig;
  readonly #store: Store;
  readonly #gateway: DdiRegistrar | null;
  /** The proposed home of self-registered devices, which the gateway router reads. */
  readonly #route: { homeId: string } | null;
  #current: Saved;
  #changedHere = false;

  constructor(o: { config: DdiConfig; store: Store; gateway: DdiRegistrar | null; route: { homeId: string } | null }) {
    this.#config = o.config;
    this.#store = o.store;
    this.#gateway = o.gateway;
    this.#route = o.route;
    const rule = o.config.autoRegister;
    this.#current = { autoRegister: rule !== false, allowedControllerIds: rule === false ? null : rule.allowedControllerIds ?? null, homeId: o.config.homeId };
  }

  /** Applies what a person set earlier (kept in the store) over the config file. */
  async start(): Promise<void> {
    const saved = await this.#store.getSetting(KEY);
    if (saved !== null) {
      this.#current = parseSaved(saved, this.#current);
      this.#changedHere = true;
    }
    this.#apply();
  }

  view(): DdiSettingsView {
    return {
      enabled: this.#config.enabled, tenant: this.#config.tenant, autoRegister: this.#current.autoRegister,
      allowedControllerIds: this.#current.allowedControllerIds, homeId: this.#current.homeId,
      gatewayTokenSet: this.#gateway?.gatewayTokenSet ?? false, changedHere: this.#changedHere,
    };
  }

  async change(patch: DdiSettingsPatch): Promise<DdiSettingsView> {
    if (!this.#config.enabled || this.#gateway === null) {
      throw new FirmwardError('invalid_input', 'The hub\'s hawkBit device API is off; turn it on in the config file (ddi.enabled) first.');
    }
    const next: Saved = {
      autoRegister: patch.autoRegister ?? this.#current.autoRegister,
      allowedControllerIds: patch.allowedControllerIds === undefined ? this.#current.allowedControllerIds : patch.allowedControllerIds,
      homeId: patch.homeId ?? this.#current.homeId,
    };
    const bad = (next.allowedControllerIds ?? []).filter((id) => !CONTROLLER_ID.test(id));
    if (bad.length > 0) throw new FirmwardError('invalid_input', `These are not controller ids: ${bad.slice(0, 5).join(', ')} (1 to 120 letters, digits or . _ : -).`);
    if (next.homeId !== '' && (await this.#store.getHome(next.homeId)) === null) throw new FirmwardError('invalid_input', `There is no home "${next.homeId}".`);
    if (next.autoRegister && !this.#gateway.gatewayTokenSet) {
      throw new FirmwardError('invalid_input', 'Devices register themselves with the tenant\'s GatewayToken, and none is set (ddi.gatewayToken or FIRMWARD_DDI_GATEWAY_TOKEN).');
    }
    await this.#store.putSetting(KEY, { ...next });
    this.#current = next;
    this.#changedHere = true;
    this.#apply();
    return this.view();
  }

  #apply(): void {
    const c = this.#current;
    this.#gateway?.setRegistration(c.autoRegister ? (c.allowedControllerIds === null ? {} : { allowedControllerIds: c.allowedControllerIds }) : false);
    if (this.#route) this.#route.homeId = c.homeId;
  }
}

function parseSaved(value: Record<string, unknown>, fallback: Saved): Saved {
  const ids = value.allowedControllerIds;
  return {
    autoRegister: typeof value.autoRegister === 'boolean' ? value.autoRegister : fallback.autoRegister,
    allowedControllerIds: Array.isArray(ids) && ids.every((i): i is string => typeof i === 'string') ? ids : ids === null ? null : fallback.allowedControllerIds,
    homeId: typeof value.homeId === 'string' ? value.homeId : fallback.homeId,
  };
}

export {
  NOT_APPLICABLE_FREE_STORAGE_BYTES, SHELLY_ID_PREFIX, SHELLY_RECOVERY, SHELLY_STABLE_ECOSYSTEM, SHELLY_STABLE_TRUST, SHELLY_VENDOR, ShellyBridge,
} from './shelly-bridge.ts';
export type { ShellyBridgeOptions } from './shelly-bridge.ts';
export { shellyTopics } from './messages.ts';

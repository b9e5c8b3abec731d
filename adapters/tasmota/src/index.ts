export { NOT_APPLICABLE_FREE_STORAGE_BYTES, TASMOTA_ID_PREFIX, TASMOTA_VENDOR, TasmotaBridge } from './tasmota-bridge.ts';
export type { TasmotaBridgeOptions } from './tasmota-bridge.ts';
export { DEFAULT_DISCOVERY_PREFIX, DEFAULT_PREFIXES, parseTasmotaVersion, signalDbm } from './messages.ts';
export type { TasmotaPrefixes, TasmotaVersion } from './messages.ts';

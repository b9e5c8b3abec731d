export { Zigbee2MqttBridge } from './bridge.ts';
export type { Zigbee2MqttBridgeOptions } from './bridge.ts';
export { FREE_STORAGE_NOT_APPLICABLE_BYTES, ZIGBEE2MQTT_TRUST, lqiToDbm, powerSourceOf } from './mapping.ts';

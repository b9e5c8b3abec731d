/**
 * The ecosystem bridges the config turns on: each speaks to the MQTT broker the household's
 * devices already use (usually Home Assistant's Mosquitto) and brings those devices under the
 * hub's rules. All are off by default; each can be turned off on its own.
 */
import { z } from 'zod';
import { HomeAssistantPublisher } from '@firmward/homeassistant';
import type { HomeAssistantHub } from '@firmward/homeassistant';
import type { Clock, Logger } from '@firmward/ports';
import { ShellyBridge } from '@firmward/shelly';
import { TasmotaBridge } from '@firmward/tasmota';
import { Zigbee2MqttBridge } from '@firmward/zigbee2mqtt';
import type { RoutedBridge } from './gateway-router.ts';

const BROKER_URL = /^(mqtts?|wss?):\/\/[^\s]+$/;

/** The broker and login a bridge uses, and the home its devices join. */
const connection = {
  enabled: z.boolean({ error: 'must be true or false' }).default(false),
  url: z.string({ error: 'must be a broker address' })
    .refine((u) => u === '' || BROKER_URL.test(u), { error: 'must be a broker address such as mqtt://192.168.1.2:1883' }).default(''),
  username: z.string({ error: 'must be text' }).default(''),
  password: z.string({ error: 'must be text' }).default(''),
  homeId: z.string({ error: 'must be a home id' }).default(''),
};

/** MQTT 3.1.1 sends a password only together with a user name (§3.1.2.9); without one the client never even tries. */
const PASSWORD_NEEDS_USER = 'needs "username" beside its password: MQTT sends a password only with a user name';

function needsBrokerAndHome<T extends { enabled: boolean; url: string; homeId: string; username: string; password: string }>(schema: z.ZodType<T>) {
  return schema
    .refine((b) => !b.enabled || b.url !== '', { error: 'needs "url" when enabled: the broker its devices use' })
    .refine((b) => !b.enabled || b.password === '' || b.username !== '', { error: PASSWORD_NEEDS_USER })
    .refine((b) => !b.enabled || b.homeId !== '', { error: 'needs "homeId" when enabled: the home its devices join' });
}

export const bridgesSchema = z.strictObject({
  zigbee2mqtt: needsBrokerAndHome(z.strictObject({ ...connection, baseTopic: z.string().min(1).default('zigbee2mqtt') }, { error: 'must be an object' })).prefault({}),
  tasmota: needsBrokerAndHome(z.strictObject({ ...connection }, { error: 'must be an object' })).prefault({}),
  shelly: needsBrokerAndHome(z.strictObject({
    ...connection,
    /** Shelly Gen2+ has no announcement topic: the devices' MQTT topic prefixes are listed here. */
    devices: z.array(z.string().min(1)).default([]),
    stableChannel: z.boolean().default(true),
  }, { error: 'must be an object' })).prefault({}),
  homeAssistant: z.strictObject({
    enabled: connection.enabled,
    url: connection.url,
    username: connection.username,
    password: connection.password,
    discoveryPrefix: z.string().min(1).default('homeassistant'),
  }, { error: 'must be an object' }).refine((b) => !b.enabled || b.url !== '', { error: 'needs "url" when enabled: Home Assistant\'s broker' })
    .refine((b) => !b.enabled || b.password === '' || b.username !== '', { error: PASSWORD_NEEDS_USER }).prefault({}),
}, { error: 'must be an object' }).prefault({});

export type BridgesConfig = z.output<typeof bridgesSchema>;

export type GatewayBridgeName = 'zigbee2mqtt' | 'tasmota' | 'shelly';
export const GATEWAY_BRIDGES: readonly GatewayBridgeName[] = ['zigbee2mqtt', 'tasmota', 'shelly'];

/** One bridge as its settings describe it (whether or not it is turned on). */
export function createBridge(name: GatewayBridgeName, config: BridgesConfig, o: { clock: Clock; log: Logger }): RoutedBridge {
  const login = (b: { username: string; password: string }) => ({
    ...(b.username !== '' && { username: b.username }),
    ...(b.password !== '' && { password: b.password }),
  });
  switch (name) {
    case 'zigbee2mqtt': {
      const z2m = config.zigbee2mqtt;
      return { homeId: z2m.homeId, bridge: new Zigbee2MqttBridge({ url: z2m.url, ...login(z2m), baseTopic: z2m.baseTopic, clock: o.clock, logger: o.log.child('zigbee2mqtt') }) };
    }
    case 'tasmota': {
      const tasmota = config.tasmota;
      return { homeId: tasmota.homeId, bridge: new TasmotaBridge({ url: tasmota.url, ...login(tasmota), clock: o.clock, logger: o.log.child('tasmota') }) };
    }
    case 'shelly': {
      const shelly = config.shelly;
      return {
        homeId: shelly.homeId,
        bridge: new ShellyBridge({ url: shelly.url, ...login(shelly), devices: shelly.devices, stableChannel: shelly.stableChannel, clock: o.clock, logger: o.log.child('shelly') }),
      };
    }
  }
}

/** The bridges the config turns on, each routed to its home. */
export function createBridges(config: BridgesConfig, o: { clock: Clock; log: Logger }): RoutedBridge[] {
  return GATEWAY_BRIDGES.filter((name) => config[name].enabled).map((name) => createBridge(name, config, o));
}

/**
 * Home Assistant's view of the hub, when the config turns it on: one `update` entity per device;
 * pressing Install asks for "update now", which goes through every safety gate like the dashboard's.
 */
export function createHomeAssistant(config: BridgesConfig['homeAssistant'], o: { hub: HomeAssistantHub; clock: Clock; log: Logger; dashboardUrl: string; version: string }): HomeAssistantPublisher | null {
  if (!config.enabled) return null;
  return new HomeAssistantPublisher({
    url: config.url,
    ...(config.username !== '' && { username: config.username }),
    ...(config.password !== '' && { password: config.password }),
    hub: o.hub, clock: o.clock, logger: o.log.child('home-assistant'), discoveryPrefix: config.discoveryPrefix,
    dashboardUrl: o.dashboardUrl, softwareVersion: o.version,
  });
}

/**
 * Home Assistant's MQTT discovery schemas, written from HA's field lists (not from our code):
 * /work/shared/reference/ecosystems.md §2.2 (update config keys, the `device` and `origin`
 * blocks, availability) and §2.3 (the JSON state), after home-assistant/core
 * `components/mqtt/update.py` and the docs page update.mqtt.markdown. The sensor schema lists the
 * keys of HA's MQTT sensor docs (https://www.home-assistant.io/integrations/sensor.mqtt/) that a
 * sensor of ours could use. Strict objects: HA ignores unknown keys, so a misspelt key would
 * silently do nothing — the test must catch it instead.
 */
import { z } from 'zod';

const topic = z.string().min(1).refine((t) => !/[#+]/.test(t), 'no wildcards in a topic');

const availabilityEntry = z.strictObject({
  topic,
  payload_available: z.string().optional(),
  payload_not_available: z.string().optional(),
  value_template: z.string().optional(),
});

/** §2.2 `device` (dev): at least one of identifiers or connections. */
export const haDeviceSchema = z.strictObject({
  identifiers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  connections: z.array(z.tuple([z.string(), z.string()])).optional(),
  name: z.string().optional(),
  manufacturer: z.string().optional(),
  model: z.string().optional(),
  model_id: z.string().optional(),
  hw_version: z.string().optional(),
  sw_version: z.string().optional(),
  serial_number: z.string().optional(),
  suggested_area: z.string().optional(),
  configuration_url: z.string().optional(),
  via_device: z.string().optional(),
}).refine((d) => d.identifiers !== undefined || d.connections !== undefined, 'identifiers or connections is required');

/** §2.2 `origin` (o). */
export const haOriginSchema = z.strictObject({
  name: z.string().min(1),
  sw_version: z.string().optional(),
  support_url: z.string().optional(),
});

/** Keys every MQTT entity shares (§2.2, last rows). */
const common = {
  name: z.string().nullable().optional(),
  unique_id: z.string().min(1).optional(),
  object_id: z.string().optional(),
  entity_category: z.enum(['config', 'diagnostic']).optional(),
  enabled_by_default: z.boolean().optional(),
  icon: z.string().optional(),
  json_attributes_topic: topic.optional(),
  json_attributes_template: z.string().optional(),
  availability_topic: topic.optional(),
  availability: z.array(availabilityEntry).min(1).optional(),
  availability_mode: z.enum(['all', 'any', 'latest']).optional(),
  availability_template: z.string().optional(),
  payload_available: z.string().optional(),
  payload_not_available: z.string().optional(),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  encoding: z.string().optional(),
  device: haDeviceSchema.optional(),
  origin: haOriginSchema.optional(),
};

/** §2.2: the `update` platform's config keys. */
export const haUpdateConfigSchema = z.strictObject({
  ...common,
  state_topic: topic.optional(),
  command_topic: topic.optional(),
  payload_install: z.string().optional(),
  latest_version_topic: topic.optional(),
  latest_version_template: z.string().optional(),
  value_template: z.string().optional(),
  entity_picture: z.string().optional(),
  release_summary: z.string().max(255).optional(),
  release_url: z.string().optional(),
  title: z.string().optional(),
  device_class: z.literal('firmware').nullable().optional(),
  display_precision: z.number().int().min(0).optional(),
  retain: z.boolean().optional(),
  platform: z.literal('update').optional(),
});

/** §2.3: the JSON on `state_topic`. String fields must be strings (HA drops a message with a null in one). */
export const haUpdateStateSchema = z.strictObject({
  installed_version: z.string().min(1).optional(),
  latest_version: z.string().min(1).optional(),
  title: z.string().optional(),
  release_summary: z.string().max(255).optional(),
  release_url: z.string().optional(),
  entity_picture: z.string().optional(),
  in_progress: z.boolean().optional(),
  update_percentage: z.number().min(0).max(100).nullable().optional(),
});

/** HA's MQTT sensor config keys (sensor.mqtt docs). */
export const haSensorConfigSchema = z.strictObject({
  ...common,
  state_topic: topic,
  value_template: z.string().optional(),
  unit_of_measurement: z.string().optional(),
  device_class: z.string().nullable().optional(),
  state_class: z.enum(['measurement', 'total', 'total_increasing', 'measurement_angle']).optional(),
  suggested_display_precision: z.number().int().min(0).optional(),
  expire_after: z.number().int().min(0).optional(),
  force_update: z.boolean().optional(),
  last_reset_value_template: z.string().optional(),
  options: z.array(z.string()).optional(),
  platform: z.literal('sensor').optional(),
});

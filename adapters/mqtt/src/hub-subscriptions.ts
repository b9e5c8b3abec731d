/**
 * What the hub subscribes to, alone or as one of several instances on one external broker: pure,
 * no I/O (STYLE principle 2), so the filters are tested on their own.
 *
 * Alone, the hub subscribes to HUB_TOPIC_FILTERS, and the broker sends every device's retained
 * state and availability with those subscriptions: that is how the hub catches up after a start or
 * a reconnect.
 *
 * Several instances join one shared subscription group (`$share/<group>/<filter>`, MQTT 5 §4.8.2;
 * Mosquitto 2 and EMQX take it from MQTT 3.1.1 clients too): the broker hands each device message
 * to one member of the group, so N instances split the traffic instead of each handling all of it.
 * A broker that keeps to the specification sends no retained message to a shared subscription
 * (§4.8.2: "retained messages are not sent to the Session when it first subscribes"), so each
 * instance also subscribes to state and availability *without* the group for a moment, at every
 * (re)connect, only to receive the retained copies (the gateway unsubscribes once the broker has
 * acknowledged; see gateway.ts). Every instance receives those copies, which is harmless: a
 * retained state is the device's word on what it runs, idempotent for its job (core
 * device-report.ts), and an availability is written only when it differs from the stored one. What
 * a copy does add is telemetry (the report, stored newest-wins, and one signal sample): one per
 * instance and device at each (re)connect, not per message.
 */
import { TOPIC_ROOT } from '@firmward/protocol';
import { HUB_TOPIC_FILTERS } from './acl.ts';

/** The prefix of a shared subscription's filter: `$share/<group>/<topic filter>`. */
export const SHARED_SUBSCRIPTION_PREFIX = '$share/';

/** The group the hub instances of one deployment join when none is configured. */
export const DEFAULT_SHARED_GROUP = 'firmward-hub';

/**
 * The topics whose retained copies the hub catches up on; events are never retained (acl.ts,
 * publishRefusal), so they need no catch-up.
 */
const RETAINED_FILTERS = [`${TOPIC_ROOT}/d/+/state`, `${TOPIC_ROOT}/d/+/availability`] as const;

export interface HubSubscriptions {
  /** Subscribed at QoS 1 for as long as the connection lasts. */
  live: readonly string[];
  /**
   * Subscribed at QoS 0 after every (re)connect, and unsubscribed as soon as the broker has
   * acknowledged: only for the retained copies it sends then. Empty when `live` brings them.
   * QoS 0 because a broker queues a limited number of QoS 1 messages per client beyond those in
   * flight (Mosquitto's `max_queued_messages`, 1000 by default) and drops the rest — a fleet's
   * retained states at once would be cut off there — while QoS 0 copies to a connected client
   * are written out as they come; a connection lost on the way starts the catch-up again.
   */
  catchUp: readonly string[];
}

/**
 * Why `group` cannot name a shared subscription group, or null when it can. The specification
 * forbids "/", "+" and "#"; we also keep to letters, digits, ".", "_" and "-" (at most 64), so the
 * name is the same in a config file, a variable, a flag and a broker's log.
 *
 * @example
 * sharedGroupRefusal('firmward-hub'); // null
 * sharedGroupRefusal('a/b');          // 'must be 1 to 64 letters, digits, ".", "_" or "-"'
 */
export function sharedGroupRefusal(group: string): string | null {
  return /^[A-Za-z0-9._-]{1,64}$/.test(group) ? null : 'must be 1 to 64 letters, digits, ".", "_" or "-"';
}

/**
 * The hub's subscriptions: alone (`sharedGroup` null) or as a member of `sharedGroup`.
 *
 * @example
 * hubSubscriptions(null);           // { live: HUB_TOPIC_FILTERS, catchUp: [] }
 * hubSubscriptions('firmward-hub'); // { live: ['$share/firmward-hub/firmward/v1/d/+/state', …], catchUp: ['firmward/v1/d/+/state', 'firmward/v1/d/+/availability'] }
 */
export function hubSubscriptions(sharedGroup: string | null): HubSubscriptions {
  if (sharedGroup === null) return { live: [...HUB_TOPIC_FILTERS], catchUp: [] };
  return {
    live: HUB_TOPIC_FILTERS.map((filter) => `${SHARED_SUBSCRIPTION_PREFIX}${sharedGroup}/${filter}`),
    catchUp: [...RETAINED_FILTERS],
  };
}

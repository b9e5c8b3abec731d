/**
 * aedes's in-memory persistence with retained messages also indexed by exact topic.
 *
 * aedes-persistence answers every SUBSCRIBE by testing each retained message against the filter
 * (asyncPersistence.js, retainedMessagesByPattern): each device subscribing to its own command
 * topic scans every device's retained state and availability, so a restart with 2,000 devices
 * coming back spent seconds of CPU in topic matching alone (bench/restart.bench.ts, docs/benchmarks.md).
 * A filter without wildcards can match only the topic of the same name, so it is a map lookup;
 * filters with wildcards (the hub's, a handful) are left to the library's own matching.
 */
import { Readable } from 'node:stream';
import MemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import type { AedesPacket } from 'aedes-packet';

/** MQTT's single- and multi-level wildcards (MQTT 3.1.1 §4.7.1). */
function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

export class IndexedRetainedPersistence extends MemoryPersistence {
  readonly #byTopic = new Map<string, AedesPacket>();

  override async storeRetained(packet: AedesPacket): Promise<void> {
    // Only PUBLISH packets are retained. A copy, as the library keeps: aedes reuses packet objects.
    if ('topic' in packet && 'payload' in packet) {
      if (packet.payload.length === 0) this.#byTopic.delete(packet.topic);
      else this.#byTopic.set(packet.topic, { ...packet });
    }
    await super.storeRetained(packet);
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    const exact = patterns.filter((p) => !hasWildcard(p));
    const wild = patterns.filter(hasWildcard);
    const byTopic = this.#byTopic;
    const fromLibrary = wild.length > 0 ? super.createRetainedStreamCombi(wild) : null;
    return Readable.from((async function* retained() {
      // Filter by filter, as the library answers (a filter named twice is answered twice).
      for (const topic of exact) {
        const packet = byTopic.get(topic);
        if (packet !== undefined) yield packet;
      }
      if (fromLibrary) yield* fromLibrary;
    })());
  }
}

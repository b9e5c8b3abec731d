/**
 * Follows MQTT framing on a connection's incoming bytes and fails as soon as a packet announces a
 * remaining length over the limit — before its body is buffered. The MQTT parser aedes uses has no
 * size limit of its own, so without this one connection could make the broker hold any amount of
 * memory (STYLE principle 9: bound every size while streaming). Bytes pass through unchanged.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { FirmwardError } from '@firmward/core';

type Phase = 'header' | 'length' | 'body';

export class PacketSizeGuard extends Transform {
  readonly maxPacketBytes: number;
  #phase: Phase = 'header';
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #remaining = 0;

  constructor(maxPacketBytes: number) {
    super();
    this.maxPacketBytes = maxPacketBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const error = this.#scan(chunk);
    if (error) callback(error);
    else callback(null, chunk);
  }

  #scan(chunk: Buffer): FirmwardError | null {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#phase) {
        case 'header':
          i += 1;
          this.#phase = 'length';
          this.#length = 0;
          this.#multiplier = 1;
          this.#lengthBytes = 0;
          break;
        case 'length': {
          const byte = chunk[i]!;
          i += 1;
          this.#length += (byte & 0x7f) * this.#multiplier;
          this.#multiplier *= 128;
          this.#lengthBytes += 1;
          if (this.#length > this.maxPacketBytes) return tooLarge(this.#length, this.maxPacketBytes);
          if ((byte & 0x80) === 0) {
            this.#remaining = this.#length;
            this.#phase = this.#remaining > 0 ? 'body' : 'header';
          } else if (this.#lengthBytes === 4) {
            return new FirmwardError('invalid_input', 'A connection sent a malformed MQTT packet, so it was closed.');
          }
          break;
        }
        case 'body': {
          const take = Math.min(this.#remaining, chunk.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#phase = 'header';
          break;
        }
      }
    }
    return null;
  }
}

function tooLarge(bytes: number, limit: number): FirmwardError {
  return new FirmwardError('payload_too_large', 'A connection sent an MQTT packet larger than the hub accepts, so it was closed.', {
    detail: { announcedBytes: bytes, limitBytes: limit },
  });
}

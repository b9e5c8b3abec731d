/**
 * Downloads an image into a slot: resumable with HTTP Range, bounded by the length the maker
 * signed, hashed while streaming, synced, then read back from the slot and hashed again. Modelled
 * on tuf-js `fetcher.ts`: never trust a size the server announces, stop at the first byte too many
 * (STYLE principle 9; invariant 4: nothing becomes bootable before its length and hash verify).
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Slot } from '@firmward/core';
import type { Clock } from '@firmward/ports';
import type { AgentPlatform, SlotWriter } from './platform.ts';
import { sleepOn } from './sleep.ts';

export interface DownloadRequest {
  url: string;
  lengthBytes: number;
  /** lowercase hex */
  sha256: string;
  slot: Slot;
  /** Bytes already durable in the slot from an earlier attempt (the journal's count). */
  resumeFrom: number;
}

export interface DownloadOptions {
  platform: AgentPlatform;
  clock: Clock;
  /** Sync and checkpoint after at least this many new bytes. */
  chunkBytes: number;
  /**
   * How long transient failures (network, 5xx, stall) are retried without a byte of progress
   * before the download gives up with `hub_unreachable`: long enough to outlast a hub that
   * restarts or loses power for a while. Any progress starts the budget afresh.
   */
  retryBudgetMs: number;
  /** The first pause between tries; each pause doubles, up to MAX_RETRY_DELAY_MS. */
  retryDelayMs: number;
  /** No byte for this long (on the injected clock) counts as a dropped connection. */
  stallTimeoutMs: number;
  /** Called after every sync with the bytes now durable; the caller journals them. */
  onCheckpoint: (bytesWritten: number) => Promise<void>;
  signal: AbortSignal;
  fetch?: typeof fetch;
}

/** Pauses between tries grow to at most this (a hub back after a restart is found within a minute). */
export const MAX_RETRY_DELAY_MS = 60_000;

/**
 * Resolves once the slot holds exactly `lengthBytes` bytes hashing to `sha256`, synced and read
 * back. Throws `image_length_mismatch` or `image_hash_mismatch` (the image is wrong: final),
 * `image_unavailable` (the hub has no such image), `hub_unreachable` (the retry budget ran out) or
 * `image_url_invalid`; rejects with the signal's reason when aborted.
 *
 * @example
 * await downloadToSlot({ url, lengthBytes, sha256, slot: 'b', resumeFrom: journal.bytesWritten },
 *   { platform, clock, chunkBytes: 65536, retryBudgetMs: 1_800_000, retryDelayMs: 10_000, stallTimeoutMs: 60_000, onCheckpoint, signal });
 */
export async function downloadToSlot(request: DownloadRequest, options: DownloadOptions): Promise<void> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch (cause) {
    throw new FirmwardError('image_url_invalid', 'The update\'s download address is not valid.', { cause, detail: { url: request.url } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FirmwardError('image_url_invalid', 'The update\'s download address is not a web address.', { detail: { url: request.url } });
  }

  let offset = Math.min(Math.max(0, request.resumeFrom), request.lengthBytes);
  // The budget runs from the first failure since the last progress.
  let failingSince: number | null = null;
  let delayMs = options.retryDelayMs;
  for (;;) {
    options.signal.throwIfAborted();
    try {
      if (offset < request.lengthBytes) offset = await fetchInto(url, request, offset, options);
      await verifySlot(options.platform, request.slot, request.lengthBytes, request.sha256, options.signal);
      return;
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason;
      if (!isTransient(error)) throw error;
      // The journal holds the last synced byte count; carry on from there after a pause.
      const durable = isFirmwardError(error) && typeof error.detail?.['durableBytes'] === 'number' ? error.detail['durableBytes'] : offset;
      const now = options.clock.now();
      if (durable > offset || failingSince === null) {
        failingSince = now;
        delayMs = options.retryDelayMs;
      }
      offset = durable;
      if (now - failingSince >= options.retryBudgetMs) {
        const minutes = Math.max(1, Math.round(options.retryBudgetMs / 60_000));
        throw new FirmwardError('hub_unreachable', `The hub did not deliver the update for ${minutes} min; the device keeps what it has downloaded and goes on when the hub offers it again.`, { cause: error });
      }
      await sleepOn(options.clock, Math.min(delayMs, Math.max(0, failingSince + options.retryBudgetMs - now)), options.signal);
      delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS);
    }
  }
}

/**
 * Reads the slot back and hashes what is really there; the read-back, not the stream, is what gets
 * switched to (invariant 4).
 */
export async function verifySlot(platform: AgentPlatform, slot: Slot, lengthBytes: number, sha256: string, signal?: AbortSignal): Promise<void> {
  const hash = createHash('sha256');
  const read = await hashSlot(platform, slot, lengthBytes, hash, signal);
  if (read !== lengthBytes) {
    throw new FirmwardError('image_length_mismatch', 'The update in storage is not the size the maker published, so it is not installed.', {
      detail: { expected: lengthBytes, read },
    });
  }
  const digest = hash.digest('hex');
  if (digest !== sha256) {
    throw new FirmwardError('image_hash_mismatch', 'The update in storage does not match the maker\'s fingerprint, so it is not installed.', {
      detail: { expected: sha256, actual: digest, stage: 'read-back' },
    });
  }
}

async function hashSlot(platform: AgentPlatform, slot: Slot, lengthBytes: number, hash: Hash, signal?: AbortSignal): Promise<number> {
  let read = 0;
  for await (const chunk of platform.readSlot(slot, lengthBytes)) {
    signal?.throwIfAborted();
    const take = Math.min(chunk.byteLength, lengthBytes - read);
    hash.update(take === chunk.byteLength ? chunk : chunk.subarray(0, take));
    read += take;
    if (read >= lengthBytes) break;
  }
  return read;
}

function transient(message: string, durableBytes: number, cause?: unknown): FirmwardError {
  return new FirmwardError('image_unavailable', message, { cause, detail: { transient: true, durableBytes } });
}

function isTransient(error: unknown): boolean {
  return isFirmwardError(error, 'image_unavailable') && error.detail?.['transient'] === true;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** One HTTP request: returns the bytes durable in the slot when the body ended. */
async function fetchInto(url: URL, request: DownloadRequest, from: number, options: DownloadOptions): Promise<number> {
  // node:crypto cannot save a hash midway: rebuild it from what the slot already holds.
  let offset = from;
  let resumedHash: Hash | null = null;
  if (offset > 0) {
    resumedHash = createHash('sha256');
    if (await hashSlot(options.platform, request.slot, offset, resumedHash, options.signal) !== offset) {
      offset = 0;
      resumedHash = null;
    }
  }

  const attempt = new AbortController();
  const stopAttempt = () => attempt.abort(options.signal.reason);
  options.signal.addEventListener('abort', stopAttempt, { once: true });
  let lastByteAt = options.clock.now();
  let stalled = false;
  const watchdog = (async () => {
    while (!attempt.signal.aborted) {
      try {
        await sleepOn(options.clock, options.stallTimeoutMs, attempt.signal);
      } catch {
        return;
      }
      if (options.clock.now() - lastByteAt >= options.stallTimeoutMs) {
        stalled = true;
        attempt.abort(new FirmwardError('image_unavailable', 'The download stalled.'));
        return;
      }
    }
  })();

  let writer: SlotWriter | null = null;
  try {
    let response: Response;
    try {
      response = await (options.fetch ?? fetch)(url, {
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        signal: attempt.signal,
      });
    } catch (cause) {
      options.signal.throwIfAborted();
      throw transient('The hub could not be reached for the download.', offset, cause);
    }

    let hash: Hash;
    if (offset > 0 && resumedHash && response.status === 206) {
      const range = CONTENT_RANGE.exec(response.headers.get('content-range') ?? '');
      const total = range?.[3];
      if (total !== undefined && total !== '*' && Number(total) !== request.lengthBytes) {
        await response.body?.cancel();
        throw lengthMismatch(request.lengthBytes, Number(total));
      }
      if (range?.[1] === undefined || Number(range[1]) !== offset) {
        // A part that does not start where we asked is not a resume: start over without Range.
        await response.body?.cancel();
        throw transient('The hub sent a different part of the update than asked for; starting over.', 0);
      }
      hash = resumedHash;
    } else if (response.status === 200) {
      // The server ignored Range (or none was asked for): the body is the whole image from byte 0.
      offset = 0;
      hash = createHash('sha256');
    } else if (response.status === 416) {
      await response.body?.cancel();
      throw transient('The hub did not accept where the download left off; starting over.', 0);
    } else {
      await response.body?.cancel();
      if (response.status >= 500 || response.status === 408 || response.status === 429) {
        throw transient(`The hub answered the download with status ${response.status}.`, offset);
      }
      throw new FirmwardError('image_unavailable', `The hub could not provide the update (status ${response.status}).`, {
        detail: { status: response.status },
      });
    }

    // The announced size is checked before a byte is written; the stream is bounded anyway below.
    const declared = response.headers.get('content-length');
    if (declared !== null && Number(declared) !== request.lengthBytes - offset) {
      await response.body?.cancel();
      throw lengthMismatch(request.lengthBytes, offset + Number(declared));
    }
    const body = response.body;
    if (!body) throw transient('The hub sent an empty answer.', offset);

    writer = await options.platform.openSlotWriter(request.slot, { offset });
    let written = offset;
    let unsynced = 0;
    const reader = body.getReader();
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (cause) {
          options.signal.throwIfAborted();
          if (unsynced > 0) {
            await writer.sync();
            await options.onCheckpoint(written);
          }
          throw transient(stalled ? 'The download stalled.' : 'The connection dropped during the download.', written, cause);
        }
        if (next.done) break;
        const chunk = next.value;
        lastByteAt = options.clock.now();
        // Bounded by the signed length: the byte too many is never written (invariant 4).
        if (written + chunk.byteLength > request.lengthBytes) {
          await reader.cancel().catch(() => undefined);
          throw lengthMismatch(request.lengthBytes, written + chunk.byteLength);
        }
        await writer.write(chunk);
        hash.update(chunk);
        written += chunk.byteLength;
        unsynced += chunk.byteLength;
        if (unsynced >= options.chunkBytes) {
          await writer.sync();
          unsynced = 0;
          await options.onCheckpoint(written);
        }
      }
    } finally {
      reader.releaseLock();
    }
    await writer.sync();
    if (unsynced > 0) await options.onCheckpoint(written);
    if (written < request.lengthBytes) throw transient('The download ended early.', written);
    const digest = hash.digest('hex');
    if (digest !== request.sha256) {
      throw new FirmwardError('image_hash_mismatch', 'The downloaded update does not match the maker\'s fingerprint, so it is not installed.', {
        detail: { expected: request.sha256, actual: digest, stage: 'download' },
      });
    }
    return written;
  } finally {
    options.signal.removeEventListener('abort', stopAttempt);
    attempt.abort();
    await watchdog;
    if (writer) await writer.close().catch(() => undefined);
  }
}

function lengthMismatch(expected: number, got: number): FirmwardError {
  return new FirmwardError('image_length_mismatch', 'The hub sent an update of a different size than the maker published, so it is not installed.', {
    detail: { expected, got },
  });
}

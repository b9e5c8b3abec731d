import { checkCompatibility } from '@firmward/core';
import type { CompatibilityRelease } from '@firmward/core';
import type { DiscoveredDevice } from '@firmward/ports';
import type { OfferCommand, DeviceReason } from '@firmward/protocol';

/**
 * The offer checked again against the device as the bridge sees it — the core's one
 * compatibility rule (invariants 2 and 5), standing in for the check a Firmward agent makes on itself.
 */
export function offerMisfit(offer: OfferCommand, device: DiscoveredDevice): DeviceReason | null {
  const release: CompatibilityRelease = {
    vendor: offer.vendor, model: offer.model, hardwareRevisions: offer.hardwareRevisions, version: offer.version, retracted: false,
    ...(offer.applicableFrom !== null && { applicableFrom: offer.applicableFrom }),
    ...(offer.applicableTo !== null && { applicableTo: offer.applicableTo }),
  };
  const result = checkCompatibility(release, device);
  return result.ok ? null : { code: result.code, message: result.message };
}

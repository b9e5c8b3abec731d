export { RELEASE_OVERRIDE_KEYS, SEGMENT, releaseCustomSchema, releaseFromTarget, targetPath, vendorDelegation } from './custom.ts';
export type { ReleaseCustom, ReleaseCustomInput } from './custom.ts';
export { DeviceTrust } from './device-trust.ts';
export type { DeviceFacts, DeviceTrustOptions } from './device-trust.ts';
export { tufRefusal } from './errors.ts';
export { RepositoryFetcher } from './fetcher.ts';
export { TufReleaseSource } from './release-source.ts';
export type { TufReleaseSourceOptions } from './release-source.ts';
export { TrustedRepository, atomicWrite, isRoot, repositoryUrl } from './trusted-repository.ts';
export type { SignedTarget, TargetListing, TrustedRepositoryOptions } from './trusted-repository.ts';
export {
  CONFORMANCE_REPOSITORY, holds, initConformanceClient, initialRootFile, parseConformanceArgs, placeVerified, publishTrustedCopies, runConformance,
  stateDir, targetFile,
} from './conformance.ts';
export type { ConformanceCommand } from './conformance.ts';

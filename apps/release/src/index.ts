/**
 * The maker's release tool: keys, a signed TUF repository with one delegated role per vendor,
 * publishing to a static folder, and verification with the tuf-js client. The CLI (`firmward
 * release …`) is a thin layer over this library; tests and the hub's demo call the library.
 */
export { ReleaseRepository, DEFAULT_EXPIRY_DAYS, checkVendorName, signRootFile } from './repository.ts';
export type {
  AddOptions, CreatedKey, ExpiryDays, InitOptions, RefreshResult, ReleaseSummary, RepositoryOptions, RepositoryStatus, RoleKeysOptions,
  RootSigningResult, RotateOptions, SignatureCount, VendorOptions,
} from './repository.ts';
export { publishedImagePath } from './publish.ts';
export type { PublishResult } from './publish.ts';
export { verifyRepository } from './verify.ts';
export type { VerifiedTarget, VerifyOptions, VerifyReport } from './verify.ts';
export { fromClientError } from './client-errors.ts';
export { serveFolder } from './static-server.ts';
export type { ServedFolder } from './static-server.ts';
export {
  INSECURE_FAST_KDF, KEY_FILE_KDF, Keyring, generateSigningKey, keyFileEncryption, keyIdOf, loadSigningKey, publicKeyJson, readPublicKey, writeKeyFile,
  writePublicKeyFile,
} from './keys.ts';
export type { KeyFileEncryption, KeyFileKdf, PublicKeyInfo, PublicKeyJson, SigningKey, WriteKeyFileOptions } from './keys.ts';
export type { BeforeWrite } from './atomic.ts';
export { registerReleaseCommands } from './cli.ts';
export type { ReleaseCliIo } from './cli.ts';

// Low-level helpers for attack tests: craft metadata no honest repository would write.
export {
  /** Reads one metadata file (`{signed, signatures}`) from a working or published folder. */
  readMetadata,
  /** Writes one metadata file atomically (e.g. a crafted timestamp.json into a copy of a published folder). */
  writeMetadata,
  /** Parses metadata text the way the client does; throws FirmwardError `metadata_invalid`. */
  parseMetadata,
  /** Signs with the given keys; `append: false` replaces every signature instead of adding. */
  signMetadata,
  /** Sets `signed.version` (signatures kept, now stale: re-sign). */
  setVersion,
  /** Raises `signed.version` (default by 1; signatures kept, now stale). */
  bumpVersion,
  /** Sets `signed.expires` from a time (signatures kept, now stale). */
  setExpires,
  /** Points a snapshot (`acme.json`, `targets.json`) or timestamp (`snapshot.json`) entry at a version. */
  setMetaVersion,
  /** Adds or replaces a target in targets metadata (signatures kept, now stale). */
  setTarget,
  /** The target entry (length, sha256, custom) for image bytes. */
  targetEntry,
  /** Key ids among a role's keys whose signatures verify (what the client counts). */
  validSigners,
  /** TUF's expiry format, `YYYY-MM-DDTHH:MM:SSZ`. */
  formatExpires,
  /** The canonical bytes a signature covers. */
  signedBytes,
} from './metadata.ts';
export type {
  AnySigned, DelegatedRoleJson, Envelope, MetaFileJson, RoleJson, RootSigned, SignatureJson, SnapshotSigned, TargetFileJson, TargetsSigned,
  TimestampSigned, TopLevelRole,
} from './metadata.ts';

export type { Clock } from './clock.ts';
export type {
  Store, HistoryEvent, NewHistoryEvent, PlannedJob, EventQuery, JobQuery, DeviceTelemetryWrite, DeviceRow, ReleaseJob, Enrollment, PendingDevice, PendingDeviceState,
  PendingDeviceProtocol, RepositoryRecord,
} from './store.ts';
export type { ImageRefusal, ReleaseSource } from './release-source.ts';
export type { DeviceGateway, GatewayHandler } from './device-gateway.ts';
export type { Bridge, BridgeHandler, DiscoveredDevice } from './bridge.ts';
export type { CommittedChange, JobRef, Notifier } from './notifier.ts';
export { LocalNotifier } from './local-notifier.ts';
export { ManualClock, ScaledClock, SystemClock } from './clocks.ts';
export type { ConsoleLoggerOptions, Logger, LogLevel } from './logger.ts';
export { consoleLogger, silentLogger } from './logger.ts';
export { LOGGED_CHARS, LogThrottle, clip } from './log-limits.ts';
export type { LogThrottleOptions, Repeated } from './log-limits.ts';
export { LoopbackGateway } from './loopback-gateway.ts';
export type { LoopbackDeviceEnd } from './loopback-gateway.ts';
export { MemoryReleaseSource } from './memory-release-source.ts';
export { BlobVerifier, checkBlobExpectation, imageBlobKey, lengthMismatch, resolveByteRange, sha256OfBlobKey, type BlobExpectation, type BlobKey, type BlobStat, type BlobStore, type ByteRange, type DownloadUrlOptions } from './blob-store.ts';

export type { Clock } from './clock.ts';
export type { Store, HistoryEvent, NewHistoryEvent, EventQuery, JobQuery, DeviceTelemetryWrite, DeviceRow } from './store.ts';
export type { ReleaseSource } from './release-source.ts';
export type { DeviceGateway, GatewayHandler } from './device-gateway.ts';
export type { Notifier } from './notifier.ts';
export { ManualClock, ScaledClock, SystemClock } from './clocks.ts';
export type { Logger, LogLevel } from './logger.ts';
export { consoleLogger, silentLogger } from './logger.ts';

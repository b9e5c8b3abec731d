export { Agent } from './agent.ts';
export type { AgentDeps, AgentTransition, AgentPhaseOrIdle } from './agent.ts';
export { DEFAULT_AGENT_CONFIG, agentConfig } from './config.ts';
export type { AgentConfig } from './config.ts';
export type {
  AgentPlatform, BootState, DeviceConditionsReport, DeviceIdentity, HealthReport, SlotWriter, TrialBoot,
} from './platform.ts';
export type { AgentTransport, PublishedMessage } from './transport.ts';
export { InProcessTransport } from './transport.ts';
export { EMPTY_JOURNAL, FINISHED_JOBS_KEPT, agentJournalSchema, parseJournal } from './journal.ts';
export type { AgentJournal, AgentPhase, JournalJob } from './journal.ts';
export { planRecovery, MAX_INSTALL_ATTEMPTS } from './recovery.ts';
export type { RecoveryStep } from './recovery.ts';
export { checkOfferFits, checkOwnPreflight } from './offer-check.ts';
export type { OwnPreflightThresholds } from './offer-check.ts';
export { downloadToSlot, verifySlot } from './download.ts';
export type { DownloadOptions, DownloadRequest } from './download.ts';
export { MemoryHardware, MemoryPlatform } from './memory-platform.ts';
export type { BootReason, BootRecord, InterruptKind, MemoryHardwareOptions, MemoryPlatformHooks } from './memory-platform.ts';
export { buildFirmwareImage, readFirmwareHeader } from './firmware-image.ts';
export type { FirmwareHeader } from './firmware-image.ts';
export { sleepOn } from './sleep.ts';
export { MqttAgentTransport } from './mqtt-transport.ts';
export type { MqttTransportOptions } from './mqtt-transport.ts';

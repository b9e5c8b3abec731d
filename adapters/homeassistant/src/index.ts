export { HOME_ASSISTANT_ACTOR, HomeAssistantPublisher } from './publisher.ts';
export type { HomeAssistantPublisherOptions } from './publisher.ts';
export type { HomeAssistantDevice, HomeAssistantHistoryEvent, HomeAssistantHome, HomeAssistantHub, HomeAssistantJob } from './hub.ts';
export { MAX_RELEASE_SUMMARY_CHARS, PAYLOAD_INSTALL, objectId, topicsOf } from './discovery.ts';
export type { InstallRequestOutcome } from './discovery.ts';

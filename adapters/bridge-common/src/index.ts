export { connectBroker } from './connect.ts';
export type { BrokerConnection, BrokerOptions, BrokerSession } from './connect.ts';
export { DeliveryQueue } from './delivery.ts';
export { offerMisfit } from './offer.ts';
export { parseJson, readJson, validate } from './parse.ts';
export type { ParseResult } from './parse.ts';

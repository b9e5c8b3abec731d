/**
 * What the hub offers for setting a household up — homes, devices joining and leaving, credentials,
 * the makers' repositories — as read models and inputs shared by the HTTP API, the CLI's typed
 * client and the dashboard (STYLE principle 13). Nothing here knows about HTTP.
 */
import type { HomeSettings } from '@firmward/core';
import type { ImageRefusal, PendingDevice } from '@firmward/ports';
import type { BrokerAddress } from '@firmward/protocol';
import type { DeviceView, HomeSettingsPatch, HomeView } from '../service.ts';

/** A new home: its name, and any setting that differs from the home defaults (time zone default: the hub machine's). */
export type NewHomeInput = HomeSettingsPatch & { name: string };

export interface HomeDeletion {
  homeId: string;
  devicesRemoved: string[];
  updatesCancelled: number;
}

/** An enrollment code, as the owner sees it once (the hub keeps only its digest). */
export interface EnrollmentCreated {
  id: string;
  homeId: string;
  homeName: string;
  /** The home's time zone, in which `expiresAt` is best shown. */
  timeZone: string;
  /** `K7Q2M-X9HT4`: works once, until `expiresAt`. */
  code: string;
  expiresAt: number;
  /** What a QR code carries: hub address, home and code (`firmward-enroll:?…`). */
  payload: string;
  /** The hub address inside the payload. */
  hubUrl: string;
  /** The command to run on the device. */
  agentCommand: string;
}

export interface EnrollmentView {
  id: string;
  homeId: string;
  createdAt: number;
  expiresAt: number;
  createdBy: string;
  state: 'open' | 'used' | 'expired';
  /** The request to join that used it (a pending device's id), once used. */
  usedBy: string | null;
}

/** A device that asked to join and waits for the owner (or was decided); never its credential. */
export type PendingDeviceView = Omit<PendingDevice, 'secretHash' | 'enrollmentId'> & {
  /** "Waiting for your approval: it says it is an Acme Plug (hardware revision rev2) running 1.0.0, asking from 192.168.1.20." */
  summary: string;
};

export interface ApproveInput {
  /** Rename it on the way in. */
  name?: string;
  /** Where it goes; needed when it asked for no home (a hawkBit device that registered itself). */
  homeId?: string;
}

/** Registering a device directly (no enrollment code): a hawkBit client, or an agent provisioned in the factory. */
export interface RegisterDeviceInput {
  protocol: 'hawkbit' | 'agent';
  /** The agent's device id, or the hawkBit controller id (the device id becomes `ddi-<controllerId>`). */
  id: string;
  name: string;
  vendor: string;
  model: string;
  hardwareRevision: string;
  /** What it runs now; its own reports correct it later. */
  firmwareVersion: string;
}

/** A credential shown once; the hub keeps only its digest or hash. */
export type IssuedCredential =
  | { kind: 'mqtt'; deviceId: string; username: string; secret: string; broker: BrokerAddress; hubUrl: string }
  | { kind: 'hawkbit'; deviceId: string; controllerId: string; targetToken: string; tenant: string; hubUrl: string };

export interface RegisteredDevice {
  device: DeviceView;
  credential: IssuedCredential;
}

export interface DevicePatch {
  name?: string;
  /** Move it to this home (not while it installs). */
  homeId?: string;
  /** Firmward never updates it; it stays listed. */
  ignored?: boolean;
}

export interface RepositoryView {
  name: string;
  url: string;
  /** "config": from the config file (removed there); "added": added while the hub runs. */
  origin: 'config' | 'added';
  trusted: boolean;
  code: string | null;
  message: string | null;
  /** How many releases it vouches for right now. */
  releases: number;
  /** Releases it vouches for whose image at its server did not verify: withheld, with why and when they are tried again. */
  refusedImages: ImageRefusal[];
  refreshedAt: number | null;
  addedAt: number | null;
  addedBy: string | null;
}

export interface NewRepositoryInput {
  name: string;
  url: string;
  /** The maker's root.json, as text (uploaded or pasted): trust starts here. */
  root: string;
}

/** hawkBit device registration, as set in the config file and changed from the API or the dashboard. */
export interface DdiSettingsView {
  enabled: boolean;
  tenant: string;
  /** Whether unknown controllers may ask to join with the tenant's GatewayToken (each then waits for approval). */
  autoRegister: boolean;
  /** When set, only these controller ids may ask. */
  allowedControllerIds: string[] | null;
  /** The home a self-registered device is proposed for ('' : the person picks one when approving). */
  homeId: string;
  gatewayTokenSet: boolean;
  /** Where the settings come from. */
  changedHere: boolean;
}

export interface DdiSettingsPatch {
  autoRegister?: boolean;
  allowedControllerIds?: string[] | null;
  homeId?: string;
}

/**
 * Setting a household up: every action takes `actor` ("person:owner") for the history, and each
 * refusal has a code and a sentence.
 */
export interface SetupService {
  createHome(input: NewHomeInput, actor: string): Promise<HomeView>;
  renameHome(homeId: string, name: string, actor: string): Promise<HomeView>;
  /** Refused while one of its devices installs; its open updates are cancelled first, with the reason. */
  deleteHome(homeId: string, actor: string): Promise<HomeDeletion>;

  createEnrollment(homeId: string, o: { expiresInMinutes?: number; hubUrl: string }, actor: string): Promise<EnrollmentCreated>;
  listEnrollments(query: { homeId?: string }): Promise<EnrollmentView[]>;
  revokeEnrollment(enrollmentId: string, actor: string): Promise<void>;

  listPendingDevices(query: { homeId?: string; all?: boolean }): Promise<PendingDeviceView[]>;
  approve(pendingId: string, input: ApproveInput, actor: string): Promise<DeviceView>;
  reject(pendingId: string, actor: string): Promise<PendingDeviceView>;

  /** `hubUrl`: the hub's address for the device (http.publicUrl, or the one the person reached it at); default: the hub's own. */
  registerDevice(homeId: string, input: RegisterDeviceInput, actor: string, hubUrl?: string): Promise<RegisteredDevice>;
  changeDevice(deviceId: string, patch: DevicePatch, actor: string): Promise<DeviceView>;
  /** Refused while it installs; revokes its credentials at once. */
  removeDevice(deviceId: string, actor: string): Promise<{ deviceId: string }>;
  /** A new secret (agent) or TargetToken (hawkBit), shown once; the old one stops working at once. */
  rotateCredential(deviceId: string, actor: string, hubUrl?: string): Promise<IssuedCredential>;
  revokeCredential(deviceId: string, actor: string): Promise<DeviceView>;

  listRepositories(): Promise<RepositoryView[]>;
  addRepository(input: NewRepositoryInput, actor: string): Promise<RepositoryView>;
  removeRepository(name: string, actor: string): Promise<void>;
  refreshRepository(name: string): Promise<RepositoryView>;

  ddiSettings(): Promise<DdiSettingsView>;
  changeDdiSettings(patch: DdiSettingsPatch, actor: string): Promise<DdiSettingsView>;
}

export type { HomeSettings };

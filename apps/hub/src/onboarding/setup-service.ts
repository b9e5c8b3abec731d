/**
 * SetupService over the store, the engine and the gateways: one object the HTTP edge (and through
 * it the CLI and the dashboard) calls for everything that sets a household up.
 */
import { FirmwardError } from '@firmward/core';
import type { EnrollmentClaim, EnrollmentClaimAnswer, EnrollmentStatus } from '@firmward/protocol';
import type { ReleaseSources } from '../release-sources.ts';
import type { DeviceView, HomeView } from '../service.ts';
import type { SetupDeps } from './context.ts';
import type { DdiSettings } from './ddi-settings.ts';
import { DeviceDirectory } from './devices.ts';
import { Enrollments } from './enrollment.ts';
import { createHome, deleteHome, renameHome } from './homes.ts';
import type { Repositories } from './repositories.ts';
import type {
  ApproveInput, DdiSettingsPatch, DdiSettingsView, DevicePatch, EnrollmentCreated, EnrollmentView, HomeDeletion, IssuedCredential, NewHomeInput,
  NewRepositoryInput, PendingDeviceView, RegisterDeviceInput, RegisteredDevice, RepositoryView, SetupService,
} from './types.ts';

/** The device's side of joining (no owner token: the enrollment code and then the device's secret are its credentials). */
export interface EnrollmentDesk {
  claim(claim: EnrollmentClaim, from: string): Promise<EnrollmentClaimAnswer>;
  status(claimId: string, secret: string, from: string): Promise<EnrollmentStatus>;
}

export interface SetupServiceDeps extends SetupDeps {
  repositories: Repositories;
  sources: Pick<ReleaseSources, 'refusals' | 'releaseCount' | 'refreshedAt' | 'refusedImagesOf'>;
  ddiSettings: DdiSettings;
}

export class DefaultSetupService implements SetupService, EnrollmentDesk {
  readonly #d: SetupServiceDeps;
  readonly enrollments: Enrollments;
  readonly #devices: DeviceDirectory;

  constructor(d: SetupServiceDeps) {
    this.#d = d;
    this.enrollments = new Enrollments(d);
    this.#devices = new DeviceDirectory(d);
  }

  createHome(input: NewHomeInput, actor: string): Promise<HomeView> {
    return createHome(this.#d, input, actor);
  }

  renameHome(homeId: string, name: string, actor: string): Promise<HomeView> {
    return renameHome(this.#d, homeId, name, actor);
  }

  deleteHome(homeId: string, actor: string): Promise<HomeDeletion> {
    return deleteHome(this.#d, homeId, actor);
  }

  createEnrollment(homeId: string, o: { expiresInMinutes?: number; hubUrl: string }, actor: string): Promise<EnrollmentCreated> {
    return this.enrollments.create(homeId, o, actor);
  }

  listEnrollments(query: { homeId?: string }): Promise<EnrollmentView[]> {
    return this.enrollments.list(query);
  }

  revokeEnrollment(enrollmentId: string, actor: string): Promise<void> {
    return this.enrollments.revoke(enrollmentId, actor);
  }

  listPendingDevices(query: { homeId?: string; all?: boolean }): Promise<PendingDeviceView[]> {
    return this.enrollments.listPending(query);
  }

  approve(pendingId: string, input: ApproveInput, actor: string): Promise<DeviceView> {
    return this.enrollments.approve(pendingId, input, actor);
  }

  reject(pendingId: string, actor: string): Promise<PendingDeviceView> {
    return this.enrollments.reject(pendingId, actor);
  }

  claim(claim: EnrollmentClaim, from: string): Promise<EnrollmentClaimAnswer> {
    return this.enrollments.claim(claim, from);
  }

  status(claimId: string, secret: string, from: string): Promise<EnrollmentStatus> {
    return this.enrollments.status(claimId, secret, from);
  }

  registerDevice(homeId: string, input: RegisterDeviceInput, actor: string, hubUrl?: string): Promise<RegisteredDevice> {
    return this.#devices.register(homeId, input, actor, hubUrl ?? this.#d.hubUrl());
  }

  changeDevice(deviceId: string, patch: DevicePatch, actor: string): Promise<DeviceView> {
    return this.#devices.change(deviceId, patch, actor);
  }

  removeDevice(deviceId: string, actor: string): Promise<{ deviceId: string }> {
    return this.#devices.remove(deviceId, actor);
  }

  rotateCredential(deviceId: string, actor: string, hubUrl?: string): Promise<IssuedCredential> {
    return this.#devices.rotate(deviceId, actor, hubUrl ?? this.#d.hubUrl());
  }

  revokeCredential(deviceId: string, actor: string): Promise<DeviceView> {
    return this.#devices.revoke(deviceId, actor);
  }

  async listRepositories(): Promise<RepositoryView[]> {
    await this.#d.repositories.sync();
    return this.#d.repositories.views(this.#d.sources);
  }

  async addRepository(input: NewRepositoryInput, actor: string): Promise<RepositoryView> {
    await this.#d.repositories.add(input, actor);
    // Read now, so the answer says whether the maker's metadata verifies against the root given.
    await this.#d.engine.refreshReleases();
    return this.#view(input.name);
  }

  async removeRepository(name: string, actor: string): Promise<void> {
    await this.#d.repositories.remove(name, actor);
    await this.#d.engine.refreshReleases();
  }

  async refreshRepository(name: string): Promise<RepositoryView> {
    await this.#d.repositories.sync();
    const repository = this.#d.repositories.get(name);
    if (repository === null) throw new FirmwardError('not_found', `There is no repository "${name}".`);
    // The person may have just had the maker fix a refused image: try it now, not after its backoff.
    repository.retryRefusedImages();
    await this.#d.engine.refreshReleases();
    return this.#view(name);
  }

  ddiSettings(): Promise<DdiSettingsView> {
    return Promise.resolve(this.#d.ddiSettings.view());
  }

  changeDdiSettings(patch: DdiSettingsPatch): Promise<DdiSettingsView> {
    return this.#d.ddiSettings.change(patch);
  }

  #view(name: string): RepositoryView {
    const view = this.#d.repositories.views(this.#d.sources).find((r) => r.name === name);
    if (!view) throw new FirmwardError('not_found', `There is no repository "${name}".`);
    return view;
  }
}

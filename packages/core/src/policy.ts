/**
 * What may start on its own (DESIGN, path step 4: "the policy decides what may run on its own").
 * Policy is only one gate: an allowed update still passes compatibility, the window, preflight and
 * the one-per-home sequencer elsewhere (invariants 1–3).
 */
import type { Policy } from './home.ts';
import type { Reason } from './reason.ts';
import { reason } from './reason.ts';
import type { Release } from './release.ts';
import { isSecurityRelease } from './release.ts';

/** automatic: the planner / scheduler on its own. person: someone pressed "update now". */
export type UpdateTrigger = 'automatic' | 'person';

export interface PolicyDecision {
  allowed: boolean;
  reason: Reason;
}

/**
 * Does the policy let this release start? A person's "update now" is always allowed by policy
 * (it still goes through every other gate).
 *
 * @example
 * policyAllows('security-only', release, 'automatic');
 * // { allowed: false, reason: { code: 'policy_waits_for_person', message: 'Available, waiting for you: …' } }
 */
export function policyAllows(
  policy: Policy,
  release: Pick<Release, 'version' | 'vulnerabilitiesFixed' | 'severity'>,
  trigger: UpdateTrigger,
): PolicyDecision {
  if (trigger === 'person') {
    return { allowed: true, reason: reason('requested_by_person', `You asked for ${release.version}; it still waits for every safety check.`) };
  }
  switch (policy) {
    case 'automatic':
      return { allowed: true, reason: reason('policy_automatic', `${release.version} installs on its own (updates are automatic).`) };
    case 'security-only':
      return isSecurityRelease(release)
        ? { allowed: true, reason: reason('policy_security', `${release.version} fixes a security problem, so it installs on its own (security fixes only).`) }
        : { allowed: false, reason: reason('policy_waits_for_person', `Available, waiting for you: ${release.version} fixes no security problem, and only security fixes install on their own.`) };
    case 'notify':
      return { allowed: false, reason: reason('policy_waits_for_person', `Available, waiting for you: press "Update now" to install ${release.version}.`) };
    case 'manual':
      return { allowed: false, reason: reason('policy_waits_for_person', `Available, waiting for you: updates on this device start only when you choose (manual).`) };
  }
}

/**
 * The device's own policy when it has one, else its home's.
 *
 * @example
 * effectivePolicy('automatic', null);     // 'automatic'
 * effectivePolicy('automatic', 'manual'); // 'manual'
 */
export function effectivePolicy(homePolicy: Policy, devicePolicy: Policy | null): Policy {
  return devicePolicy ?? homePolicy;
}

/**
 * The agent's own persistent state: which update it is working on and how far it got. Saved
 * atomically by the platform after every step, before the step's effect is announced (STYLE
 * principle 4: persist, then act), so the agent picks up where it was after its own restart or a
 * power cut at any point (invariant 7).
 */
import { offerCommandSchema, resultEventSchema } from '@firmward/protocol';
import type { OfferCommand } from '@firmward/protocol';
import { z } from 'zod';

/**
 * downloading → downloaded → installing → rebooting → (trial boot) → done
 *                                                   ↘ rolling-back → done
 * `installing` is journalled before the switch, `rebooting` after it: the platform's boot state
 * tells which of the two really happened.
 */
export type AgentPhase = 'downloading' | 'downloaded' | 'installing' | 'rebooting' | 'rolling-back';

const slot = z.enum(['a', 'b']);

const journalJobSchema = z.strictObject({
  jobId: z.string().min(1),
  offer: offerCommandSchema,
  phase: z.enum(['downloading', 'downloaded', 'installing', 'rebooting', 'rolling-back']),
  /** The inactive slot the image goes into. */
  targetSlot: slot,
  /** The slot and version that ran when the update began (what a rollback returns to). */
  fromSlot: slot,
  fromVersion: z.string().min(1),
  /** Bytes of the image known to be durable in the target slot (synced before this was saved). */
  bytesWritten: z.number().int().min(0),
  /** Switches started for this job (bounds retries after cuts that came before the switch). */
  installAttempts: z.number().int().min(0),
  /** Why the new version was rejected (set with `rolling-back`). */
  failure: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
});

/** Results of the last few jobs: a command repeated after its job ended gets the same answer (invariant 8). */
export const FINISHED_JOBS_KEPT = 8;

export const agentJournalSchema = z.strictObject({
  v: z.literal(1),
  job: journalJobSchema.nullable(),
  finished: z.array(resultEventSchema).max(FINISHED_JOBS_KEPT),
  /** Jobs the hub cancelled before their install step: a late copy of their offer does not start them again. */
  cancelled: z.array(z.string().min(1)).max(FINISHED_JOBS_KEPT),
});

export type JournalJob = z.infer<typeof journalJobSchema>;
export type AgentJournal = z.infer<typeof agentJournalSchema>;

export const EMPTY_JOURNAL: AgentJournal = { v: 1, job: null, finished: [], cancelled: [] };

/**
 * What the platform handed back, checked (STYLE principle 9). A journal that does not parse is
 * treated as empty: the boot state alone still tells what runs, and the hub re-sends its offer.
 */
export function parseJournal(raw: unknown): { journal: AgentJournal; error: string | null } {
  if (raw === null || raw === undefined) return { journal: EMPTY_JOURNAL, error: null };
  const parsed = agentJournalSchema.safeParse(raw);
  if (parsed.success) return { journal: parsed.data, error: null };
  const issue = parsed.error.issues[0];
  return { journal: EMPTY_JOURNAL, error: issue ? `${issue.path.join('.') || 'journal'}: ${issue.message}` : 'unreadable journal' };
}

export function newJournalJob(offer: OfferCommand, fromSlot: 'a' | 'b', fromVersion: string): JournalJob {
  return {
    jobId: offer.jobId,
    offer,
    phase: 'downloading',
    targetSlot: fromSlot === 'a' ? 'b' : 'a',
    fromSlot,
    fromVersion,
    bytesWritten: 0,
    installAttempts: 0,
    failure: null,
  };
}

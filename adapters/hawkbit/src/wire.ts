/**
 * The DDI wire contract as this gateway reads and writes it (hawkBit's DDI model classes, and what
 * SWUpdate's suricatta really sends: see /work/shared/reference/hawkbit-ddi.md). Requests are
 * parsed with these schemas at the boundary (STYLE principle 9); unknown fields are ignored
 * because clients add their own (SWUpdate sends `id` and `time`), as hawkBit does.
 */
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';

/** hawkBit's `HH:mm:ss`; hawkBit's default is five minutes. */
export const DEFAULT_POLLING_SLEEP = '00:05:00';
const SLEEP_PATTERN = /^([0-1][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])$/;

/**
 * Seconds of a polling sleep, or a `config_invalid` error. At least one second (SWUpdate treats 0
 * as "use my own default"), at most 23:59:59 (the format has no days).
 *
 * @example
 * pollingSleepSeconds('00:05:00'); // 300
 */
export function pollingSleepSeconds(sleep: string): number {
  const m = SLEEP_PATTERN.exec(sleep);
  const seconds = m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : 0;
  if (seconds < 1) {
    throw new FirmwardError('config_invalid', `The DDI polling interval "${sleep}" is not a time like 00:05:00 (hours:minutes:seconds, at least one second).`);
  }
  return seconds;
}

/** hawkBit's controller ids are free text; ours become part of a device id, so they use its characters. */
export const CONTROLLER_ID_PATTERN = /^[A-Za-z0-9._:-]{1,120}$/;

export const EXECUTIONS = ['closed', 'proceeding', 'canceled', 'scheduled', 'rejected', 'resumed', 'downloaded', 'download'] as const;
export type Execution = (typeof EXECUTIONS)[number];

/** `POST …/deploymentBase/{id}/feedback` and `…/cancelAction/{id}/feedback`. */
export const feedbackSchema = z.object({
  status: z.object({
    execution: z.enum(EXECUTIONS),
    // hawkBit requires `result`; a client that leaves it out means "not finished".
    result: z.object({
      finished: z.enum(['success', 'failure', 'none']),
      progress: z.object({ cnt: z.number().int().min(0).optional(), of: z.number().int().min(0).optional() }).optional(),
    }).default({ finished: 'none' }),
    code: z.number().int().optional(),
    // SWUpdate sends its log lines in batches of up to 48; the body limit bounds the rest.
    details: z.array(z.string()).max(1000).default([]),
  }),
});
export type Feedback = z.output<typeof feedbackSchema>;

/** Attribute keys and values: a flat map of short strings (hawkBit: keys up to 128, values up to 128). */
const attributeKey = z.string().min(1).max(128);
const attributeValue = z.string().max(512);

/** `PUT …/configData`. SWUpdate sends no `mode`: hawkBit's default is merge. */
export const configDataSchema = z.object({
  mode: z.enum(['merge', 'replace', 'remove']).default('merge'),
  data: z.record(attributeKey, attributeValue).refine((d) => Object.keys(d).length <= 100, { error: 'at most 100 attributes' }),
});
export type ConfigData = z.output<typeof configDataSchema>;

/** One link in a DDI answer. */
export interface Link {
  href: string;
}

/** `GET {base}`: what the controller should do next. */
export interface PollAnswer {
  config: { polling: { sleep: string } };
  _links: {
    deploymentBase?: Link;
    cancelAction?: Link;
    configData?: Link;
  };
}

export interface ArtifactAnswer {
  filename: string;
  size: number;
  hashes: { sha1: string; md5: string; sha256: string };
  _links: { download: Link; 'download-http': Link };
}

/** `GET {base}/deploymentBase/{actionId}`. */
export interface DeploymentAnswer {
  id: string;
  deployment: {
    download: 'forced';
    update: 'forced';
    chunks: { part: string; version: string; name: string; artifacts: ArtifactAnswer[] }[];
  };
}

/** `GET {base}/cancelAction/{actionId}`. */
export interface CancelAnswer {
  id: string;
  cancelAction: { stopId: string };
}

/** A one-line reason from a zod error, naming the field. */
export function describeIssues(error: z.ZodError, what: string): string {
  const parts = error.issues.map((issue) => {
    const at = issue.path.map(String).join('.');
    return `${at === '' ? what : `"${at}"`}: ${issue.message}`;
  });
  return `The ${what} is not valid: ${parts.join('; ')}.`;
}

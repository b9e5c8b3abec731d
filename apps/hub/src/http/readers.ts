/**
 * Reading a request at the edge (STYLE principle 9): JSON bodies, queries and ids parsed with a
 * schema, every problem named in one sentence with a stable code; nothing unparsed goes further.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import { EmptyBodySchema, IdParamSchema } from './schemas.ts';

export interface RequestReaders {
  parse: <S extends z.ZodType>(schema: S, value: unknown, what: string) => z.output<S>;
  /** The body as JSON; an empty body counts as `{}` so actions without parameters need none. */
  json: (c: Context) => Promise<unknown>;
  body: <S extends z.ZodType>(c: Context, schema: S) => Promise<z.output<S>>;
  /** No body, or `{}`. */
  empty: (c: Context) => Promise<void>;
  query: <S extends z.ZodType>(c: Context, schema: S) => z.output<S>;
  id: (c: Context, name: string) => string;
}

export function describeIssues(error: z.ZodError, what: string): string {
  const parts = error.issues.flatMap((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `"${at === '' ? k : `${at}.${k}`}" is not a field this accepts`);
    }
    return [`${at === '' ? what : `"${at}"`}: ${issue.message}`];
  });
  return `The ${what} is not valid: ${parts.join('; ')}.`;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new FirmwardError('invalid_input', describeIssues(result.error, what));
  return result.data;
}

async function json(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FirmwardError('invalid_input', 'The request body is not valid JSON.');
  }
}

export const readers: RequestReaders = {
  parse,
  json,
  body: async (c, schema) => parse(schema, await json(c), 'request body'),
  empty: async (c) => {
    parse(EmptyBodySchema, await json(c), 'request body');
  },
  query: (c, schema) => parse(schema, c.req.query(), 'query'),
  id: (c, name) => parse(IdParamSchema, c.req.param(name), name),
};

/**
 * Where the hub's mirror asks the maker's server for an image: the consistent-snapshot name inside
 * `targets/`, for paths with and without folders and with characters a URL would misread.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { consistentTargetPath } from '../src/release-source.ts';

const SHA = 'ab'.repeat(32);
const TARGETS = 'http://maker.example/repo/targets/';
const urlOf = (targetPath: string): string => new URL(consistentTargetPath(targetPath, SHA), TARGETS).href;

test('a firmware path keeps its folders and gets the hash before its file name', () => {
  assert.equal(urlOf('acme/plug/1.2.0/fw.img'), `${TARGETS}acme/plug/1.2.0/${SHA}.fw.img`);
});

test('a path without a folder stays inside targets/ (not at the server root)', () => {
  assert.equal(urlOf('target_file.txt'), `${TARGETS}${SHA}.target_file.txt`);
});

test('characters a URL would read as query, fragment or escape are encoded in every segment', () => {
  assert.equal(urlOf('a b/c?d/e#f%.bin'), `${TARGETS}a%20b/c%3Fd/${SHA}.e%23f%25.bin`);
});

/**
 * The device's conformance entry point (scripts/tuf-client-device → src/tuf-conformance-cli.ts)
 * against a repository our release tool published, served over HTTP: init, refresh, download, the
 * cache, and tampered image, timestamp and snapshot refused with exit 1.
 */
import { fileURLToPath } from 'node:url';
import { conformanceSmoke } from '@firmward/tuf/testing/conformance-smoke.ts';

conformanceSmoke({ name: 'device', executable: fileURLToPath(new URL('../../../scripts/tuf-client-device', import.meta.url)) });

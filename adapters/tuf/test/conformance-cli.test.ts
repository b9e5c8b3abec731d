/**
 * The hub's conformance entry point (scripts/tuf-client-hub → src/conformance-cli.ts) against a
 * repository our release tool published, served over HTTP: init, refresh, download, the cache, and
 * tampered image, timestamp and snapshot refused with exit 1.
 */
import { fileURLToPath } from 'node:url';
import { conformanceSmoke } from '../testing/conformance-smoke.ts';

conformanceSmoke({ name: 'hub', executable: fileURLToPath(new URL('../../../scripts/tuf-client-hub', import.meta.url)) });

export { CatalogFolderSource, releaseFileSchema, writeCatalogRelease } from './catalog-folder.ts';
export type { ReleaseFile } from './catalog-folder.ts';

// aedes-persistence ships the types of its in-memory store under types/, not beside the file.
declare module 'aedes-persistence/asyncPersistence.js' {
  // Those types are written `export =` (a CommonJS module), which only this form imports.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  import MemoryPersistence = require('aedes-persistence/types/asyncPersistence');
  export default MemoryPersistence;
}

export { NodeStore, StorageError } from './node-store.js'
export type { TaskState, TaskRecordStatus, StoredEvidence } from './node-store.js'

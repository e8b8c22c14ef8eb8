export { NodeStore, StorageError } from './node-store.js'
export type { TaskState, TaskRecordStatus, StoredEvidence, Submission, SubmissionKind, StoreArea } from './node-store.js'

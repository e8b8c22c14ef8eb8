export { NodeStore, StorageError } from './node-store.js'
export type { TaskState, TaskRecordStatus, StoredEvidence, Submission, SubmissionKind } from './node-store.js'

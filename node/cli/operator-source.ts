/**
 * Where a command gets its operator sets, and how a failed chain read is reported: the client
 * library's (node/client), re-exported for the CLI's commands.
 */
export { ChainReadError, readChain, operatorSource, chainOperatorSets } from '../client/index.js'
export type { OperatorSource } from '../client/index.js'

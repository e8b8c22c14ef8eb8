/**
 * The requester client: announce a signed task as a light peer (or from a full node), wait for
 * its quorum certificate, verify it against the operator set and fetch the output.
 */
export * from './requester.js'

/**
 * Names and limits of /poi/network/1/: a requester that knows only a bootstrap address asks it
 * which poi contracts the network uses (chain id and addresses), then checks the answer
 * against the chain before trusting it.
 */
import { ADDRESS_BYTES } from '../wire/index.js'

/** Protocol id; the version is part of it (js-libp2p style). */
export const NETWORK_PROTOCOL = '/poi/network/1/'

/** Version carried in every request and response; any other value is rejected. */
export const NETWORK_VERSION = 1

/** Longest protobuf encodings: a uint32 varint takes at most 5 bytes, a uint64 one at most 10. */
const TAG_BYTES = 1
const MAX_UINT32_VARINT_BYTES = 5
const MAX_UINT64_VARINT_BYTES = 10
/** An address field: tag, one-byte length (20 < 128), 20 bytes. */
const ADDRESS_FIELD_BYTES = TAG_BYTES + 1 + ADDRESS_BYTES

/** A bool varint is one byte (1; false is not written). */
const BOOL_VARINT_BYTES = 1

/** A request is its version and whether it asks for the maximum task TTL: at most 8 bytes. */
export const MAX_NETWORK_INFO_REQUEST_BYTES = TAG_BYTES + MAX_UINT32_VARINT_BYTES + TAG_BYTES + BOOL_VARINT_BYTES

/**
 * The largest NetworkInfo, computed from its fields (version, status and maxTaskTtlSeconds
 * uint32, chainId and deployedAtBlock uint64, four addresses): 128 bytes. Anything longer is not
 * a NetworkInfo, so the client refuses the frame before buffering it.
 */
export const MAX_NETWORK_INFO_RESPONSE_BYTES =
  3 * (TAG_BYTES + MAX_UINT32_VARINT_BYTES) + 2 * (TAG_BYTES + MAX_UINT64_VARINT_BYTES) + 4 * ADDRESS_FIELD_BYTES

/** Status codes of NetworkInfo.status. */
export const NETWORK_STATUS = {
  /** chainId, registry, taskManager, slashing and deployedAtBlock are set; modelRegistry may be empty; maxTaskTtlSeconds is set only when asked for. */
  FOUND: 0,
  /** The node runs from a genesis file, without contracts: every field but maxTaskTtlSeconds (when asked for) is empty or zero. */
  NO_CHAIN: 1,
  /** The request was malformed (another protocol version?): every other field is empty or zero. */
  BAD_REQUEST: 2
} as const

/**
 * Time and inbound bounds are the exchange defaults (protocols/exchange/constants.ts): a
 * requester asks its bootstrap node once when it starts, so a bootstrap node may see a burst,
 * and each answer is a constant of ~130 bytes. A node asks other nodes only once at start, so
 * it needs few outbound streams.
 */
export const NETWORK_MAX_OUTBOUND_STREAMS = 4

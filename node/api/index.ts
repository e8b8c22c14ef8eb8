/**
 * The node's local interfaces (DESIGN §12): the control channel, a Unix domain socket in the
 * data directory through which `poi` commands ask a running node to publish a model or list its
 * models, instead of opening its (locked) store; the HTTP API (`--http`); and the node's
 * Prometheus metrics (metrics.ts), with the GET /metrics route for its HTTP server.
 */
export {
  CONTROL_PROTOCOL_VERSION, CONTROL_REQUEST_TIMEOUT_MS, CONTROL_SOCKET_NAME, ControlError, MAX_CONTROL_REQUEST_BYTES, MAX_CONTROL_REPLY_BYTES,
  MAX_SOCKET_PATH_BYTES, controlSocketPath, parseControlReply, parseControlRequest
} from './control-protocol.js'
export type { ControlModelsResult, ControlPublishResult, ControlReply, ControlRequest, ControlResults } from './control-protocol.js'
export { ControlServer, createControlServer } from './control-server.js'
export type { ControlHandlers, ControlServerInit } from './control-server.js'
export { CONTROL_IDLE_TIMEOUT_MS, ControlClient } from './control-client.js'
export { DEFAULT_TASKS_LIMIT, MAX_TASKS_LIMIT, HTTP_BODY_LIMIT_BYTES, HTTP_CONNECTION_TIMEOUT_MS, HTTP_KEEP_ALIVE_TIMEOUT_MS, HTTP_MAX_PARAM_CHARS, HTTP_REQUEST_TIMEOUT_MS, HTTP_TIMEOUT_CHECK_INTERVAL_MS, HttpApiError, HttpServer, closeNow, createHttpServer, getRoute, httpErrorOf } from './http-server.js'
export type { HealthCheck, HttpErrorBody, HttpServerInit, HttpSource, HttpTimeouts, ModelView, NetworkView, TaskSettlement, TaskStatus, TaskView } from './http-server.js'
export { EventStream, SSE_HEARTBEAT_MS, SSE_MAX_BUFFERED_BYTES, SSE_MAX_CLIENTS, SSE_RETRY_MS, TASK_TIMINGS_KEPT, createEventStream } from './event-stream.js'
export type { EventLineSubscribe, EventStreamInit, TaskTiming } from './event-stream.js'
export { NETWORK_PAGE_CSP, NETWORK_PAGE_HTML, networkPageRoutes } from './network-page.js'
export { CERTIFICATE_SECONDS_BUCKETS, MAX_REASON_LABEL_CHARS, MAX_TIMED_TASKS, NodeMetrics, VERIFY_BATCH_BUCKETS, VERIFY_SECONDS_BUCKETS, metricsRoutes, reasonLabel } from './metrics.js'
export type { GossipResult, NodeMetricsInit } from './metrics.js'
export { serializeEvent, subscribeNodeEvents } from './events.js'
export type { Decimal, Encodable, Hex, NodeEventLine, NodeEventName, NodeEventOptions, NodeEventSource } from './events.js'
export {
  DEFAULT_GATEWAY_RATE_LIMIT_MAX, DEFAULT_GATEWAY_RATE_LIMIT_WINDOW_MS, FOREIGN_LOOKUP_TIMEOUT_MS, GATEWAY_BODY_LIMIT_BYTES, GATEWAY_BODY_SLACK_BYTES,
  MAX_TRACKED_OUTPUT_BYTES, MAX_TRACKED_TASKS, MAX_WAIT_MS, GATEWAY_TASK_SECONDS_BUCKETS, Gateway, GatewayRequestError, certificateView, createGateway, isLoopbackHost
} from './gateway.js'
export type { GatewayBackend, GatewayErrorBody, GatewayInit, GatewayResult, GatewaySubmitted, GatewayTaskRequest, GatewayTaskStatus, GatewayTaskView } from './gateway.js'
export { GATEWAY_TOKEN_BYTES, GATEWAY_TOKEN_FILE, GatewayTokenError, bearerMatches, loadOrCreateGatewayToken } from './gateway-token.js'

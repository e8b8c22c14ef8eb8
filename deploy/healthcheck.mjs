// The image's HEALTHCHECK: GET /health on the node's HTTP API (200 healthy, 503 not; see the
// README's HTTP API). A minimal image has no curl, so node's fetch asks. POI_HEALTH_URL names
// another URL (the stack's deployer serves its own /health on another port).
const HEALTH_TIMEOUT_MS = 5000 // well under the HEALTHCHECK --timeout, so a hung node reads as unhealthy, not as a timeout kill
const url = process.env.POI_HEALTH_URL ?? `http://127.0.0.1:${process.env.POI_HTTP_PORT ?? '8080'}/health`
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
  const body = await res.text()
  if (!res.ok) console.log(`${url}: ${res.status} ${body.slice(0, 500)}`)
  process.exit(res.ok ? 0 : 1)
} catch (err) {
  console.log(`${url}: ${err.message}`)
  process.exit(1)
}

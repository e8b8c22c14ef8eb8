/** The chaos scenarios `npm run chaos` runs, in this order (`--only` picks some by name). */
import { crashMinority } from './crash-minority.js'
import type { Scenario } from './scenario.js'

export const scenarios: Scenario[] = [
  crashMinority
]

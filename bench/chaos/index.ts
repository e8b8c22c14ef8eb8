/** The chaos scenarios `npm run chaos` runs, in this order (`--only` picks some by name). */
import { aggregatorKilled } from './aggregator-killed.js'
import { burst } from './burst.js'
import { byzantine } from './byzantine.js'
import { crashMinority } from './crash-minority.js'
import { flood } from './flood.js'
import { operatorRestart } from './operator-restart.js'
import { partition } from './partition.js'
import type { Scenario } from './scenario.js'

export const scenarios: Scenario[] = [
  crashMinority,
  aggregatorKilled,
  operatorRestart,
  byzantine,
  partition,
  flood,
  burst
]

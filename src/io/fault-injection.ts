/**
 * Deterministic crash and failure points for tests. Every mutating file operation of ditty's
 * writers (the atomic file and folder writers, folder creation and removal, checkpoint pruning,
 * the metrics log) calls `faultPoint` first, which numbers it from 1 in this process:
 *   DITTY_FAULT_AT=<n>         operation n kills the process with SIGKILL before it runs (a kill -9 at that instant)
 *   DITTY_FAULT_AT=<n>:<CODE>  operation n fails with that errno code instead (ENOSPC, EROFS, EACCES, ...)
 *   DITTY_FAULT_MATCH=<text>   counts (and traces) only the operations whose path contains <text>
 *   DITTY_FAULT_TRACE=<file>   appends "<n> <op> <path>" per operation, so a test can list them
 * In-process tests use `setFaultPlan`, whose 'crash' stops operation n and every later one (nothing
 * more reaches the disk, as if the process had died there) by throwing SimulatedCrash.
 */
import * as fs from 'node:fs';
import { constants } from 'node:os';

export type FaultOp = 'mkdir' | 'open' | 'write' | 'append' | 'fsync' | 'rename' | 'unlink' | 'rmdir';

export interface FaultPlan {
  /** the operation (1-based) that fails; absent: none, only tracing */
  readonly at?: number;
  /** count only operations whose path contains this */
  readonly match?: string;
  /** 'kill': SIGKILL; 'crash': SimulatedCrash from here on; else the errno code to fail with */
  readonly action?: 'kill' | 'crash' | string;
  readonly trace?: (n: number, op: FaultOp, target: string) => void;
}

/** Thrown by every operation from the planned one on under an in-process 'crash' plan. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

let plan: FaultPlan | undefined;
let fromEnv = false;
let count = 0;
let crashed = false;

function envPlan(): FaultPlan | undefined {
  const at = process.env.DITTY_FAULT_AT;
  const traceFile = process.env.DITTY_FAULT_TRACE;
  const match = process.env.DITTY_FAULT_MATCH;
  if (at === undefined && traceFile === undefined) return undefined;
  const m = at === undefined ? undefined : /^(\d+)(?::([A-Z]+))?$/.exec(at);
  if (at !== undefined && !m) throw new Error(`DITTY_FAULT_AT=${at}: expected <n> or <n>:<ERRNO CODE>`);
  return {
    ...(m ? { at: Number(m[1]), action: m[2] ?? 'kill' } : {}),
    ...(match !== undefined ? { match } : {}),
    ...(traceFile !== undefined ? { trace: (n: number, op: FaultOp, target: string) => fs.appendFileSync(traceFile, `${n} ${op} ${target}\n`) } : {}),
  };
}

/** Replaces the plan (and restarts the count); undefined turns injection off. */
export function setFaultPlan(p: FaultPlan | undefined): void {
  plan = p;
  fromEnv = true;
  count = 0;
  crashed = false;
}

/** Called before each mutating file operation; see the module comment. */
export function faultPoint(op: FaultOp, target = ''): void {
  if (!fromEnv) {
    plan = envPlan();
    fromEnv = true;
  }
  if (plan === undefined) return;
  if (crashed) throw new SimulatedCrash(`after the simulated crash: ${op} ${target}`);
  if (plan.match !== undefined && !target.includes(plan.match)) return;
  const n = ++count;
  plan.trace?.(n, op, target);
  if (n !== plan.at) return;
  if (plan.action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (plan.action === 'crash') {
    crashed = true;
    throw new SimulatedCrash(`simulated crash at operation ${n}: ${op} ${target}`);
  }
  const code = plan.action ?? 'EIO';
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  throw Object.assign(new Error(`${code}: injected failure, ${op} '${target}'`), {
    code, syscall: op, path: target, ...(errno !== undefined ? { errno: -errno } : {}),
  });
}

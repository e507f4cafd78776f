/**
 * Whether the process a lock file names still holds it. A lock records the pid and the process's
 * start time (field 22 of /proc/<pid>/stat, clock ticks after boot), so that a pid the kernel has
 * since given to another process does not count as the holder.
 */
import { readFileSync } from 'node:fs';

/** PF_EXITING in the flags of /proc/<pid>/stat: the process is in exit(2) and runs no more code of its own. */
const PF_EXITING = 0x4;
const SIGKILL_BIT = 1n << 8n;

/** The fields of /proc/<pid>/stat after the command name, or undefined (no /proc, or no such process). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces and parentheses itself
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The parent of process `pid`, or undefined where unknown. */
export function parentPid(pid: number): number | undefined {
  const ppid = Number(statFields(pid)?.[1]);
  return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
}

/** Start time of process `pid`, or undefined where unknown (not Linux, or no such process). */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

function sigkillPending(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const pending = status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm);
    return [...pending].some((m) => (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n);
  } catch {
    return false;
  }
}

/**
 * 'gone': no such process, a zombie, or `pid` now names a process started at another time than
 * `start`. 'exiting': killed or in exit(2), about to be gone. 'running' otherwise, and wherever
 * /proc cannot tell (then only `kill(pid, 0)` decides).
 */
export function processState(pid: number, start?: string): 'running' | 'exiting' | 'gone' {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  const fields = statFields(pid);
  if (fields === undefined) return 'running';
  const [state, , , , , , flags] = fields;
  if (state === 'Z' || state === 'X' || state === 'x') return 'gone';
  if (start !== undefined && fields[19] !== start) return 'gone';
  if ((Number(flags) & PF_EXITING) !== 0 || sigkillPending(pid)) return 'exiting';
  return 'running';
}

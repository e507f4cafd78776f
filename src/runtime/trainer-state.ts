/** trainer_state.json, the record of a checkpoint's place in its run: its one validator and its type. */
import * as z from 'zod';
import { readJsonFileAs } from '../io/json.js';

const count = z.number().int().min(0);
const positive = z.number().int().min(1);
/** JSON.stringify writes a NaN loss as null; it reads back as NaN. */
const float = z.union([z.number(), z.null().transform(() => Number.NaN)]);

const LogEntrySchema = z.object({
  step: count,
  loss: float,
  lr: float,
  grad_norm: float,
  /** tokens the model processed (trailing padding after the last loss position is cut) */
  tokens: count,
  /** micro-batches accumulated in this step (fewer than grad_accum at the end of an epoch) */
  micro_batches: count,
  tokens_per_s: float,
  elapsed: float,
  epoch: float,
  val_loss: float.optional(),
  /** the whole run's time projected after the first steps of a process (logged once per process) */
  estimated_total_s: float.optional(),
});

/** Everything besides the weights that a resumed run needs to continue exactly. */
export const TrainerStateSchema = z.object({
  format: z.literal(1),
  global_step: count,
  total_steps: count,
  /** fractional epochs done */
  epoch: z.number().min(0),
  /** position of the next batch */
  batcher: z.object({ epoch: count, index: count }),
  tokens_seen: count,
  elapsed_seconds: z.number().min(0),
  seed: count,
  /** identifies the data the run was trained on, so a resume on other data is refused */
  data_fingerprint: z.string(),
  log_history: z.array(LogEntrySchema),
  /** the batch size the data position counts in */
  batch_size: positive.optional(),
  grad_accum: positive.optional(),
  /** the LoRA settings the adapter weights belong to */
  lora: z.object({ r: positive, alpha: z.number(), use_rslora: z.boolean(), modules: z.array(z.string()) }).optional(),
  schedule: z.object({ kind: z.string(), learning_rate: z.number(), warmup_steps: count, total_steps: count }).optional(),
  /**
   * Where the random streams stand. They are counter-based: LoRA dropout masks are a function of
   * (seed, module, micro-step, call) and the data order of (seed, epoch), so the seed and the next
   * micro-step (with `batcher`) are the whole state.
   */
  rng: z.object({ seed: count, next_micro_step: count }).optional(),
});

export type LogEntry = z.output<typeof LogEntrySchema>;
export type TrainerState = z.output<typeof TrainerStateSchema>;

/** Reads and checks a trainer_state.json; a broken or hostile file is one line naming the file and the field. */
export function readTrainerState(file: string): TrainerState {
  return readJsonFileAs(TrainerStateSchema, file);
}

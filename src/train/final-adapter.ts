/**
 * The `adapter/` folder a finished run leaves: the PEFT files save_pretrained writes
 * (adapter_config.json, adapter_model.safetensors, README.md model card) and the run's config.yaml,
 * from which `ditty generate` takes the template and `ditty eval --validation-split` the held-out rows.
 */
import * as path from 'node:path';
import type { TrainConfig } from '../config/index.js';
import type { DataStats } from '../data/stats.js';
import { dollyPrompt } from '../data/templates.js';
import type { AdapterWeight } from '../engine/engine.js';
import { formatBeforeAfter, type BeforeAfterRow } from '../eval/before-after.js';
import { writeBytesAtomic } from '../io/atomic.js';
import { writeFolderAtomic } from '../io/output-folder.js';
import type { AdapterMeta } from '../lora/adapter-config.js';
import { writeAdapterFiles } from '../lora/adapter-files.js';
import type { LoraConfig } from '../lora/config.js';
import type { StepMetrics } from '../report/metrics.js';

export const FINAL_ADAPTER_DIR = 'adapter';
export const RUN_CONFIG_FILE = 'config.yaml';
const MODEL_CARD = 'README.md';

export interface ModelCardInput {
  readonly config: TrainConfig;
  readonly configYaml: string;
  /** base_model_name_or_path: the hub id, or the local folder */
  readonly baseModel: string;
  readonly stats: DataStats;
  readonly entries: readonly StepMetrics[];
  readonly trainableParameters: number;
  readonly beforeAfter?: readonly BeforeAfterRow[];
}

function lossLine(points: readonly [number, number][]): string {
  const finite = points.filter(([, v]) => Number.isFinite(v));
  if (finite.length === 0) return 'none recorded';
  const best = finite.reduce((b, p) => (p[1] < b[1] ? p : b));
  const at = ([s, v]: [number, number]): string => `${v.toFixed(4)} (step ${s})`;
  return `first ${at(finite[0]!)}, last ${at(finite.at(-1)!)}, best ${at(best)}`;
}

function pyString(s: string): string {
  return JSON.stringify(s);
}

/** README.md: a Hugging Face model card (YAML metadata, then what was trained, how, and how to load it). */
export function modelCard(c: ModelCardInput): string {
  const { config, stats } = c;
  const t = config.training;
  const steps = c.entries.at(-1)?.step ?? 0;
  const tokens = c.entries.reduce((n, e) => n + (e.tokens ?? 0), 0);
  const hubData = !path.isAbsolute(config.data.dataset);
  const dolly = config.data.format === 'dolly';
  const example = 'Name three primary colors.';
  const prompt = dolly ? dollyPrompt(example) : example;
  const revision = config.model.revision !== 'main' ? `, revision=${pyString(config.model.revision)}` : '';
  const lora = config.lora;
  const lines = [
    '---',
    `base_model: ${JSON.stringify(c.baseModel)}`,
    'library_name: peft',
    'tags:',
    '- ditty',
    '- lora',
    ...(config.quantization.bits === 4 ? ['- qlora'] : []),
    ...(hubData ? ['datasets:', `- ${JSON.stringify(config.data.dataset)}`] : []),
    '---',
    '',
    `# LoRA adapter for ${c.baseModel}`,
    '',
    `Trained with ditty (QLoRA fine-tuning in TypeScript): LoRA r ${lora.r}, alpha ${lora.alpha}`
      + `${lora.use_rslora ? ' (rsLoRA)' : ''} on ${c.trainableParameters.toLocaleString('en-US')} trainable parameters, `
      + `${config.quantization.bits === 4 ? 'NF4 base (QLoRA)' : 'float base'}.`,
    '',
    '## Training',
    '',
    `- base model: \`${c.baseModel}\`${config.model.revision !== 'main' ? ` at revision \`${config.model.revision}\`` : ''}`,
    `- data: \`${config.data.dataset}\`${hubData ? ` (file \`${config.data.file}\`)` : ''}, ${config.data.format} format, `
      + `${stats.trainRows.toLocaleString('en-US')} training rows and ${stats.validationRows.toLocaleString('en-US')} held out; `
      + `loss on ${stats.trainOn === 'all' ? 'all tokens' : 'the responses'}; blocks of ${stats.blockSize} tokens${stats.packing ? ' (packed)' : ''}`,
    `- steps: ${steps} optimizer steps of ${t.batch_size} x ${t.grad_accum} blocks, ${tokens.toLocaleString('en-US')} tokens; `
      + `learning rate ${t.learning_rate} (${t.lr_scheduler}, ${t.warmup_steps} warmup steps), seed ${t.seed}`,
    `- train loss: ${lossLine(c.entries.map((e) => [e.step, e.loss]))}`,
    `- validation loss: ${lossLine(c.entries.flatMap((e): [number, number][] => (e.val_loss !== undefined ? [[e.step, e.val_loss]] : [])))}`,
    ...(c.beforeAfter && c.beforeAfter.length > 0
      ? ['', 'Held-out loss (response tokens), base model vs this adapter:', '', '```', formatBeforeAfter(c.beforeAfter), '```'] : []),
    '',
    '## Use',
    '',
    `The model was trained on ${dolly ? 'prompts in the Dolly template' : 'plain text'}; give it prompts the same way.`,
    '',
    'With PEFT:',
    '',
    '```python',
    'from peft import PeftModel',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `base = AutoModelForCausalLM.from_pretrained(${pyString(c.baseModel)}${revision})`,
    'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
    `tokenizer = AutoTokenizer.from_pretrained(${pyString(c.baseModel)}${revision})`,
    `inputs = tokenizer(${pyString(prompt)}, return_tensors="pt")`,
    'print(tokenizer.decode(model.generate(**inputs, max_new_tokens=64)[0]))',
    '```',
    '',
    `With ditty${dolly ? ' (the Dolly template is applied, as config.yaml in this folder says)' : ''}:`,
    '',
    '```sh',
    `ditty generate ${c.baseModel} --adapter path/to/this/folder --prompt ${JSON.stringify(example)}`,
    'ditty export path/to/this/folder --merged OUT_DIR   # the base with the adapter merged in',
    '```',
    '',
    '## Config',
    '',
    '```yaml',
    c.configYaml.trimEnd(),
    '```',
    '',
  ];
  return lines.join('\n');
}

export interface FinalAdapter {
  readonly adapter: readonly AdapterWeight[];
  readonly loraConfig: LoraConfig;
  readonly adapterMeta: AdapterMeta;
  readonly configYaml: string;
  readonly card: string;
}

/** Writes `<runDir>/adapter/`, replacing the one an earlier run left, whole or not at all; returns its path. */
export async function writeFinalAdapter(runDir: string, a: FinalAdapter): Promise<string> {
  const dir = path.join(runDir, FINAL_ADAPTER_DIR);
  await writeFolderAtomic(dir, async (tmp) => {
    await writeAdapterFiles(tmp, a.adapter, a.loraConfig, a.adapterMeta);
    await writeBytesAtomic(path.join(tmp, MODEL_CARD), a.card);
    await writeBytesAtomic(path.join(tmp, RUN_CONFIG_FILE), a.configYaml);
  });
  return dir;
}

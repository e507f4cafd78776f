import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../io/errors.js';
import { readJsonFile } from '../io/json.js';

/**
 * Byte-level BPE time grows faster than linearly with the length of one pre-token (a run without
 * whitespace): 200k such characters took 10 s, a 10 MB one exhausted the heap. Runs longer than this
 * are encoded in pieces of this many characters; text without such runs is encoded exactly as the
 * Python tokenizer does, and a run this long is not a word (base64, a hash, a minified line).
 */
export const MAX_RUN_CHARS = 256;
const LONG_RUN = new RegExp(`\\S{${MAX_RUN_CHARS + 1},}`);

/** `text` cut before every MAX_RUN_CHARS characters of a long run (never inside a surrogate pair). */
function* boundedPieces(text: string): Generator<string> {
  const runs = new RegExp(LONG_RUN.source, 'g');
  let start = 0;
  for (let m = runs.exec(text); m !== null; m = runs.exec(text)) {
    // The space before a run belongs to its first pre-token (" word"), so it goes with the first piece.
    let at = m.index > start && /\s/.test(text[m.index - 1]!) ? m.index - 1 : m.index;
    if (at > start) yield text.slice(start, at);
    const end = m.index + m[0].length;
    while (at < end) {
      let cut = Math.min(at + MAX_RUN_CHARS, end);
      if (cut < end && isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
      yield text.slice(at, cut);
      at = cut;
    }
    start = end;
  }
  if (start < text.length) yield text.slice(start);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** A Hugging Face tokenizer.json (byte-level BPE for GPT-NeoX-20B / RWKV-4) with the special ids ditty needs. */
export class TextTokenizer {
  constructor(
    private readonly inner: Tokenizer,
    readonly source: string,
    readonly eosId: number,
    readonly vocabSize: number,
  ) {}

  encode(text: string): number[] {
    if (!LONG_RUN.test(text)) return this.inner.encode(text, { add_special_tokens: false }).ids;
    const ids: number[] = [];
    for (const piece of boundedPieces(text)) {
      for (const id of this.inner.encode(piece, { add_special_tokens: false }).ids) ids.push(id);
    }
    return ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    if (ids.length === 0) return ''; // the library refuses an empty id list
    return this.inner.decode([...ids], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }
}

/** Load `tokenizer.json` (and `tokenizer_config.json` when present) from a file or a model folder. */
export function loadTokenizer(fileOrFolder: string): TextTokenizer {
  const isDir = fs.existsSync(fileOrFolder) && fs.statSync(fileOrFolder).isDirectory();
  const file = isDir ? path.join(fileOrFolder, 'tokenizer.json') : fileOrFolder;
  if (!fs.existsSync(file)) {
    throw new InputError(`${file}: no tokenizer.json found${isDir ? ' in the model folder' : ''} (pass --tokenizer PATH, or set model.tokenizer in a training config, to use another one)`);
  }
  const json = readJsonFile(file);
  if (typeof json !== 'object' || json === null || !('model' in json)) {
    throw new InputError(`${file}: not a Hugging Face tokenizer.json (no "model" key)`);
  }
  const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config: Record<string, unknown> = fs.existsSync(configFile) ? readJsonObject(configFile) : {};
  let inner: Tokenizer;
  try {
    inner = new Tokenizer(json, config);
  } catch (err) {
    throw new InputError(`${file}: cannot build the tokenizer: ${(err as Error).message}`);
  }
  const eosToken = typeof config['eos_token'] === 'string' ? config['eos_token'] : '<|endoftext|>';
  const eosId = inner.token_to_id(eosToken) ?? 0;
  const vocabSize = inner.get_vocab(true).size;
  return new TextTokenizer(inner, file, eosId, vocabSize);
}

function readJsonObject(file: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch { /* fall through */ }
  throw new InputError(`${file}: expected a JSON object`);
}

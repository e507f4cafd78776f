/**
 * Duplicate keys in JSON text. JSON.parse keeps the last of two equal keys without a word; formats
 * where that hides data (a safetensors header) refuse such text instead.
 */

/**
 * The first key that appears twice in one object of `text`, with the dotted path of that object, or
 * undefined. `text` must already be valid JSON (JSON.parse succeeded): this only scans strings and
 * brackets, iteratively, so any nesting depth and any number of keys is fine.
 */
export function firstDuplicateKey(text: string): { key: string; path: string } | undefined {
  // One frame per open bracket: the keys seen so far for an object, null for an array.
  const frames: { keys: Set<string> | null; name: string }[] = [];
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: find its end, honouring backslash escapes
      let j = i + 1;
      let escaped = false;
      for (; j < text.length; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c) { escaped = true; j++; } else if (d === 0x22) break;
      }
      const top = frames[frames.length - 1];
      if (top?.keys && isKeyPosition(text, j + 1)) {
        const raw = text.slice(i, j + 1);
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) return { key, path: frames.map((f) => f.name).filter(Boolean).join('.') };
        top.keys.add(key);
        lastKey = key;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) { // { or [
      const parent = frames[frames.length - 1];
      frames.push({ keys: c === 0x7b ? new Set() : null, name: parent?.keys ? lastKey : parent ? '[]' : '' });
    } else if (c === 0x7d || c === 0x5d) { // } or ]
      frames.pop();
    }
  }
  return undefined;
}

/** Whether the next non-blank character from `i` is a colon (the string just read is a key). */
function isKeyPosition(text: string, i: number): boolean {
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a) return true;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return false;
}
